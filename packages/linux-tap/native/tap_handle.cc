#include "tap_handle.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <system_error>

#include "tapkit/errors.h"
#include "tun.h"

namespace tapkit {
namespace {

// A read offers the slab's free tail plus this spill area, so a frame larger than expected
// (the MTU was raised behind our back) arrives whole instead of truncated. It covers anything
// a tap or tun delivers, TSO/GSO super-frames with their virtio-net header included.
constexpr size_t kSpillBytes = 128 * 1024;
constexpr uint32_t kMaxBatchFrames = 4096;
constexpr size_t kMaxSlabBytes = 64 * 1024 * 1024;
constexpr uint32_t kMaxFrameReserve = 1024 * 1024;
constexpr unsigned kUsoOffloads = TUN_F_USO4 | TUN_F_USO6;
// The largest frame a tap/tun can deliver: an skb is at most 64 KiB (IP's length limit, and the
// GSO limit; tun sets no larger one), plus the virtio-net header, with margin. With at least
// this much room left in the slab a plain read() cannot truncate, and the spill is not needed.
constexpr size_t kMaxDeviceFrame = 64 * 1024 + 1024;

// Marks TapHandle objects, so pipeTo() can tell one from any other wrapped object.
constexpr napi_type_tag kTapHandleTag = {0x7a1c0e5b9d2f4e61ULL, 0xb3a84c17f06d925eULL};

Napi::Function FunctionOption(Napi::Object options, const char* key) {
  Napi::Value value = options.Get(key);
  if (!value.IsFunction()) {
    throw Napi::TypeError::New(options.Env(), std::string("options.") + key + " must be a function");
  }
  return value.As<Napi::Function>();
}

uint32_t UintOption(Napi::Object options, const char* key, uint32_t min, uint32_t max) {
  Napi::Value value = options.Get(key);
  double number = value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : -1;
  if (!(number >= min && number <= max) || number != static_cast<uint32_t>(number)) {
    throw Napi::RangeError::New(options.Env(), std::string("options.") + key + " must be an integer in " +
                                                   std::to_string(min) + "-" + std::to_string(max));
  }
  return static_cast<uint32_t>(number);
}

// The bytes of a Uint8Array (or Buffer), with one N-API call; false for anything else. The
// write path uses this instead of node-addon-api's wrappers, which make four calls per frame.
bool Uint8Bytes(napi_env env, napi_value value, uint8_t** data, size_t* length) {
  napi_typedarray_type type;
  void* bytes = nullptr;
  if (napi_get_typedarray_info(env, value, &type, length, &bytes, nullptr, nullptr) != napi_ok) return false;
  if (type != napi_uint8_array) return false;
  *data = static_cast<uint8_t*>(bytes);
  return true;
}

std::string StringOption(Napi::Object options, const char* key, const char* fallback) {
  Napi::Value value = options.Get(key);
  if (value.IsUndefined()) return fallback;
  if (!value.IsString()) {
    throw Napi::TypeError::New(options.Env(), std::string("options.") + key + " must be a string");
  }
  return value.As<Napi::String>();
}

// Opens `path` (/dev/net/tun) and attaches it to a tap/tun interface as the options say; in
// offload mode also sets the virtio-net header size and the offloads. Returns the fd.
TunFd OpenDevice(Napi::Env env, Napi::Object options, unsigned* offloads) {
  std::string path = StringOption(options, "path", "/dev/net/tun");
  std::string mode = StringOption(options, "mode", "tap");
  std::string requested = StringOption(options, "name", "");
  if (mode != "tap" && mode != "tun") throw Napi::TypeError::New(env, "options.mode must be 'tap' or 'tun'");
  if (requested.size() >= IFNAMSIZ) throw Napi::TypeError::New(env, "options.name must be at most 15 bytes");
  bool vnet = options.Get("vnetHeader").ToBoolean();
  Napi::Value wanted = options.Get("offloads");
  if (!wanted.IsUndefined() && !wanted.IsNumber()) throw Napi::TypeError::New(env, "options.offloads must be a number");

  int flags = (mode == "tun" ? IFF_TUN : IFF_TAP) | IFF_NO_PI;
  if (options.Get("multiQueue").ToBoolean()) flags |= IFF_MULTI_QUEUE;
  // Exclusive: fail with EBUSY if the name exists, instead of attaching to (or, for another
  // kind of interface, failing with EINVAL on) whatever has it.
  if (options.Get("exclusive").ToBoolean()) flags |= IFF_TUN_EXCL;
  if (vnet) flags |= IFF_VNET_HDR;
  TunFd tun = OpenTun(env, path, requested, flags);
  FdGuard fd(tun.fd);

  if (vnet) {
    int size = kVnetHeaderBytes;
    if (ioctl(fd.get(), TUNSETVNETHDRSZ, &size) < 0) throw ErrnoError(env, errno, "ioctl", tun.name, "TUNSETVNETHDRSZ");
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    // virtio 1.0 headers are little-endian; legacy ones follow the host.
    int le = 1;
    if (ioctl(fd.get(), TUNSETVNETLE, &le) < 0) throw ErrnoError(env, errno, "ioctl", tun.name, "TUNSETVNETLE");
#endif
  }
  // Offloads are the device's, and outlive the fd on a persistent device: whoever attaches
  // says which it wants (none, without a virtio-net header to carry their metadata).
  if (!wanted.IsUndefined()) {
    unsigned mask = wanted.As<Napi::Number>().Uint32Value();
    int err = ioctl(fd.get(), TUNSETOFFLOAD, static_cast<unsigned long>(mask)) < 0 ? errno : 0;
    if (err == EINVAL && (mask & kUsoOffloads) != 0) {
      // UDP segmentation offload is Linux 6.2+: go on without it.
      mask &= ~kUsoOffloads;
      err = ioctl(fd.get(), TUNSETOFFLOAD, static_cast<unsigned long>(mask)) < 0 ? errno : 0;
    }
    if (err != 0) throw ErrnoError(env, err, "ioctl", tun.name, "TUNSETOFFLOAD");
    *offloads = mask;
  }
  tun.fd = fd.release();
  return tun;
}

}  // namespace

Napi::Function TapHandle::Define(Napi::Env env) {
  return DefineClass(env, "TapHandle",
                     {
                         InstanceAccessor<&TapHandle::GetName>("name"),
                         InstanceAccessor<&TapHandle::GetFlags>("flags"),
                         InstanceAccessor<&TapHandle::GetOffloads>("offloads"),
                         InstanceMethod<&TapHandle::Write>("write"),
                         InstanceMethod<&TapHandle::WriteBatch>("writeBatch"),
                         InstanceMethod<&TapHandle::WriteSpans>("writeSpans"),
                         InstanceMethod<&TapHandle::PipeTo>("pipeTo"),
                         InstanceMethod<&TapHandle::PipeCounts>("pipeCounts"),
                         InstanceMethod<&TapHandle::Resume>("resume"),
                         InstanceMethod<&TapHandle::Pause>("pause"),
                         InstanceMethod<&TapHandle::RefLoop>("ref"),
                         InstanceMethod<&TapHandle::UnrefLoop>("unref"),
                         InstanceMethod<&TapHandle::Close>("close"),
                     });
}

// new TapHandle({ name?, mode?, multiQueue?, exclusive?, vnetHeader?, offloads?, path? | fd,
//                 batchFrames, offsets, frameReserve, slabBytes, onRead, onDrain, onError })
TapHandle::TapHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TapHandle>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
  Napi::Object options = info[0].As<Napi::Object>();

