// Pipes between two handles' fds, run on threads of their own, as a C relay does. Portable
// (poll(2) and a self-pipe, pthreads through std::thread): the same code on Linux and macOS.
//
// A direction's framing is pluggable, on each side:
//   reading: kPlain — a read is one frame (a tap, a tun, a SOCK_SEQPACKET socket);
//            kBpf   — a read is a darwin BPF buffer of records (tapkit/bpf_records.h), read with
//                     exactly the buffer size BIOCSBLEN granted;
//   writing: kWrite — write(2) (a tap: EIO is its interface down);
//            kSend  — send(2) (an AF_NDRV socket: ENOBUFS is the driver's queue full, dropped).
// Before it is written, each frame is checked against the destination's FrameLimit (the MTU's,
// kept up to date by its port): a frame too long or too short for it is refused and counted,
// as the engine's JS pipe refuses and counts it (txError).
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "tapkit/bpf_records.h"
#include "tapkit/io.h"

namespace tapkit {

// What PipeThread throws when it cannot start: the errno (EAGAIN when std::thread failed). Our own
// type, not std::system_error: throwing or catching that by type made the x86_64 macOS bundle
// export libc++'s typeinfo for it (the prebuild test checks what a bundle exports).
struct PipeStartError {
  int code;
};

enum class ReadFraming : uint8_t { kPlain, kBpf };
enum class WriteFraming : uint8_t { kWrite, kSend };

// The frames a destination takes, as the engine's checkFrame() says: at least `min` bytes, at
// most `max` (0: no limit), plus `tagged` more for an Ethernet frame with a VLAN or QinQ tag.
// Its port sets it (and again whenever the MTU changes); pipe threads read it for every frame.
struct FrameLimit {
  std::atomic<uint32_t> min{0};
  std::atomic<uint32_t> max{0};
  std::atomic<uint32_t> tagged{0};

  void Set(uint32_t newMin, uint32_t newMax, uint32_t newTagged) {
    min.store(newMin, std::memory_order_relaxed);
    max.store(newMax, std::memory_order_relaxed);
    tagged.store(newTagged, std::memory_order_relaxed);
  }

  bool Fits(const uint8_t* frame, size_t length) const {
    if (length < min.load(std::memory_order_relaxed)) return false;
    uint32_t limit = max.load(std::memory_order_relaxed);
    if (limit == 0 || length <= limit) return true;
    uint32_t extra = tagged.load(std::memory_order_relaxed);
    if (extra == 0 || length < 14) return false;
    uint16_t etherType = static_cast<uint16_t>(frame[12] << 8 | frame[13]);
    return (etherType == 0x8100 || etherType == 0x88a8) && length <= static_cast<size_t>(limit) + extra;
  }
};

// One direction: every frame read from `in` is written to `out`. It outlives the threads that
// serve it (a relay's two directions share one thread, which is replaced when one of them
// stops), so its counts and a read held back by EAGAIN carry over.
struct PipeDirection {
  struct Counts {
    double frames;         // frames written (kSend: and those dropped for ENOBUFS, as a NIC does)
    double bytes;          // their bytes
    double interfaceDown;  // frames `out` refused with EIO: its interface is down
    double refused;        // frames `out` refused otherwise, or too long or short for it
    double noBuffers;      // kSend: frames written but dropped for want of buffers (ENOBUFS)
    double truncated;      // kBpf: records the kernel cut (caplen < datalen), skipped
    double runts;          // kBpf: records shorter than an Ethernet header, skipped
    double malformed;      // kBpf: reads whose walk stopped at a record that did not fit
  };

  PipeDirection(int in, int out, size_t bufferBytes, uv_async_t* ended, std::shared_ptr<const FrameLimit> limit,
                ReadFraming reading = ReadFraming::kPlain, WriteFraming writing = WriteFraming::kWrite)
      : in(in),
        out(out),
        ended(ended),
        bufferBytes(bufferBytes),
        reading(reading),
        writing(writing),
        limit(std::move(limit)),
        buffer(new uint8_t[bufferBytes]) {}

  Counts counts() const {
    auto get = [](const std::atomic<uint64_t>& n) { return static_cast<double>(n.load(std::memory_order_relaxed)); };
    return {get(frames),  get(bytes),     get(interfaceDown), get(refused),
            get(noBuffers), get(truncated), get(runts),         get(malformed)};
  }

  bool Holding() const { return cursor < readEnd; }

  const int in;
  const int out;
  uv_async_t* const ended;  // signalled when reading `in` fails or ends: the thread stops
  const size_t bufferBytes;
  const ReadFraming reading;
  const WriteFraming writing;
  const std::shared_ptr<const FrameLimit> limit;  // the destination's; never null
  std::unique_ptr<uint8_t[]> buffer;
  // What a read returned and is not yet written: buffer[cursor, readEnd) (kPlain: one frame;
  // kBpf: the records from cursor on). `out` said EAGAIN to the frame at cursor.
  size_t cursor = 0;
  size_t readEnd = 0;
  std::atomic<uint64_t> frames{0}, bytes{0}, interfaceDown{0}, refused{0};
  std::atomic<uint64_t> noBuffers{0}, truncated{0}, runts{0}, malformed{0};
};

// A thread serving one or two directions between two fds (a→b, and b→a when both are piped:
// one thread, like relay.c, so a reply crossing back does not wake another thread). Node's
// event loop is not used: each of its turns does work of its own (immediates, a callback scope,
// idle-time metrics) that made a relay crossing some 16 µs slower than in C. The fds stay owned
// by their handles, which destroy the thread (stopping and joining it) before closing them.
class PipeThread {
 public:
  // Reads one direction makes before the thread polls again (see Pump).
  static constexpr int kPumpBurst = 64;

