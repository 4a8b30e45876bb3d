#include "pipe.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <system_error>

namespace tapkit {

PipeDirection::PipeDirection(int in, int out, size_t bufferBytes, uv_async_t* ended)
    : in(in), out(out), ended(ended), bufferBytes(bufferBytes), buffer(new uint8_t[bufferBytes]) {}

PipeDirection::Counts PipeDirection::counts() const {
  auto get = [](const std::atomic<uint64_t>& n) { return static_cast<double>(n.load(std::memory_order_relaxed)); };
  return {get(frames), get(bytes), get(interfaceDown), get(refused)};
}

PipeThread::PipeThread(std::vector<PipeDirection*> directions) : directions_(std::move(directions)) {
  stop_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_ = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.fd = stop_;
  try {
    if (stop_ < 0 || epoll_ < 0 || epoll_ctl(epoll_, EPOLL_CTL_ADD, stop_, &ev) < 0) {
      throw std::system_error(errno, std::generic_category(), "epoll");
    }
    thread_ = std::thread(&PipeThread::Run, this);
  } catch (...) {
    if (stop_ >= 0) close(stop_);
    if (epoll_ >= 0) close(epoll_);
    throw;
  }
}

PipeThread::~PipeThread() {
  uint64_t one = 1;
  while (write(stop_, &one, sizeof one) < 0 && errno == EINTR) {
  }
  thread_.join();
  close(stop_);
  close(epoll_);
}

// Writes the held frame. False while `out` still says EAGAIN; an error drops the frame.
bool PipeThread::Flush(PipeDirection* d) {
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
// done. The burst bound sends the thread back to epoll_wait under a flood that never lets `in`
// run dry, so that it sees a stop request (close(), a worker's exit) and serves the other
// direction; level-triggered epoll brings it straight back. False when `in` failed or ended (a
// socket's EOF): Run() then tells the source's handle.
bool PipeThread::Pump(PipeDirection* d) {
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

// Waits with epoll, as relay.c does: each direction's `in` is watched while nothing is held,
// its `out` while something is, and an fd nobody waits on is not registered at all (so a
// socket's EPOLLHUP cannot wake the thread for nothing). A read that fails or ends (the
// interface deleted) ends the thread, and tells the source's handle.
void PipeThread::Run() {
  struct Watch {
    int fd;
    uint32_t events;  // as registered; 0: not registered
  };
  std::vector<Watch> watches;
  for (PipeDirection* d : directions_) {
    for (int fd : {d->in, d->out}) {
      bool known = false;
      for (const Watch& w : watches) known = known || w.fd == fd;
      if (!known) watches.push_back({fd, 0});
    }
  }
  for (;;) {
    for (Watch& w : watches) {
      uint32_t want = 0;
      for (PipeDirection* d : directions_) {
        if (d->in == w.fd && d->held == 0) want |= EPOLLIN;
        if (d->out == w.fd && d->held != 0) want |= EPOLLOUT;
      }
      if (want == w.events) continue;
      struct epoll_event ev = {};
      ev.events = want;
      ev.data.fd = w.fd;
      int op = w.events == 0 ? EPOLL_CTL_ADD : want == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
      if (epoll_ctl(epoll_, op, w.fd, &ev) < 0) return;
      w.events = want;
    }
    struct epoll_event events[4];
    int n = epoll_wait(epoll_, events, 4, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (int k = 0; k < n; k++) {
      int fd = events[k].data.fd;
      if (fd == stop_) return;
      for (PipeDirection* d : directions_) {
        // `out` writable again: the held frame goes, and its direction reads on.
        bool pump = (d->out == fd && d->held != 0 && Flush(d)) || (d->in == fd && d->held == 0);
        if (pump && !Pump(d)) {
          uv_async_send(d->ended);  // the source's handle reports it, on its loop
          return;
        }
      }
    }
  }
}

}  // namespace tapkit