  // Everything that can throw without holding an OS resource comes first.
  onRead_ = Napi::Persistent(FunctionOption(options, "onRead"));
  onDrain_ = Napi::Persistent(FunctionOption(options, "onDrain"));
  onError_ = Napi::Persistent(FunctionOption(options, "onError"));
  batchFrames_ = UintOption(options, "batchFrames", 1, kMaxBatchFrames);
  frameReserve_ = UintOption(options, "frameReserve", 1, kMaxFrameReserve);
  slabBytes_ = UintOption(options, "slabBytes", static_cast<uint32_t>(frameReserve_), kMaxSlabBytes);
  Napi::Value offsets = options.Get("offsets");
  if (!offsets.IsTypedArray() || offsets.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array ||
      offsets.As<Napi::Uint32Array>().ElementLength() < batchFrames_ + 1) {
    throw Napi::TypeError::New(env, "options.offsets must be a Uint32Array of batchFrames + 1 elements");
  }
  offsetsRef_ = Napi::Persistent(offsets.As<Napi::Uint32Array>());
  offsets_ = offsets.As<Napi::Uint32Array>().Data();
  spill_.reset(new uint8_t[kSpillBytes]);
  async_ = std::make_unique<Napi::AsyncContext>(env, "TapHandle", Value());
  if (napi_type_tag_object(env, Value(), &kTapHandleTag) != napi_ok) {
    throw Napi::Error::New(env, "could not tag the handle");
  }
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    throw Napi::Error::New(env, "no event loop for this environment");
  }

  int raw = -1;
  if (options.Get("fd").IsUndefined()) {
    TunFd tun = OpenDevice(env, options, &offloads_);
    raw = tun.fd;
    name_ = std::move(tun.name);
    flags_ = tun.flags;
  } else {
    // An fd opened elsewhere (a queue passed in by a privileged helper; a socketpair in tests).
    // The handle owns it from here on.
    raw = static_cast<int>(UintOption(options, "fd", 0, INT32_MAX));
    int flags = fcntl(raw, F_GETFL);
    if (flags < 0 || fcntl(raw, F_SETFL, flags | O_NONBLOCK) < 0) throw ErrnoError(env, errno, "fcntl");
  }
  FdGuard fd(raw);

  auto poll = std::make_unique<Poll>();
  int err = uv_poll_init(loop, &poll->handle, fd.get());
  if (err != 0) throw ErrnoError(env, -err, "uv_poll_init");
  poll->handle.data = poll.get();
  poll->owner = nullptr;
  poll->hook = nullptr;
  poll->open = 1;
  err = uv_async_init(loop, &poll->pipeEnded, OnPipeEnded);
  if (err == 0) {
    poll->pipeEnded.data = poll.get();
    poll->open = 2;
    uv_unref(reinterpret_cast<uv_handle_t*>(&poll->pipeEnded));  // the poll alone holds the loop
  }
  // The environment's exit (a worker's, or the main thread's at exit) closes the poll and the
  // fd if JS has not, and waits for the close to complete: see Poll.
  if (err != 0 || napi_add_async_cleanup_hook(env, OnEnvironmentExit, poll.get(), &poll->hook) != napi_ok) {
    poll->hook = nullptr;
    CloseHandles(poll.release());
    if (err != 0) throw ErrnoError(env, -err, "uv_async_init");
    throw Napi::Error::New(env, "could not register an environment cleanup hook");
  }
  // Nothing below throws: from here the handle is open.
  poll->owner = this;
  poll_ = poll.release();
  fd_ = fd.release();
  // Like a socket, an open device is not garbage: the wrapper lives until close().
  Ref();
  openRef_ = true;
}

