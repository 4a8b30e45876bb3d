#include "utun_handle.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>

#include "tapkit/darwin_sdk.h"
#include "tapkit/errors.h"

namespace tapkit {
namespace {

constexpr size_t kHeader = 4;  // the big-endian protocol family in front of every packet
// Free bytes before every datagram in a slab: with the 4-byte header, 14 in front of the packet,
// where the shim writes its Ethernet header instead of copying the packet (UTUN_DATAGRAM_GAP).
constexpr size_t kGap = 10;
// A read offers the slab's free tail plus this spill area, so the largest possible datagram (a
// 65535-byte packet and its header, should someone raise the MTU behind our back) arrives whole.
constexpr size_t kSpillBytes = 65535 + kHeader;
constexpr uint32_t kMaxBatchPackets = 4096;
constexpr size_t kMaxSlabBytes = 64 * 1024 * 1024;
// Socket buffers asked for (best effort; the kernel caps them at kern.ipc.maxsockbuf): the
// receive buffer is where the utun queues packets while JS is busy.
constexpr int kSocketBuffer = 2 * 1024 * 1024;

size_t AlignUp(size_t n, size_t to) { return (n + to - 1) & ~(to - 1); }

Napi::Function FunctionOption(Napi::Object options, const char* key) {
  Napi::Value value = options.Get(key);
  if (!value.IsFunction()) {
    throw Napi::TypeError::New(options.Env(), std::string("options.") + key + " must be a function");
  }
  return value.As<Napi::Function>();
}

double NumberOption(Napi::Object options, const char* key, double min, double max) {
  Napi::Value value = options.Get(key);
  double number = value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : -1;
  if (!(number >= min && number <= max) || number != static_cast<double>(static_cast<int64_t>(number))) {
    throw Napi::RangeError::New(options.Env(), std::string("options.") + key + " must be an integer in " +
                                                   std::to_string(static_cast<int64_t>(min)) + "-" +
                                                   std::to_string(static_cast<int64_t>(max)));
  }
  return number;
}

// Creates a utun: a PF_SYSTEM control socket connected to the utun control. `unit` < 0 lets the
// kernel pick (sc_unit 0); otherwise sc_unit is unit + 1, which makes utun<unit>. Stores the
// kernel's name for it and returns the non-blocking fd.
int OpenUtun(Napi::Env env, int64_t unit, std::string* name) {
  std::string requested = unit < 0 ? std::string() : "utun" + std::to_string(unit);
  FdGuard fd(socket(PF_SYSTEM, SOCK_DGRAM, SYSPROTO_CONTROL));
  if (fd.get() < 0) throw ErrnoError(env, errno, "socket", requested);
  // No SOCK_CLOEXEC on Darwin: a child process must not keep the utun alive.
  if (fcntl(fd.get(), F_SETFD, FD_CLOEXEC) < 0) throw ErrnoError(env, errno, "fcntl", requested);

  struct ctl_info info;
  memset(&info, 0, sizeof info);
  strlcpy(info.ctl_name, UTUN_CONTROL_NAME, sizeof info.ctl_name);
  if (ioctl(fd.get(), CTLIOCGINFO, &info) < 0) throw ErrnoError(env, errno, "ioctl", requested, "CTLIOCGINFO");

  struct sockaddr_ctl addr;
  memset(&addr, 0, sizeof addr);
  addr.sc_len = sizeof addr;
  addr.sc_family = AF_SYSTEM;
  addr.ss_sysaddr = AF_SYS_CONTROL;
  addr.sc_id = info.ctl_id;
  addr.sc_unit = unit < 0 ? 0 : static_cast<uint32_t>(unit + 1);
  // EBUSY: that unit is taken. EPERM: not root (the utun control is privileged).
  if (connect(fd.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) < 0) {
    throw ErrnoError(env, errno, "connect", requested);
  }

  char ifname[IFNAMSIZ + 1];
  memset(ifname, 0, sizeof ifname);
  socklen_t length = IFNAMSIZ;
  if (getsockopt(fd.get(), SYSPROTO_CONTROL, UTUN_OPT_IFNAME, ifname, &length) < 0) {
    throw ErrnoError(env, errno, "getsockopt", requested, "UTUN_OPT_IFNAME");
  }
  name->assign(ifname, strnlen(ifname, IFNAMSIZ));

  int flags = fcntl(fd.get(), F_GETFL);
  if (flags < 0 || fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) < 0) throw ErrnoError(env, errno, "fcntl", *name);
  int size = kSocketBuffer;
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);  // best effort
  setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  return fd.release();
}

}  // namespace

