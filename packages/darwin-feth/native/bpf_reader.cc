#include "bpf_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "ndrv_writer.h"
#include "sys.h"
#include "tapkit/darwin_sdk.h"
#include "tapkit/args.h"
#include "tapkit/errors.h"

namespace tapkit {
namespace {

// Reads per wake-up, each of up to the buffer size; they reach JS in one call. What is left
// stays in the kernel, and the poll (level-triggered) wakes again on the next loop turn.
constexpr uint32_t kReadsPerBatch = 4;
// bpf.c: BPF_MAX_DEVICES nodes at most; opening the last node clones the next one.
constexpr int kMaxDevices = 256;
constexpr uint32_t kMinBufferSize = 4096;
constexpr uint32_t kMaxBufferSize = 16 * 1024 * 1024;

// Opens the first free /dev/bpfN: each node opens once at a time (EBUSY), and the kernel makes
// the next node when the last one is opened (bpfopen), so trying them in order finds one.
int OpenBpfDevice(Napi::Env env, std::string* path) {
  for (int unit = 0; unit < kMaxDevices; unit++) {
    char name[32];
    snprintf(name, sizeof name, "/dev/bpf%d", unit);
    int fd = open(name, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      *path = name;
      return fd;
    }
    if (errno != EBUSY) throw ErrnoError(env, errno, "open", name);
  }
  throw ErrnoError(env, EBUSY, "open", "/dev/bpf*");
}

void BpfIoctl(Napi::Env env, int fd, unsigned long request, const char* requestName, void* arg,
              const std::string& subject) {
  if (ioctl(fd, request, arg) < 0) throw ErrnoError(env, errno, "ioctl", subject, requestName);
}

}  // namespace

Napi::Function BpfReader::Define(Napi::Env env) {
  auto methods = CommonMethods();
  methods.insert(methods.end(), {
                                    InstanceAccessor<&BpfReader::GetBufferSize>("bufferSize"),
                                    InstanceAccessor<&BpfReader::GetDevice>("device"),
                                    InstanceMethod<&BpfReader::PipeTo>("pipeTo"),
                                    InstanceMethod<&BpfReader::PipeCounts>("pipeCounts"),
                                });
  return DefineClass(env, "BpfReader", methods);
}

// new BpfReader(interfaceName, { bufferSize, onRead(buffer, chunkEnds), onError(error) })
BpfReader::BpfReader(const Napi::CallbackInfo& info) : FdHandle<BpfReader>(info) {
  Napi::Env env = info.Env();
  // Everything that can fail without holding an OS resource comes first.
  name_ = NameArg(info, 0);
  if (!info[1].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
  Napi::Object options = info[1].As<Napi::Object>();
  InitCallbacks(options, false, "tapkit:BpfReader");
  u_int size = UintOption(options, "bufferSize", kMinBufferSize, kMaxBufferSize);

  FdGuard fd(OpenBpfDevice(env, &device_));
  // The order matters. The buffer size can only be set before BIOCSETIF (EINVAL after); the
  // kernel caps it silently and writes back what it granted (BIOCSBLEN is _IOWR).
  BpfIoctl(env, fd.get(), BIOCSBLEN, "BIOCSBLEN", &size, device_);
  u_int one = 1;
  u_int zero = 0;
  // Wake the reader for every packet, not when the buffer is full.
  BpfIoctl(env, fd.get(), BIOCIMMEDIATE, "BIOCIMMEDIATE", &one, device_);
  // Inbound only: what arrives on the I/O member from its peer, not what tapkit injects.
  BpfIoctl(env, fd.get(), BIOCSSEESENT, "BIOCSSEESENT", &zero, device_);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name_.data(), name_.size());
  BpfIoctl(env, fd.get(), BIOCSETIF, "BIOCSETIF", &ifr, name_);
  // Link headers are complete: this matters for writes through BPF only (tapkit writes with
  // NDRV), set as ZeroTier sets it so the fd behaves the same if it is ever written.
  BpfIoctl(env, fd.get(), BIOCSHDRCMPLT, "BIOCSHDRCMPLT", &one, device_);
  // Every frame the peer sends, whatever its destination MAC.
  BpfIoctl(env, fd.get(), BIOCPROMISC, "BIOCPROMISC", nullptr, device_);
  int flags = fcntl(fd.get(), F_GETFL);
  if (flags < 0 || fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) < 0) throw ErrnoError(env, errno, "fcntl", device_);

  bufferSize_ = size;
  batchCapacity_ = static_cast<size_t>(size) * kReadsPerBatch;
  spill_.reset(new uint8_t[batchCapacity_]);
  spillBytes_ = size;

  // After BIOCSETIF: libuv checks the fd by adding an EVFILT_READ kevent, which a BPF fd
  // accepts only once it is bound (filt_bpfattach). It accepts no other filter, and a reader
  // never queues writes, so the poll is only ever started for UV_READABLE. Nothing after
  // Open() throws: from there the reader is open.
  Open(env, fd.release());
}

