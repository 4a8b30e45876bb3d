// Pipes between tap/tun fds, run on threads of their own, as a C relay does.
#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

namespace tapkit {

// One direction: every frame read from `in` is written to `out`. It outlives the threads that
// serve it (a relay's two directions share one thread, which is replaced when one of them
// stops), so its counts and a frame held back by EAGAIN carry over.
struct PipeDirection {
  struct Counts {
    double frames;         // frames written
    double bytes;          // their bytes
    double interfaceDown;  // frames `out` refused with EIO: its interface is down
    double refused;        // frames `out` refused otherwise
  };

  PipeDirection(int in, int out, size_t bufferBytes, uv_async_t* ended);
  Counts counts() const;

  const int in;
  const int out;
  uv_async_t* const ended;  // signalled when reading `in` fails or ends: the thread stops
  const size_t bufferBytes;
  std::unique_ptr<uint8_t[]> buffer;
  size_t held = 0;  // bytes of a frame `out` said EAGAIN to, waiting in buffer
  std::atomic<uint64_t> frames{0}, bytes{0}, interfaceDown{0}, refused{0};
};

// A thread serving one or two directions between two fds (a→b, and b→a when both are piped:
// one thread, like relay.c, so a reply crossing back does not wake another thread). Node's
// event loop is not used: each of its turns does work of its own (immediates, a callback scope,
// idle-time metrics) that made a relay crossing some 16 µs slower than in C. The fds stay owned
// by their handles, which destroy the thread (stopping and joining it) before closing them.
class PipeThread {
 public:
  // Frames one direction copies before the thread looks at epoll again (see Pump).
  static constexpr int kPumpBurst = 64;

  // Starts the thread; throws std::system_error when no thread or eventfd can be had.
  explicit PipeThread(std::vector<PipeDirection*> directions);
  ~PipeThread();
  PipeThread(const PipeThread&) = delete;
  PipeThread& operator=(const PipeThread&) = delete;

 private:
  void Run();
  bool Flush(PipeDirection* d);
  bool Pump(PipeDirection* d);

  std::vector<PipeDirection*> directions_;
  int stop_ = -1;   // eventfd: readable once the thread is to stop
  int epoll_ = -1;  // what the thread waits on: the directions' fds and stop_
  std::thread thread_;
};

}  // namespace tapkit