Napi::Function UtunHandle::Define(Napi::Env env) {
  return DefineClass(env, "UtunHandle",
                     {
                         InstanceAccessor<&UtunHandle::GetName>("name"),
                         InstanceMethod<&UtunHandle::Write>("write"),
                         InstanceMethod<&UtunHandle::WriteBatch>("writeBatch"),
                         InstanceMethod<&UtunHandle::Resume>("resume"),
                         InstanceMethod<&UtunHandle::Pause>("pause"),
                         InstanceMethod<&UtunHandle::RefLoop>("ref"),
                         InstanceMethod<&UtunHandle::UnrefLoop>("unref"),
                         InstanceMethod<&UtunHandle::Close>("close"),
                     });
}

// new UtunHandle({ unit? | fd?, batchPackets, offsets, datagramReserve, slabBytes, onRead,
//                  onDrain, onError }): see UtunHandleOptions in src/utun-system.ts.
UtunHandle::UtunHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<UtunHandle>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
  Napi::Object options = info[0].As<Napi::Object>();

  // Everything that can throw without holding an OS resource comes first.
  onRead_ = Napi::Persistent(FunctionOption(options, "onRead"));
  onDrain_ = Napi::Persistent(FunctionOption(options, "onDrain"));
  onError_ = Napi::Persistent(FunctionOption(options, "onError"));
  batchPackets_ = static_cast<uint32_t>(NumberOption(options, "batchPackets", 1, kMaxBatchPackets));
  reserve_ = static_cast<size_t>(NumberOption(options, "datagramReserve", kHeader + 1, kSpillBytes));
  slabBytes_ = static_cast<size_t>(
      NumberOption(options, "slabBytes", static_cast<double>(reserve_ + kGap + 8), kMaxSlabBytes));
  int64_t unit = -1;
  if (!options.Get("unit").IsUndefined()) {
    unit = static_cast<int64_t>(NumberOption(options, "unit", 0, 4294967294.0));
  }
  Napi::Value offsets = options.Get("offsets");
  if (!offsets.IsTypedArray() || offsets.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array ||
      offsets.As<Napi::Uint32Array>().ElementLength() < 2 * static_cast<size_t>(batchPackets_)) {
    throw Napi::TypeError::New(env, "options.offsets must be a Uint32Array of 2 × batchPackets elements");
  }
  offsetsRef_ = Napi::Persistent(offsets.As<Napi::Uint32Array>());
  offsets_ = offsets.As<Napi::Uint32Array>().Data();
  spill_.reset(new uint8_t[kSpillBytes]);
  async_ = std::make_unique<Napi::AsyncContext>(env, "UtunHandle", Value());
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    throw Napi::Error::New(env, "no event loop for this environment");
  }

  int raw = -1;
  if (options.Get("fd").IsUndefined()) {
    raw = OpenUtun(env, unit, &name_);
  } else {
    // An fd opened elsewhere: a utun handed over by a privileged helper, or one end of a
    // datagramPair() in tests. The handle owns it from here on.
    raw = static_cast<int>(NumberOption(options, "fd", 0, INT32_MAX));
    int flags = fcntl(raw, F_GETFL);
    if (flags < 0 || fcntl(raw, F_SETFL, flags | O_NONBLOCK) < 0) throw ErrnoError(env, errno, "fcntl");
    char ifname[IFNAMSIZ + 1];
    memset(ifname, 0, sizeof ifname);
    socklen_t length = IFNAMSIZ;
    if (getsockopt(raw, SYSPROTO_CONTROL, UTUN_OPT_IFNAME, ifname, &length) == 0) {
      name_.assign(ifname, strnlen(ifname, IFNAMSIZ));
    }
  }
  FdGuard fd(raw);
  auto poll = std::make_unique<Poll>();
  int err = uv_poll_init(loop, &poll->handle, fd.get());
  if (err != 0) throw ErrnoError(env, -err, "uv_poll_init", name_);
  poll->handle.data = poll.get();
  poll->owner = nullptr;
  // The environment's exit (a worker's, or the main thread's at exit) closes the poll and the
  // socket if JS has not, so no utun stays, and waits for the close to complete: see Poll.
  if (napi_add_async_cleanup_hook(env, OnEnvironmentExit, poll.get(), &poll->hook) != napi_ok) {
    uv_close(reinterpret_cast<uv_handle_t*>(&poll.release()->handle),
             [](uv_handle_t* handle) { delete static_cast<Poll*>(handle->data); });
    throw Napi::Error::New(env, "could not register an environment cleanup hook");
  }
  // Nothing below throws: from here the handle is open.
  poll->owner = this;
  poll_ = poll.release();
  fd_ = fd.release();
  // Like a socket, an open utun is not garbage: the wrapper lives until close().
  Ref();
  openRef_ = true;
}