TapHandle::~TapHandle() { ReleaseOsResources(); }

void TapHandle::OnEnvironmentExit(napi_async_cleanup_hook_handle hook, void* arg) {
  Poll* poll = static_cast<Poll*>(arg);
  // Still open: close it now. Otherwise its close is already pending, and OnClosed removes the
  // hook, which tells Node this cleanup is done.
  if (poll->owner != nullptr) poll->owner->ReleaseOsResources();
}

// The last thing libuv does with the poll's handles: only then may the environment go away.
void TapHandle::OnClosed(uv_handle_t* handle) {
  Poll* poll = static_cast<Poll*>(handle->data);
  if (--poll->open > 0) return;
  if (poll->hook != nullptr) napi_remove_async_cleanup_hook(poll->hook);
  delete poll;
}

void TapHandle::CloseHandles(Poll* poll) {
  // uv_close stops the poll first, so the fd may be closed right after.
  uv_close(reinterpret_cast<uv_handle_t*>(&poll->handle), OnClosed);
  if (poll->open == 2) uv_close(reinterpret_cast<uv_handle_t*>(&poll->pipeEnded), OnClosed);
}

// A pipe's read failed: as if the poll had reported the fd's error.
void TapHandle::OnPipeEnded(uv_async_t* async) {
  TapHandle* self = static_cast<Poll*>(async->data)->owner;
  if (self != nullptr && self->pipe_) self->HandlePoll(UV_EIO, 0);
}

// Stops polling, closes the fd. Calls no JS, so it is safe from the environment's cleanup hook
// and the destructor; safe to call more than once.
void TapHandle::ReleaseOsResources() {
  Unlink();  // before the fds close: no pipe thread may touch them after
  closed_ = true;
  reading_ = false;
  if (poll_ != nullptr) {
    poll_->owner = nullptr;
    CloseHandles(poll_);
    poll_ = nullptr;
  }
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
  queue_.clear();
  queuedBytes_ = 0;
}