BpfReader::~BpfReader() { ReleaseOsResources(); }

Napi::Value BpfReader::GetBufferSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), bufferSize_);
}

Napi::Value BpfReader::GetDevice(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), device_); }

// pipeTo(writer): from now on, a thread of its own reads this BPF fd, splits each read into
// records and sends every whole frame to `writer` (an open NdrvWriter); pipeTo(null) stops.
// Reads already handed to JS are not affected.
void BpfReader::PipeTo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NdrvWriter* target = nullptr;
  if (!info[0].IsNull()) {
    bool tagged = false;
    if (info[0].IsObject()) napi_check_object_type_tag(env, info[0], &kNdrvWriterTag, &tagged);
    if (!tagged) throw Napi::TypeError::New(env, "target must be an NdrvWriter or null");
    target = NdrvWriter::Unwrap(info[0].As<Napi::Object>());
    if (target->fd_ < 0) throw ErrnoError(env, EBADF, "write", target->interface_);
  }
  if (closed_ || failed_) throw ErrnoError(env, EBADF, "read", name_);
  StopPipe();  // reads for JS again, if it was reading
  if (target == nullptr) return;
  pipe_ = std::make_unique<PipeDirection>(fd_, target->fd_, bufferSize_, &poll_->pipeEnded, target->frameLimit_,
                                          ReadFraming::kBpf, WriteFraming::kSend);
  UpdatePoll();  // the thread reads now, not the poll
  try {
    pipeThread_ = std::make_unique<PipeThread>(std::vector<PipeDirection*>{pipe_.get()});
  } catch (const PipeStartError& error) {
    pipe_.reset();
    UpdatePoll();
    throw ErrnoError(env, error.code, "pthread_create", name_);
  }
  target_ = target;
  target->sources_.push_back(this);
  UpdateLoopRef();
}

void BpfReader::StopPipe() {
  if (!pipe_) return;
  pipeThread_.reset();  // stops and joins the thread
  pipeCounts_ = pipe_->counts();
  pipe_.reset();
  if (target_ != nullptr) {
    auto& peers = target_->sources_;
    peers.erase(std::remove(peers.begin(), peers.end(), this), peers.end());
    target_ = nullptr;
  }
  UpdateLoopRef();
  // The poll reads for JS again if JS wanted reads (a failed restart shows at the next resume).
  try {
    UpdatePoll();
  } catch (const Napi::Error&) {
  }
}

// pipeCounts(): the latest pipe's [frames, bytes, interfaceDown, refused, noBuffers, truncated,
// runts, malformed] (see PipeDirection::Counts).
Napi::Value BpfReader::PipeCounts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  PipeDirection::Counts c = pipe_ ? pipe_->counts() : pipeCounts_;
  double values[] = {c.frames, c.bytes, c.interfaceDown, c.refused, c.noBuffers, c.truncated, c.runts, c.malformed};
  Napi::Array counts = Napi::Array::New(env, 8);
  for (uint32_t i = 0; i < 8; i++) counts.Set(i, values[i]);
  return counts;
}

// Reads until EAGAIN, the read cap or the batch capacity, then hands everything read to JS in
// one call: onRead(buffer, chunkEnds), read i ending at chunkEnds[i]. Every read asks for
// exactly the buffer size (bpfread: EINVAL otherwise) and returns whole records.
void BpfReader::OnReadable(Napi::Env env) {
  uint32_t ends[kReadsPerBatch];
  uint32_t reads = 0;
  size_t used = 0;
  int err = 0;
  while (reads < kReadsPerBatch && batchCapacity_ - used >= bufferSize_) {
    ssize_t n = read(fd_, spill_.get() + used, bufferSize_);
    if (n > 0) {
      used += static_cast<size_t>(n);
      ends[reads++] = static_cast<uint32_t>(used);
      continue;
    }
    if (n == 0) {
      // Non-blocking bpfread returns data, EWOULDBLOCK, or ENXIO once the interface is gone;
      // 0 bytes from a readable fd means its end: report it as gone rather than spin on it.
      if (reads == 0) err = ENXIO;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    err = errno;  // ENXIO once the interface is gone
    break;
  }
  if (reads > 0) {
    // One copy per batch into memory JS owns; the batch buffer is reused for the next one.
    Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, used);
    memcpy(buffer.Data(), spill_.get(), used);
    Napi::Uint32Array chunkEnds = Napi::Uint32Array::New(env, reads);
    for (uint32_t i = 0; i < reads; i++) chunkEnds[i] = ends[i];
    CallOnRead({buffer, chunkEnds});
  }
  if (err != 0 && !closed_) FailRead(env, err);
}

}  // namespace tapkit