  // Starts the thread; throws PipeStartError when no thread or self-pipe can be had.
  explicit PipeThread(std::vector<PipeDirection*> directions) : directions_(std::move(directions)) {
    if (pipe(stop_) < 0) throw PipeStartError{errno};
    int err = 0;
    for (int fd : stop_) {
      if (err == 0 && (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 || fcntl(fd, F_SETFL, O_NONBLOCK) < 0)) err = errno;
    }
    if (err == 0) {
      try {
        thread_ = std::thread(&PipeThread::Run, this);
      } catch (...) {
        err = EAGAIN;  // std::system_error: pthread_create failed, most likely a thread limit
      }
    }
    if (err != 0) {
      close(stop_[0]);
      close(stop_[1]);
      throw PipeStartError{err};
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
  static void Count(std::atomic<uint64_t>& n, uint64_t by = 1) { n.fetch_add(by, std::memory_order_relaxed); }

  // The next frame of the held read: true with its bounds and where the read goes on after it;
  // false when the read is done (records skipped on the way are counted).
  static bool NextFrame(PipeDirection* d, size_t* start, size_t* length, size_t* next) {
    if (d->reading == ReadFraming::kPlain) {
      *start = d->cursor;
      *length = d->readEnd - d->cursor;
      *next = d->readEnd;
      return true;
    }
    bpf::Counts skipped;
    bpf::Step step = bpf::Next(d->buffer.get(), d->readEnd, &d->cursor, start, length, next, &skipped);
    if (skipped.truncated > 0) Count(d->truncated, skipped.truncated);
    if (skipped.runts > 0) Count(d->runts, skipped.runts);
    if (step == bpf::Step::kFrame) return true;
    if (step == bpf::Step::kMalformed) Count(d->malformed);
    return false;
  }

  // Writes one frame. False when `out` said EAGAIN (the frame stays held); otherwise the frame
  // is done with, written or counted as dropped.
  static bool WriteFrame(PipeDirection* d, const uint8_t* frame, size_t length) {
    if (!d->limit->Fits(frame, length)) {
      Count(d->refused);  // as the JS pipe's checkFrame(): FRAME_TOO_LARGE/SHORT, a txError
      return true;
    }
    for (;;) {
      ssize_t n = d->writing == WriteFraming::kSend ? send(d->out, frame, length, 0) : write(d->out, frame, length);
      if (n >= 0) break;
      if (CallAgain(errno)) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
      if (d->writing == WriteFraming::kSend && errno == ENOBUFS) {
        // The driver's queue was full: sent and dropped, as NdrvWriter counts it (txNoBuffers).
        Count(d->noBuffers);
        break;
      }
      if (d->writing == WriteFraming::kWrite && errno == EIO) {
        // The interface is down: dropped, as a NIC without link does; not sent (as linux-tap's
        // writeBatch counts it).
        Count(d->interfaceDown);
      } else {
        Count(d->refused);
      }
      return true;
    }
    Count(d->frames);
    Count(d->bytes, length);
    return true;
  }

  // Writes the held read's frames. False while `out` still says EAGAIN to one of them.
  static bool Flush(PipeDirection* d) {
    while (d->Holding()) {
      size_t start = 0, length = 0, next = 0;
      if (!NextFrame(d, &start, &length, &next)) break;
      if (!WriteFrame(d, d->buffer.get() + start, length)) return false;
      d->cursor = next;
    }
    d->cursor = d->readEnd = 0;
    return true;
  }

  // Copies frames until `in` says EAGAIN, a frame is held back (backpressure: reading this
  // direction waits until `out` is writable; no frame is dropped by the pipe), or a burst is
  // done. The burst bound sends the thread back to poll() under a flood that never lets `in`
  // run dry, so that it sees a stop request (close(), a worker's exit) and serves the other
  // direction; level-triggered poll() brings it straight back. False when `in` failed or ended
  // (a socket's EOF): Run() then tells the source's handle.
  static bool Pump(PipeDirection* d) {
    for (int burst = 0; !d->Holding() && burst < kPumpBurst; burst++) {
      ssize_t n = read(d->in, d->buffer.get(), d->bufferBytes);
      if (n < 0) {
        if (ReadAgain(errno)) continue;
        return errno == EAGAIN || errno == EWOULDBLOCK;
      }
      // 0: a socket's end, or (BPF) a bound device that has nothing: either way, gone.
      if (n == 0) return false;
      d->cursor = 0;
      d->readEnd = static_cast<size_t>(n);
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
        fds[i + 1] = d->Holding() ? pollfd{d->out, POLLOUT, 0} : pollfd{d->in, POLLIN, 0};
      }
      if (poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[0].revents != 0) return;
      for (size_t i = 0; i < directions_.size(); i++) {
        if (fds[i + 1].revents == 0) continue;
        PipeDirection* d = directions_[i];
        // `out` writable again: the held frames go, and its direction reads on.
        bool pump = !d->Holding() || Flush(d);
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