// Ends every pipe this handle is in, as source and as target (their threads have stopped when
// this returns: the fd may be closed). Calls no JS.
void TapHandle::Unlink() {
  StopPipe();
  while (!sources_.empty()) {
    TapHandle* source = sources_.back();
    source->StopPipe();
    try {
      source->UpdatePoll();  // it reads for JS again
    } catch (const Napi::Error&) {
      // uv_poll_start failed: the source's next resume() or pipeTo() tries again
    }
  }
}

// Ends this handle's own pipe, keeping its counts; pipes into it go on. Never throws (it runs
// in the destructor).
void TapHandle::StopPipe() {
  if (!pipe_) return;
  TapHandle* target = target_;
  bool reverse = target->pipe_ && target->target_ == this;
  pipeThread_.reset();
  if (reverse) target->pipeThread_.reset();  // the thread both shared: joined here
  pipeCounts_ = pipe_->counts();
  pipe_.reset();
  UpdateLoopRef();
  auto& peers = target->sources_;
  peers.erase(std::remove(peers.begin(), peers.end(), this), peers.end());
  target_ = nullptr;
  if (!reverse) return;
  try {
    target->StartPipeThreads();  // the other direction goes on alone
  } catch (const std::system_error&) {
    target->StopPipe();  // no thread to be had: that pipe ends too, rather than stall
  }
}

// Gives this handle's pipe a thread: one shared with the reverse pipe, if there is one.
void TapHandle::StartPipeThreads() {
  std::vector<PipeDirection*> directions{pipe_.get()};
  bool reverse = target_->pipe_ && target_->target_ == this;
  if (reverse) {
    target_->pipeThread_.reset();  // joins its own thread first: one thread per direction
    directions.push_back(target_->pipe_.get());
  }
  pipeThread_ = std::make_shared<PipeThread>(std::move(directions));
  if (reverse) target_->pipeThread_ = pipeThread_;
}

Napi::Value TapHandle::GetName(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), name_); }
Napi::Value TapHandle::GetFlags(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), flags_); }
Napi::Value TapHandle::GetOffloads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), offloads_);
}

// close(): the number of frames still queued (EAGAIN), which are dropped: the caller counts them.
Napi::Value TapHandle::Close(const Napi::CallbackInfo& info) {
  size_t unsent = queue_.size();
  if (closed_ && !openRef_) return Napi::Number::New(info.Env(), 0);
  ReleaseOsResources();
  ReleaseJsReferences();
  if (openRef_) {
    openRef_ = false;
    Unref();
  }
  return Napi::Number::New(info.Env(), static_cast<double>(unsent));
}

// Lets go of everything JS lent this handle. The callbacks are strong references, and they close
// over the port that holds this handle's wrapper: kept after close, that cycle went through a
// GC root, and no closed device (port, engine, slab) was ever freed. A closed handle calls no JS.
void TapHandle::ReleaseJsReferences() {
  DropSlab();
  onRead_.Reset();
  onDrain_.Reset();
  onError_.Reset();
  offsetsRef_.Reset();
  offsets_ = nullptr;
  spill_.reset();
}

// pipeTo(target): from now on, frames read here are written to `target` (another open
// TapHandle) in C++; pipeTo(null) stops. Frames already handed to JS are not affected.
void TapHandle::PipeTo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TapHandle* target = nullptr;
  if (!info[0].IsNull()) {
    bool tagged = false;
    if (info[0].IsObject()) napi_check_object_type_tag(env, info[0], &kTapHandleTag, &tagged);
    if (!tagged) throw Napi::TypeError::New(env, "target must be a TapHandle or null");
    target = Unwrap(info[0].As<Napi::Object>());
    if (target == this) throw Napi::RangeError::New(env, "a handle cannot pipe to itself");
    if (target->closed_) throw ErrnoError(env, EBADF, "write", target->name_);
  }
  if (closed_) throw ErrnoError(env, EBADF, "read", name_);
  StopPipe();
  if (target != nullptr) {
    pipe_ = std::make_unique<PipeDirection>(fd_, target->fd_, kSpillBytes, &poll_->pipeEnded);
    target_ = target;
    target->sources_.push_back(this);
    try {
      StartPipeThreads();
    } catch (const std::system_error& error) {
      StopPipe();
      throw ErrnoError(env, error.code().value(), "pthread_create", name_);
    }
    UpdateLoopRef();
  }
  UpdatePoll();
}

