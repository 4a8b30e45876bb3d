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
  auto methods = CommonMethods();
  methods.push_back(InstanceMethod<&UtunHandle::Write>("write"));
  methods.push_back(InstanceMethod<&UtunHandle::WriteBatch>("writeBatch"));
  return DefineClass(env, "UtunHandle", methods);
}

// new UtunHandle({ unit? | fd?, batchPackets, offsets, datagramReserve, slabBytes, onRead,
//                  onDrain, onError }): see UtunHandleOptions in src/utun-system.ts.
UtunHandle::UtunHandle(const Napi::CallbackInfo& info) : FdHandle<UtunHandle>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
  Napi::Object options = info[0].As<Napi::Object>();

  // Everything that can throw without holding an OS resource comes first.
  uint32_t batch = UintOption(options, "batchPackets", 1, kMaxBatchPackets);
  size_t reserve = static_cast<size_t>(IntegerOption(options, "datagramReserve", kHeader + 1, kSpillBytes));
  size_t slabBytes = static_cast<size_t>(
      IntegerOption(options, "slabBytes", static_cast<double>(reserve + kGap + 8), kMaxSlabBytes));
  int64_t unit = -1;
  if (!options.Get("unit").IsUndefined()) {
    unit = static_cast<int64_t>(IntegerOption(options, "unit", 0, 4294967294.0));
  }
  Napi::Uint32Array offsets = OffsetsOption(options, 2 * static_cast<size_t>(batch), "2 × batchPackets elements");
  InitReader(options, batch, reserve, slabBytes, offsets, kSpillBytes, "UtunHandle");

  int raw = -1;
  if (options.Get("fd").IsUndefined()) {
    raw = OpenUtun(env, unit, &name_);
  } else {
    // An fd opened elsewhere: a utun handed over by a privileged helper, or one end of a
    // datagramPair() in tests. The handle owns it from here on.
    raw = static_cast<int>(IntegerOption(options, "fd", 0, INT32_MAX));
    int flags = fcntl(raw, F_GETFL);
    if (flags < 0 || fcntl(raw, F_SETFL, flags | O_NONBLOCK) < 0) throw ErrnoError(env, errno, "fcntl");
    char ifname[IFNAMSIZ + 1];
    memset(ifname, 0, sizeof ifname);
    socklen_t length = IFNAMSIZ;
    if (getsockopt(raw, SYSPROTO_CONTROL, UTUN_OPT_IFNAME, ifname, &length) == 0) {
      name_.assign(ifname, strnlen(ifname, IFNAMSIZ));
    }
  }
  // From here the environment's exit closes the socket if JS has not, so no utun stays.
  Open(env, raw);
}

UtunHandle::~UtunHandle() { ReleaseOsResources(); }

size_t UtunHandle::FrameStart(size_t used) const { return AlignUp(used, 8) + kGap; }

// One datagram per recvmsg. A datagram cut short cannot happen (the spill area holds the largest
// one), and an empty one carries nothing: neither is handed on.
ssize_t UtunHandle::ReadFrame(struct iovec iov[2]) {
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  ssize_t n = recvmsg(fd_, &msg, 0);
  if (n > 0 && (msg.msg_flags & MSG_TRUNC) != 0) return 0;
  return n;
}

// write(family, packet): one datagram, header first.
Napi::Value UtunHandle::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ThrowIfClosed(env);
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "family must be a number");
  uint8_t* data;
  size_t length;
  if (!Uint8Bytes(env, info[1], &data, &length)) throw Napi::TypeError::New(env, "packet must be a Uint8Array");
  uint32_t header = htonl(info[0].As<Napi::Number>().Uint32Value());
  Send(env, reinterpret_cast<const uint8_t*>(&header), kHeader, data, length);
  return QueuedBytes(env);
}

// writeBatch(packets, families): families[i] (a Uint8Array) is packets[i]'s family. One
// writev() per packet: the header and the packet leave as one datagram, without a copy.
// ENOBUFS/ENOSPC (the utun's input queue is full) are thrown like any error; the TS side counts
// them as drops.
Napi::Value UtunHandle::WriteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ThrowIfClosed(env);
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "packets must be an array");
  napi_value packets = info[0];
  uint32_t count = info[0].As<Napi::Array>().Length();
  uint8_t* families;
  size_t familyCount;
  if (!Uint8Bytes(env, info[1], &families, &familyCount) || familyCount < count) {
    throw Napi::TypeError::New(env, "families must be a Uint8Array with one entry per packet");
  }
  SendEach(env, count, [&](uint32_t i) {
    napi_value value;
    uint8_t* data;
    size_t length;
    if (napi_get_element(env, packets, i, &value) != napi_ok || !Uint8Bytes(env, value, &data, &length)) {
      throw Napi::TypeError::New(env, "packets[" + std::to_string(i) + "] must be a Uint8Array");
    }
    uint32_t header = htonl(families[i]);
    Send(env, reinterpret_cast<const uint8_t*>(&header), kHeader, data, length);
  });
  return QueuedBytes(env);
}

}  // namespace tapkit