UtunHandle::~UtunHandle() { ReleaseOsResources(); }

void UtunHandle::OnEnvironmentExit(napi_async_cleanup_hook_handle hook, void* arg) {
  Poll* poll = static_cast<Poll*>(arg);
  // Still open: close it now. Otherwise its close is already pending, and OnClosed removes the
  // hook, which tells Node this cleanup is done.
  if (poll->owner != nullptr) poll->owner->ReleaseOsResources();
}

// The last thing libuv does with the poll handle: only now may the environment go away.
void UtunHandle::OnClosed(uv_handle_t* handle) {
  Poll* poll = static_cast<Poll*>(handle->data);
  napi_remove_async_cleanup_hook(poll->hook);
  delete poll;
}

// Stops polling and closes the socket, which destroys the interface. Calls no JS, so it is safe
// from the cleanup hook and the destructor; safe to call more than once.
void UtunHandle::ReleaseOsResources() {
  closed_ = true;
  reading_ = false;
  if (poll_ != nullptr) {
    poll_->owner = nullptr;
    // uv_close stops the poll first, so the fd may be closed right after.
    uv_close(reinterpret_cast<uv_handle_t*>(&poll_->handle), OnClosed);
    poll_ = nullptr;
  }
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
  queue_.clear();
  queuedBytes_ = 0;
}

Napi::Value UtunHandle::GetName(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), name_); }

void UtunHandle::Close(const Napi::CallbackInfo& info) {
  if (closed_ && !openRef_) return;
  ReleaseOsResources();
  // Everything JS lent the handle goes too: the callbacks close over the port that holds this
  // wrapper, and kept (strong references) they made every closed device a GC root.
  DropSlab();
  onRead_.Reset();
  onDrain_.Reset();
  onError_.Reset();
  offsetsRef_.Reset();
  offsets_ = nullptr;
  if (openRef_) {
    openRef_ = false;
    Unref();
  }
}

void UtunHandle::Resume(const Napi::CallbackInfo& info) {
  if (closed_) return;
  reading_ = true;
  UpdatePoll();
}

void UtunHandle::Pause(const Napi::CallbackInfo& info) {
  if (closed_) return;
  reading_ = false;
  UpdatePoll();
}

void UtunHandle::RefLoop(const Napi::CallbackInfo& info) {
  if (poll_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(&poll_->handle));
}

void UtunHandle::UnrefLoop(const Napi::CallbackInfo& info) {
  if (poll_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(&poll_->handle));
}

// Poll for what is wanted now: readable while reading, writable while datagrams are queued.
void UtunHandle::UpdatePoll() {
  if (poll_ == nullptr) return;
  int want = 0;
  if (!failed_) {
    if (reading_) want |= UV_READABLE;
    if (!queue_.empty()) want |= UV_WRITABLE;
  }
  if (want == pollEvents_) return;
  pollEvents_ = want;
  if (want == 0) {
    uv_poll_stop(&poll_->handle);
  } else {
    int err = uv_poll_start(&poll_->handle, want, OnPoll);
    if (err != 0) throw ErrnoError(Napi::Env(env_), -err, "uv_poll_start", name_);
  }
}

void UtunHandle::OnPoll(uv_poll_t* handle, int status, int events) {
  UtunHandle* self = static_cast<Poll*>(handle->data)->owner;
  if (self != nullptr) self->HandlePoll(status, events);
}