// pipeCounts(): [frames, bytes, refused with EIO, refused otherwise] of the latest pipe.
Napi::Value TapHandle::PipeCounts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  PipeDirection::Counts latest = pipe_ ? pipe_->counts() : pipeCounts_;
  Napi::Array counts = Napi::Array::New(env, 4);
  counts.Set(0u, latest.frames);
  counts.Set(1u, latest.bytes);
  counts.Set(2u, latest.interfaceDown);
  counts.Set(3u, latest.refused);
  return counts;
}

void TapHandle::Resume(const Napi::CallbackInfo& info) {
  if (closed_) return;
  reading_ = true;
  UpdatePoll();
}

void TapHandle::Pause(const Napi::CallbackInfo& info) {
  if (closed_) return;
  reading_ = false;
  UpdatePoll();
}

void TapHandle::RefLoop(const Napi::CallbackInfo& info) {
  loopRef_ = true;
  if (poll_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(&poll_->handle));
  UpdateLoopRef();
}

void TapHandle::UnrefLoop(const Napi::CallbackInfo& info) {
  loopRef_ = false;
  if (poll_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(&poll_->handle));
  UpdateLoopRef();
}

// An open handle holds the loop (unless unref()ed) through its poll. While a pipe's thread does
// the reading, the poll may be stopped, and a stopped handle holds nothing: pipeEnded holds the
// loop then, as a socket being read would.
void TapHandle::UpdateLoopRef() {
  if (poll_ == nullptr) return;
  uv_handle_t* async = reinterpret_cast<uv_handle_t*>(&poll_->pipeEnded);
  if (pipe_ && loopRef_) {
    uv_ref(async);
  } else {
    uv_unref(async);
  }
}

// Poll for what is wanted now: readable while reading, writable while frames are queued.
void TapHandle::UpdatePoll() {
  if (poll_ == nullptr) return;
  int want = 0;
  if (!failed_) {
    if (reading_ && !pipe_) want |= UV_READABLE;  // a pipe's thread reads instead
    if (!queue_.empty()) want |= UV_WRITABLE;
  }
  if (want == pollEvents_) return;
  pollEvents_ = want;
  if (want == 0) {
    uv_poll_stop(&poll_->handle);
  } else {
    int err = uv_poll_start(&poll_->handle, want, OnPoll);
    if (err != 0) throw ErrnoError(Napi::Env(env_), -err, "uv_poll_start");
  }
}

void TapHandle::OnPoll(uv_poll_t* handle, int status, int events) {
  TapHandle* self = static_cast<Poll*>(handle->data)->owner;
  if (self != nullptr) self->HandlePoll(status, events);
}

void TapHandle::HandlePoll(int status, int events) {
  Napi::Env env(env_);
  Napi::HandleScope scope(env);
  // JS called from here may close this handle and drop the last reference to the wrapper:
  // keep it alive until we are done with `this`.
  Ref();
  try {
    if (status < 0) {
      // libuv reports EPOLLERR as UV_EBADF and stops the handle (a pipe's thread, as UV_EIO).
      // A read says what happened (EBADFD: the interface was deleted under the fd).
      int err = -status;
      if (read(fd_, spill_.get(), kSpillBytes) < 0 && errno != EAGAIN && errno != EINTR) err = errno;
      failed_ = true;
      pollEvents_ = 0;
      uv_poll_stop(&poll_->handle);
      ReportError(env, err, "read");
    } else {
      if ((events & UV_WRITABLE) != 0 && !closed_) FlushQueue(env);
      if ((events & UV_READABLE) != 0 && !closed_ && reading_ && !pipe_) ReadFrames(env);
    }
  } catch (const Napi::Error& error) {
    // A JS callback threw: report it as uncaught, as Node does for its own callbacks.
    napi_fatal_exception(env_, error.Value());
  }
  Unref();
}

void TapHandle::SetSlab(Napi::ArrayBuffer slab) {
  slab_.Reset(slab, 1);
  slabData_ = static_cast<uint8_t*>(slab.Data());
  slabSize_ = slab.ByteLength();
  slabUsed_ = 0;
}

