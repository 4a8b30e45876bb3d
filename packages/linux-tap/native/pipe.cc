#include "pipe.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <system_error>

namespace tapkit {

PipeDirection::PipeDirection(int in, int out, size_t bufferBytes)
    : in(in), out(out), bufferBytes(bufferBytes), buffer(new uint8_t[bufferBytes]) {}

PipeDirection::Counts PipeDirection::counts() const {
  auto get = [](const std::atomic<uint64_t>& n) { return static_cast<double>(n.load(std::memory_order_relaxed)); };
  return {get(frames), get(bytes), get(interfaceDown), get(refused)};
}

PipeThread::PipeThread(std::vector<PipeDirection*> directions) : directions_(std::move(directions)) {
  stop_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  try {
    thread_ = std::thread(&PipeThread::Run, this);
  } catch (...) {
    close(stop_);
    throw;
  }
}

PipeThread::~PipeThread() {
  uint64_t one = 1;
  while (write(stop_, &one, sizeof one) < 0 && errno == EINTR) {
  }
  thread_.join();
  close(stop_);
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
      // The interface is down: dropped, as a NIC without link does; counted as sent (as
      // linux-tap's writeBatch counts it), bytes included.
      d->interfaceDown.fetch_add(1, std::memory_order_relaxed);
      d->bytes.fetch_add(d->held, std::memory_order_relaxed);
    } else {
      d->refused.fetch_add(1, std::memory_order_relaxed);
    }
    d->held = 0;
    return true;
  }
}

// Copies frames until `in` says EAGAIN or a frame is held back (backpressure: reading this
// direction waits until `out` is writable; no frame is dropped by the pipe). False when `in`
// failed or ended (a socket's EOF): the fd's own handle sees that and reports it.
bool PipeThread::Pump(PipeDirection* d) {
  while (d->held == 0) {
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

// Polls each direction's `in` while nothing is held, its `out` while something is (a negative
// fd is skipped: an fd not waited for must not wake the thread with its POLLHUP). A fd in error
// (the interface deleted) or a failed read ends the thread: the handles' own polls report it.
void PipeThread::Run() {
  const size_t count = directions_.size();
  std::vector<struct pollfd> fds(2 * count + 1);
  for (;;) {
    for (size_t i = 0; i < count; i++) {
      PipeDirection* d = directions_[i];
      fds[2 * i] = {d->held == 0 ? d->in : -1, POLLIN, 0};
      fds[2 * i + 1] = {d->held != 0 ? d->out : -1, POLLOUT, 0};
    }
    fds[2 * count] = {stop_, POLLIN, 0};
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[2 * count].revents != 0) return;
    for (size_t i = 0; i < 2 * count; i++) {
      if ((fds[i].revents & (POLLERR | POLLNVAL)) != 0) return;
    }
    // Every direction is pumped, not only those polled readable: a relay's reply is often
    // queued by the time the request's write returns, and is taken without another poll.
    for (size_t i = 0; i < count; i++) {
      PipeDirection* d = directions_[i];
      if (d->held != 0 && (fds[2 * i + 1].revents == 0 || !Flush(d))) continue;
      if (!Pump(d)) return;
    }
  }
}

}  // namespace tapkit