void UtunHandle::HandlePoll(int status, int events) {
  Napi::Env env(env_);
  Napi::HandleScope scope(env);
  // JS called from here may close this handle and drop the last reference to the wrapper:
  // keep it alive until we are done with `this`.
  Ref();
  try {
    if (status < 0) {
      // libuv stops the handle after an error. A read says what happened, if it can.
      int err = -status;
      if (recv(fd_, spill_.get(), kSpillBytes, 0) < 0 && errno != EAGAIN && errno != EINTR) err = errno;
      failed_ = true;
      pollEvents_ = 0;
      uv_poll_stop(&poll_->handle);
      ReportError(env, err, "read");
    } else {
      if ((events & UV_WRITABLE) != 0 && !closed_) FlushQueue(env);
      if ((events & UV_READABLE) != 0 && !closed_ && reading_) ReadDatagrams(env);
    }
  } catch (const Napi::Error& error) {
    // A JS callback threw: report it as uncaught, as Node does for its own callbacks.
    napi_fatal_exception(env_, error.Value());
  }
  Unref();
}

void UtunHandle::SetSlab(Napi::ArrayBuffer slab) {
  slab_.Reset(slab, 1);
  slabData_ = static_cast<uint8_t*>(slab.Data());
  slabSize_ = slab.ByteLength();
  slabUsed_ = 0;
}

void UtunHandle::DropSlab() {
  slab_.Reset();
  slabData_ = nullptr;
  slabSize_ = 0;
  slabUsed_ = 0;
}

// Reads up to batchPackets_ datagrams (or until EAGAIN), each straight into the slab's free tail
// after a gap, and hands them to JS in one call. A fresh slab is taken when the tail could not
// hold the largest datagram expected; the batch is delivered first, as a batch lives in one slab.
void UtunHandle::ReadDatagrams(Napi::Env env) {
  // JS may have transferred the slab (postMessage) since the last batch: it is no longer ours.
  if (slabData_ != nullptr && slab_.Value().IsDetached()) DropSlab();
  pending_ = 0;
  for (uint32_t budget = batchPackets_; budget > 0 && reading_ && !closed_; budget--) {
    size_t start = AlignUp(slabUsed_, 8) + kGap;
    if (slabData_ == nullptr || start + reserve_ > slabSize_) {
      Deliver(env);
      if (closed_ || !reading_) return;
      SetSlab(Napi::ArrayBuffer::New(env, slabBytes_));
      start = kGap;
    }
    size_t room = slabSize_ - start;
    struct iovec iov[2] = {{slabData_ + start, room}, {spill_.get(), kSpillBytes}};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    ssize_t n = recvmsg(fd_, &msg, 0);
    if (n < 0) {
      int err = errno;
      if (err == EINTR) {
        budget++;
        continue;
      }
      if (err == EAGAIN || err == EWOULDBLOCK) break;
      Deliver(env);
      if (closed_) return;
      failed_ = true;
      UpdatePoll();
      ReportError(env, err, "read");
      return;
    }
    // A datagram cut short cannot happen (the spill area holds the largest one), and an empty
    // one carries nothing: neither is handed on.
    if ((msg.msg_flags & MSG_TRUNC) != 0 || n == 0) continue;
    size_t length = static_cast<size_t>(n);
    if (length > room) {
      // It spilled: give the datagram a slab of its own. The new slab is allocated (and the
      // datagram moved) before JS runs, while the old slab is certainly still ours.
      Napi::ArrayBuffer big = Napi::ArrayBuffer::New(env, std::max(slabBytes_, kGap + length + 8));
      uint8_t* bigData = static_cast<uint8_t*>(big.Data());
      memcpy(bigData + kGap, slabData_ + start, room);
      memcpy(bigData + kGap + room, spill_.get(), length - room);
      Deliver(env);
      if (closed_) return;
      SetSlab(big);
      start = kGap;
    }
    offsets_[2 * pending_] = static_cast<uint32_t>(start);
    offsets_[2 * pending_ + 1] = static_cast<uint32_t>(start + length);
    pending_++;
    slabUsed_ = start + length;
  }
  Deliver(env);
  // A slab too full for another datagram is let go now, so it is freed with its last packet.
  if (slabData_ != nullptr && AlignUp(slabUsed_, 8) + kGap + reserve_ > slabSize_) DropSlab();
}