// A fresh slab, not zero-filled: every byte JS is shown is one a read() wrote (frames are
// views of exactly what was read), and zeroing each slab cost up to 15% of a relay's CPU.
// node::Buffer's allocation is uninitialised (Buffer.allocUnsafeSlow's); the slab is its
// ArrayBuffer.
Napi::ArrayBuffer TapHandle::NewSlab(Napi::Env env, size_t size) {
  napi_value buffer;
  void* data = nullptr;
  napi_value arrayBuffer;
  if (napi_create_buffer(env, size, &data, &buffer) != napi_ok ||
      napi_get_typedarray_info(env, buffer, nullptr, nullptr, nullptr, &arrayBuffer, nullptr) != napi_ok) {
    throw Napi::Error::New(env, "could not allocate a receive slab");
  }
  return Napi::ArrayBuffer(env, arrayBuffer);
}

void TapHandle::DropSlab() {
  slab_.Reset();
  slabData_ = nullptr;
  slabSize_ = 0;
  slabUsed_ = 0;
}

// Reads up to batchFrames_ frames (or until EAGAIN), each straight into the slab's free tail,
// and hands them to JS in one call. A fresh slab is taken when the tail could not hold the
// largest frame expected; the batch is delivered before that, as a batch lives in one slab.
void TapHandle::ReadFrames(Napi::Env env) {
  // JS may have transferred the slab (postMessage, structuredClone) since the last batch: its
  // memory is no longer ours to write.
  if (slabData_ != nullptr && slab_.Value().IsDetached()) DropSlab();
  pending_ = 0;
  for (uint32_t budget = batchFrames_; budget > 0 && reading_ && !closed_; budget--) {
    if (slabData_ == nullptr || slabSize_ - slabUsed_ < frameReserve_) {
      Deliver(env);
      if (closed_ || !reading_) return;
      SetSlab(NewSlab(env, slabBytes_));
    }
    if (pending_ == 0) offsets_[0] = static_cast<uint32_t>(slabUsed_);
    size_t room = slabSize_ - slabUsed_;
    ssize_t n;
    if (room >= kMaxDeviceFrame) {
      n = read(fd_, slabData_ + slabUsed_, room);
    } else {
      struct iovec iov[2] = {{slabData_ + slabUsed_, room}, {spill_.get(), kSpillBytes}};
      n = readv(fd_, iov, 2);
    }
    if (n <= 0) {
      // 0 is the end of an adopted socket (its peer closed; a tap or tun read never returns 0):
      // the fd's failure, reported once, rather than read as empty frames forever.
      int err = n == 0 ? EPIPE : errno;
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
    size_t length = static_cast<size_t>(n);
    if (length > room) {
      // It spilled: give the frame a slab of its own. The new slab is allocated (and the
      // frame moved) before JS runs, while the old slab is certainly still ours.
      Napi::ArrayBuffer big = NewSlab(env, std::max(slabBytes_, length + frameReserve_));
      memcpy(big.Data(), slabData_ + slabUsed_, room);
      memcpy(static_cast<uint8_t*>(big.Data()) + room, spill_.get(), length - room);
      Deliver(env);
      if (closed_) return;
      SetSlab(big);
      offsets_[0] = 0;
    }
    slabUsed_ += length;
    offsets_[++pending_] = static_cast<uint32_t>(slabUsed_);
  }
  Deliver(env);
  // A slab too full for another frame is let go now, so it is freed with its last frame.
  if (slabData_ != nullptr && slabSize_ - slabUsed_ < frameReserve_) DropSlab();
}

// Hands the pending frames to JS: onRead(slab, count), boundaries in offsets.
void TapHandle::Deliver(Napi::Env env) {
  if (pending_ == 0) return;
  uint32_t count = pending_;
  pending_ = 0;
  // MakeCallback, not Call: it runs the microtask queue afterwards (promises resolved by the
  // batch settle now) and gives async_hooks a resource.
  onRead_.MakeCallback(Value(), {slab_.Value(), Napi::Number::New(env, count)}, *async_);
  if (slabData_ != nullptr && slab_.Value().IsDetached()) DropSlab();
}

void TapHandle::ReportError(Napi::Env env, int err, const char* syscall) {
  Napi::Error error = ErrnoError(env, err, syscall, name_);
  onError_.MakeCallback(Value(), {error.Value()}, *async_);
}

Napi::Value TapHandle::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) throw ErrnoError(env, EBADF, "write", name_);
  uint8_t* data;
  size_t length;
  if (!Uint8Bytes(env, info[0], &data, &length)) throw Napi::TypeError::New(env, "frame must be a Uint8Array");
  Send(env, data, length);
  return Napi::Number::New(env, static_cast<double>(queuedBytes_));
}

