#include "ndrv_writer.h"

#include "bpf_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "sys.h"
#include "tapkit/darwin_sdk.h"
#include "tapkit/args.h"
#include "tapkit/errors.h"

namespace tapkit {
Napi::Function NdrvWriter::Define(Napi::Env env) {
  return DefineClass(env, "NdrvWriter",
                     {
                         InstanceMethod<&NdrvWriter::Write>("write"),
                         InstanceMethod<&NdrvWriter::WriteBatch>("writeBatch"),
                         InstanceMethod<&NdrvWriter::Close>("close"),
                         InstanceMethod<&NdrvWriter::SetFrameLimit>("setFrameLimit"),
                     });
}

// new NdrvWriter(interfaceName, { sendBufferSize })
NdrvWriter::NdrvWriter(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NdrvWriter>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  interface_ = NameArg(info, 0);
  if (!info[1].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
  Napi::Object options = info[1].As<Napi::Object>();
  int sendBufferSize = 0;
  if (!options.Get("sendBufferSize").IsUndefined()) {
    sendBufferSize = static_cast<int>(IntegerOption(options, "sendBufferSize", 1, 64 * 1024 * 1024));
  }

  // Root only: ndrv_attach refuses (EPERM) a socket created without privilege.
  FdGuard fd(socket(AF_NDRV, SOCK_RAW, 0));
  if (fd.get() < 0) throw ErrnoError(env, errno, "socket", interface_);
  int flags = fcntl(fd.get(), F_GETFL);
  if (flags < 0 || fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) < 0) throw ErrnoError(env, errno, "fcntl");
  if (fcntl(fd.get(), F_SETFD, FD_CLOEXEC) < 0) throw ErrnoError(env, errno, "fcntl");
  int one = 1;
  // Once the interface is gone, sends fail with EPIPE (ndrv_handle_ifp_detach: socantsendmore);
  // without this they would also raise SIGPIPE.
  if (setsockopt(fd.get(), SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) < 0) {
    throw ErrnoError(env, errno, "setsockopt", interface_, "SO_NOSIGPIPE");
  }
  // Sends are atomic (PR_ATOMIC): a frame larger than the send buffer (8192 by default,
  // NDRVSNDQ) fails with EMSGSIZE, so large MTUs need a larger one.
  if (sendBufferSize > 0 &&
      setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &sendBufferSize, sizeof sendBufferSize) < 0) {
    throw ErrnoError(env, errno, "setsockopt", interface_, "SO_SNDBUF");
  }
  struct sockaddr_ndrv address;
  memset(&address, 0, sizeof address);
  address.snd_len = sizeof address;
  address.snd_family = AF_NDRV;
  memcpy(address.snd_name, interface_.data(), interface_.size());
  // bind picks the interface (EADDRNOTAVAIL if there is none by that name); connect makes
  // plain write(2) possible.
  if (bind(fd.get(), reinterpret_cast<struct sockaddr*>(&address), sizeof address) < 0) {
    throw ErrnoError(env, errno, "bind", interface_);
  }
  if (connect(fd.get(), reinterpret_cast<struct sockaddr*>(&address), sizeof address) < 0) {
    throw ErrnoError(env, errno, "connect", interface_);
  }
  if (napi_type_tag_object(env, Value(), &kNdrvWriterTag) != napi_ok) {
    throw Napi::Error::New(env, "could not tag the writer");
  }
  fd_ = fd.release();
  napi_add_env_cleanup_hook(env_, CleanupHook, this);
  hookAdded_ = true;
}

NdrvWriter::~NdrvWriter() { ReleaseOsResources(); }

void NdrvWriter::CleanupHook(void* arg) {
  auto* self = static_cast<NdrvWriter*>(arg);
  self->hookAdded_ = false;
  self->ReleaseOsResources();
}

void NdrvWriter::ReleaseOsResources() {
  // No pipe thread may send to the socket once it is closed.
  while (!sources_.empty()) sources_.back()->StopPipe();
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
  if (hookAdded_) {
    hookAdded_ = false;
    napi_remove_env_cleanup_hook(env_, CleanupHook, this);
  }
}

// No write queue: ndrv_output hands the frame to the driver before write(2) returns, so the
// send buffer never fills and EAGAIN does not happen in practice; ENOBUFS (no mbufs, or the
// interface queue is full) drops the frame as a NIC would.
int NdrvWriter::Send(const uint8_t* data, size_t length) {
  if (fd_ < 0) return -EBADF;
  for (;;) {
    ssize_t n = write(fd_, data, length);
    if (n >= 0) return 1;
    if (errno == EINTR) continue;
    if (errno == ENOBUFS || errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    return -errno;
  }
}

Napi::Value NdrvWriter::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* data = nullptr;
  size_t length = 0;
  if (!Uint8Bytes(env, info[0], &data, &length)) throw Napi::TypeError::New(env, "a frame must be a Uint8Array");
  int sent = Send(data, length);
  if (sent < 0) throw ErrnoError(env, -sent, "write", interface_);
  return Napi::Boolean::New(env, sent == 1);
}

// writeBatch(frames): returns how many were dropped for want of buffers; another failure is
// thrown with `index`, the frames before it having been sent.
Napi::Value NdrvWriter::WriteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "frames must be an array");
  Napi::Array frames = info[0].As<Napi::Array>();
  uint32_t dropped = 0;
  for (uint32_t i = 0; i < frames.Length(); i++) {
    uint8_t* data = nullptr;
    size_t length = 0;
    if (!Uint8Bytes(env, frames.Get(i), &data, &length)) throw Napi::TypeError::New(env, "a frame must be a Uint8Array");
    int sent = Send(data, length);
    if (sent < 0) {
      Napi::Error error = ErrnoError(env, -sent, "write", interface_);
      error.Set("index", Napi::Number::New(env, i));
      throw error;
    }
    if (sent == 0) dropped++;
  }
  return Napi::Number::New(env, dropped);
}

void NdrvWriter::Close(const Napi::CallbackInfo& info) { ReleaseOsResources(); }

// setFrameLimit(min, max, tagged): the frames pipes into this socket send, as the engine checks
// a write: min to max bytes, `tagged` more for a VLAN-tagged frame. The port calls it at open and
// whenever the MTU changes; a frame outside is refused and counted by the pipe.
void NdrvWriter::SetFrameLimit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t values[3];
  for (uint32_t i = 0; i < 3; i++) {
    double value = info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : -1;
    if (!(value >= 0 && value <= UINT32_MAX) || value != static_cast<uint32_t>(value)) {
      throw Napi::RangeError::New(env, "setFrameLimit(min, max, tagged) takes three integers >= 0");
    }
    values[i] = static_cast<uint32_t>(value);
  }
  frameLimit_->Set(values[0], values[1], values[2]);
}

}  // namespace tapkit
