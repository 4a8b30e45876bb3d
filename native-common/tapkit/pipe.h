// Pipes between two handles' fds, run on threads of their own, as a C relay does. Portable
// (poll(2) and a self-pipe, pthreads through std::thread): the same code on Linux and macOS.
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <system_error>
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

  PipeDirection(int in, int out, size_t bufferBytes, uv_async_t* ended)
      : in(in), out(out), ended(ended), bufferBytes(bufferBytes), buffer(new uint8_t[bufferBytes]) {}

  Counts counts() const {
    auto get = [](const std::atomic<uint64_t>& n) { return static_cast<double>(n.load(std::memory_order_relaxed)); };
    return {get(frames), get(bytes), get(interfaceDown), get(refused)};
  }

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
  // Frames one direction copies before the thread polls again (see Pump).
  static constexpr int kPumpBurst = 64;

  // Starts the thread; throws std::system_error when no thread or self-pipe can be had.
  explicit PipeThread(std::vector<PipeDirection*> directions) : directions_(std::move(directions)) {
    if (pipe(stop_) < 0) throw std::system_error(errno, std::generic_category(), "pipe");
    try {
      for (int fd : stop_) {
        if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 || fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
          throw std::system_error(errno, std::generic_category(), "fcntl");
        }
      }
      thread_ = std::thread(&PipeThread::Run, this);
    } catch (...) {
      close(stop_[0]);
      close(stop_[1]);
      throw;
    }
  }

  ~PipeThread() {
    char one = 1;
    while (write(stop_[1], &one, 1) < 0 && errno == EINTR) {
    }
    thread_.join();
    close(stop_[0]);
    close(stop_[1]);
  }

  PipeThread(const PipeThread&) = delete;
  PipeThread& operator=(const PipeThread&) = delete;

 private:
  // Writes the held frame. False while `out` still says EAGAIN; an error drops the frame.
  static bool Flush(PipeDirection* d) {
    for (;;) {
      if (write(d->out, d->buffer.get(), d->held) >= 0) {
        d->frames.fetch_add(1, std::memory_order_relaxed);
        d->bytes.fetch_add(d->held, std::memory_order_relaxed);
      } else if (errno == EINTR) {
        continue;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return false;
      } else if (errno == EIO) {
        // The interface is down: dropped, as a NIC without link does; not sent (as linux-tap's
        // writeBatch counts it).
        d->interfaceDown.fetch_add(1, std::memory_order_relaxed);
      } else {
        d->refused.fetch_add(1, std::memory_order_relaxed);
      }
      d->held = 0;
      return true;
    }
  }

  // Copies frames until `in` says EAGAIN, a frame is held back (backpressure: reading this
  // direction waits until `out` is writable; no frame is dropped by the pipe), or a burst is
  // done. The burst bound sends the thread back to poll() under a flood that never lets `in`
  // run dry, so that it sees a stop request (close(), a worker's exit) and serves the other
  // direction; level-triggered poll() brings it straight back. False when `in` failed or ended
  // (a socket's EOF): Run() then tells the source's handle.
  static bool Pump(PipeDirection* d) {
    for (int burst = 0; d->held == 0 && burst < kPumpBurst; burst++) {
      ssize_t n = read(d->in, d->buffer.get(), d->bufferBytes);
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno == EAGAIN || errno == EWOULDBLOCK;
      }
      if (n == 0) return false;
      d->held = static_cast<size_t>(n);
      Flush(d);
    }
    return true;
  }

  // Waits with poll(): each direction's `in` while nothing is held, its `out` while something
  // is, and the stop pipe; an fd nobody waits on is not polled at all (so a socket's hang-up
  // cannot wake the thread for nothing). A read that fails or ends (the interface deleted) ends
  // the thread, and tells the source's handle.
  void Run() {
    std::vector<struct pollfd> fds(directions_.size() + 1);
    for (;;) {
      fds[0] = {stop_[0], POLLIN, 0};
      for (size_t i = 0; i < directions_.size(); i++) {
        PipeDirection* d = directions_[i];
        fds[i + 1] = d->held == 0 ? pollfd{d->in, POLLIN, 0} : pollfd{d->out, POLLOUT, 0};
      }
      if (poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[0].revents != 0) return;
      for (size_t i = 0; i < directions_.size(); i++) {
        if (fds[i + 1].revents == 0) continue;
        PipeDirection* d = directions_[i];
        // `out` writable again: the held frame goes, and its direction reads on.
        bool pump = d->held == 0 || Flush(d);
        if (pump && !Pump(d)) {
          uv_async_send(d->ended);  // the source's handle reports it, on its loop
          return;
        }
      }
    }
  }

  std::vector<PipeDirection*> directions_;
  int stop_[2] = {-1, -1};  // a self-pipe: readable once the thread is to stop
  std::thread thread_;
};

}  // namespace tapkit