Napi::Value TapHandle::WriteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) throw ErrnoError(env, EBADF, "write", name_);
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "frames must be an array");
  napi_value frames = info[0];
  uint32_t count = info[0].As<Napi::Array>().Length();
  for (uint32_t i = 0; i < count; i++) {
    napi_value value;
    uint8_t* data;
    size_t length;
    if (napi_get_element(env, frames, i, &value) != napi_ok || !Uint8Bytes(env, value, &data, &length)) {
      throw Napi::TypeError::New(env, "frames[" + std::to_string(i) + "] must be a Uint8Array");
    }
    try {
      Send(env, data, length);
    } catch (Napi::Error& error) {
      // Frames before this one were sent.
      error.Set("index", Napi::Number::New(env, i));
      throw;
    }
  }
  return Napi::Number::New(env, static_cast<double>(queuedBytes_));
}

// writeSpans(buffer, spans, count): frame i is buffer[spans[2i], spans[2i] + spans[2i + 1]).
// The batch-of-views-into-one-slab case (a relay's) in one N-API crossing, without an element
// lookup and a typed-array query per frame.
Napi::Value TapHandle::WriteSpans(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) throw ErrnoError(env, EBADF, "write", name_);
  void* base = nullptr;
  size_t size = 0;
  if (info.Length() < 3 || napi_get_arraybuffer_info(env, info[0], &base, &size) != napi_ok) {
    throw Napi::TypeError::New(env, "buffer must be an ArrayBuffer");
  }
  napi_typedarray_type type;
  size_t elements = 0;
  void* spanData = nullptr;
  if (napi_get_typedarray_info(env, info[1], &type, &elements, &spanData, nullptr, nullptr) != napi_ok ||
      type != napi_uint32_array) {
    throw Napi::TypeError::New(env, "spans must be a Uint32Array");
  }
  double wanted = info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : -1;
  if (!(wanted >= 0 && wanted * 2 <= static_cast<double>(elements)) || wanted != static_cast<uint32_t>(wanted)) {
    throw Napi::RangeError::New(env, "count must be an integer with 2 * count ≤ spans.length");
  }
  uint32_t count = static_cast<uint32_t>(wanted);
  const uint32_t* spans = static_cast<const uint32_t*>(spanData);
  const uint8_t* bytes = static_cast<const uint8_t*>(base);
  for (uint32_t i = 0; i < count; i++) {
    size_t offset = spans[2 * i];
    size_t length = spans[2 * i + 1];
    if (offset > size || length > size - offset) {
      Napi::Error error = Napi::RangeError::New(env, "frames[" + std::to_string(i) + "] is outside its buffer");
      error.Set("index", Napi::Number::New(env, i));
      throw error;
    }
    try {
      Send(env, bytes + offset, length);
    } catch (Napi::Error& error) {
      error.Set("index", Napi::Number::New(env, i));
      throw;
    }
  }
  return Napi::Number::New(env, static_cast<double>(queuedBytes_));
}

// One write() per frame: a tap/tun (or SOCK_SEQPACKET) write takes a whole frame or none.
// Once anything is queued, later frames queue behind it to keep their order.
void TapHandle::Send(Napi::Env env, const uint8_t* data, size_t length) {
  if (queue_.empty()) {
    for (;;) {
      if (write(fd_, data, length) >= 0) return;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      throw ErrnoError(env, errno, "write", name_);
    }
  }
  queue_.emplace_back(data, data + length);
  queuedBytes_ += length;
  UpdatePoll();
}

// Writable again: send what was queued; when all went, stop polling for writable and tell JS.
void TapHandle::FlushQueue(Napi::Env env) {
  while (!queue_.empty()) {
    const std::vector<uint8_t>& frame = queue_.front();
    if (write(fd_, frame.data(), frame.size()) < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) return;
      queuedBytes_ -= frame.size();
      queue_.pop_front();
      ReportError(env, err, "write");  // the frame is dropped; the others still go
      if (closed_) return;
      continue;
    }
    queuedBytes_ -= frame.size();
    queue_.pop_front();
  }
  UpdatePoll();
  onDrain_.MakeCallback(Value(), {}, *async_);
}

}  // namespace tapkit
