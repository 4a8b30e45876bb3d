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
  auto methods = CommonMethods();
  methods.insert(methods.end(), {
                                    InstanceAccessor<&TapHandle::GetFlags>("flags"),
                                    InstanceAccessor<&TapHandle::GetOffloads>("offloads"),
                                    InstanceMethod<&TapHandle::Write>("write"),
                                    InstanceMethod<&TapHandle::WriteBatch>("writeBatch"),
                                    InstanceMethod<&TapHandle::WriteSpans>("writeSpans"),
                                    InstanceMethod<&TapHandle::PipeTo>("pipeTo"),
                                    InstanceMethod<&TapHandle::PipeCounts>("pipeCounts"),
                                    InstanceMethod<&TapHandle::SetFrameLimit>("setFrameLimit"),
                                });
  return DefineClass(env, "TapHandle", methods);
}

// new TapHandle({ name?, mode?, multiQueue?, exclusive?, vnetHeader?, offloads?, path? | fd,
//                 batchFrames, offsets, frameReserve, slabBytes, onRead, onDrain, onError })
TapHandle::TapHandle(const Napi::CallbackInfo& info) : FdHandle<TapHandle>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
  Napi::Object options = info[0].As<Napi::Object>();

  // Everything that can throw without holding an OS resource comes first.
  uint32_t batch = UintOption(options, "batchFrames", 1, kMaxBatchFrames);
  uint32_t reserve = UintOption(options, "frameReserve", 1, kMaxFrameReserve);
  uint32_t slabBytes = UintOption(options, "slabBytes", reserve, kMaxSlabBytes);
  Napi::Uint32Array offsets = OffsetsOption(options, batch + 1, "batchFrames + 1 elements");
  InitReader(options, batch, reserve, slabBytes, offsets, kSpillBytes, "TapHandle");
  if (napi_type_tag_object(env, Value(), &kTapHandleTag) != napi_ok) {
    throw Napi::Error::New(env, "could not tag the handle");
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
  Open(env, raw);
}

TapHandle::~TapHandle() { ReleaseOsResources(); }

// One frame per read. With at least kMaxDeviceFrame free in the slab a plain read() cannot
// truncate, and the spill is not needed.
ssize_t TapHandle::ReadFrame(struct iovec iov[2]) {
  ssize_t n = iov[0].iov_len >= kMaxDeviceFrame ? read(fd_, iov[0].iov_base, iov[0].iov_len) : readv(fd_, iov, 2);
  // 0 is the end of an adopted socket (its peer closed; a tap or tun read never returns 0): the
  // fd's failure, reported once, rather than read as empty frames forever.
  if (n == 0) {
    errno = EPIPE;
    return -1;
  }
  return n;
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
  } catch (const PipeStartError&) {
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
    pipe_ = std::make_unique<PipeDirection>(fd_, target->fd_, kSpillBytes, &poll_->pipeEnded, target->frameLimit_);
    target_ = target;
    target->sources_.push_back(this);
    try {
      StartPipeThreads();
    } catch (const PipeStartError& error) {
      StopPipe();
      throw ErrnoError(env, error.code, "pthread_create", name_);
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

// setFrameLimit(min, max, tagged): the frames this handle takes from a pipe, as the engine checks
// a write: min to max bytes (max 0: any), `tagged` more for a VLAN-tagged Ethernet frame. Its
// port calls it at open and whenever the MTU changes; a frame outside is refused and counted.
void TapHandle::SetFrameLimit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t values[3];
  for (uint32_t i = 0; i < 3; i++) {
    double value = info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : -1;
    if (!(value >= 0 && value <= UINT32_MAX) || value != static_cast<uint32_t>(value)) {
      throw Napi::RangeError::New(env, "setFrameLimit(min, max, tagged) takes three integers ≥ 0");
    }
    values[i] = static_cast<uint32_t>(value);
  }
  frameLimit_->Set(values[0], values[1], values[2]);
}

Napi::Value TapHandle::GetFlags(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), flags_); }
Napi::Value TapHandle::GetOffloads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), offloads_);
}

Napi::Value TapHandle::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ThrowIfClosed(env);
  uint8_t* data;
  size_t length;
  if (!Uint8Bytes(env, info[0], &data, &length)) throw Napi::TypeError::New(env, "frame must be a Uint8Array");
  Send(env, nullptr, 0, data, length);
  return QueuedBytes(env);
}

Napi::Value TapHandle::WriteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ThrowIfClosed(env);
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "frames must be an array");
  napi_value frames = info[0];
  SendEach(env, info[0].As<Napi::Array>().Length(), [&](uint32_t i) {
    napi_value value;
    uint8_t* data;
    size_t length;
    if (napi_get_element(env, frames, i, &value) != napi_ok || !Uint8Bytes(env, value, &data, &length)) {
      throw Napi::TypeError::New(env, "frames[" + std::to_string(i) + "] must be a Uint8Array");
    }
    Send(env, nullptr, 0, data, length);
  });
  return QueuedBytes(env);
}

// writeSpans(buffer, spans, count): frame i is buffer[spans[2i], spans[2i] + spans[2i + 1]).
// The batch-of-views-into-one-slab case (a relay's) in one N-API crossing, without an element
// lookup and a typed-array query per frame.
Napi::Value TapHandle::WriteSpans(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ThrowIfClosed(env);
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
  const uint32_t* spans = static_cast<const uint32_t*>(spanData);
  const uint8_t* bytes = static_cast<const uint8_t*>(base);
  SendEach(env, static_cast<uint32_t>(wanted), [&](uint32_t i) {
    size_t offset = spans[2 * i];
    size_t length = spans[2 * i + 1];
    if (offset > size || length > size - offset) {
      throw Napi::RangeError::New(env, "frames[" + std::to_string(i) + "] is outside its buffer");
    }
    Send(env, nullptr, 0, bytes + offset, length);
  });
  return QueuedBytes(env);
}

}  // namespace tapkit