// Hands the pending datagrams to JS: onRead(slab, count), boundaries in offsets.
void UtunHandle::Deliver(Napi::Env env) {
  if (pending_ == 0) return;
  uint32_t count = pending_;
  pending_ = 0;
  // MakeCallback, not Call: it runs the microtask queue afterwards (promises resolved by the
  // batch settle now, and the shim's answers go out) and gives async_hooks a resource.
  onRead_.MakeCallback(Value(), {slab_.Value(), Napi::Number::New(env, count)}, *async_);
  if (slabData_ != nullptr && slab_.Value().IsDetached()) DropSlab();
}

void UtunHandle::ReportError(Napi::Env env, int err, const char* syscall) {
  Napi::Error error = ErrnoError(env, err, syscall, name_);
  onError_.MakeCallback(Value(), {error.Value()}, *async_);
}

// write(family, packet): one datagram, header first.
Napi::Value UtunHandle::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) throw ErrnoError(env, EBADF, "write", name_);
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "family must be a number");
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(env, "packet must be a Uint8Array");
  }
  Napi::Uint8Array packet = info[1].As<Napi::Uint8Array>();
  Send(env, info[0].As<Napi::Number>().Uint32Value(), packet.Data(), packet.ByteLength());
  return Napi::Number::New(env, static_cast<double>(queuedBytes_));
}

// writeBatch(packets, families): families[i] (a Uint8Array) is packets[i]'s family.
Napi::Value UtunHandle::WriteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) throw ErrnoError(env, EBADF, "write", name_);
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "packets must be an array");
  Napi::Array packets = info[0].As<Napi::Array>();
  uint32_t count = packets.Length();
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      info[1].As<Napi::Uint8Array>().ElementLength() < count) {
    throw Napi::TypeError::New(env, "families must be a Uint8Array with one entry per packet");
  }
  const uint8_t* families = info[1].As<Napi::Uint8Array>().Data();
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value value = packets.Get(i);
    if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      throw Napi::TypeError::New(env, "packets[" + std::to_string(i) + "] must be a Uint8Array");
    }
    Napi::Uint8Array packet = value.As<Napi::Uint8Array>();
    try {
      Send(env, families[i], packet.Data(), packet.ByteLength());
    } catch (Napi::Error& error) {
      // Packets before this one were sent.
      error.Set("index", Napi::Number::New(env, i));
      throw;
    }
  }
  return Napi::Number::New(env, static_cast<double>(queuedBytes_));
}

// One writev() per packet: the header and the packet leave as one datagram, without a copy.
// Once anything is queued, later packets queue behind it to keep their order. ENOBUFS/ENOSPC
// (the utun's input queue is full) are thrown like any error; the TS side counts them as drops.
void UtunHandle::Send(Napi::Env env, uint32_t family, const uint8_t* data, size_t length) {
  uint32_t header = htonl(family);
  if (queue_.empty()) {
    struct iovec iov[2] = {{&header, kHeader}, {const_cast<uint8_t*>(data), length}};
    for (;;) {
      if (writev(fd_, iov, 2) >= 0) return;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      throw ErrnoError(env, errno, "write", name_);
    }
  }
  std::vector<uint8_t> datagram(kHeader + length);
  memcpy(datagram.data(), &header, kHeader);
  if (length > 0) memcpy(datagram.data() + kHeader, data, length);
  queuedBytes_ += datagram.size();
  queue_.push_back(std::move(datagram));
  UpdatePoll();
}

// Writable again: send what was queued; when all went, stop polling for writable and tell JS.
void UtunHandle::FlushQueue(Napi::Env env) {
  while (!queue_.empty()) {
    const std::vector<uint8_t>& datagram = queue_.front();
    if (write(fd_, datagram.data(), datagram.size()) < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) return;
      queuedBytes_ -= datagram.size();
      queue_.pop_front();
      ReportError(env, err, "write");  // that packet is dropped; the others still go
      if (closed_) return;
      continue;
    }
    queuedBytes_ -= datagram.size();
    queue_.pop_front();
  }
  UpdatePoll();
  onDrain_.MakeCallback(Value(), {}, *async_);
}

}  // namespace tapkit
