// tapkit_utun: macOS utun interfaces for tapkit. Context-aware (no static state), so it loads in
// worker threads; every handle polls on its own environment's loop.
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>

#include "tapkit/napi_config.h"

#include "tapkit/errors.h"
#include "netconf.h"
#include "utun_handle.h"

namespace tapkit {
namespace {

// datagramPair(): two connected non-blocking AF_UNIX datagram sockets. Packet-preserving like a
// utun socket, so tests can drive UtunHandle's data path (batches, EAGAIN, drain) without root,
// and on any Unix.
Napi::Value DatagramPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_DGRAM, 0, fds) < 0) throw ErrnoError(env, errno, "socketpair");
  for (int fd : fds) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
      int err = errno;
      close(fds[0]);
      close(fds[1]);
      throw ErrnoError(env, err, "fcntl");
    }
  }
  Napi::Array pair = Napi::Array::New(env, 2);
  pair.Set(0u, Napi::Number::New(env, fds[0]));
  pair.Set(1u, Napi::Number::New(env, fds[1]));
  return pair;
}

}  // namespace
}  // namespace tapkit

// NODE_API_MODULE wants an unqualified name.
static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace tapkit;
  exports.Set("UtunHandle", UtunHandle::Define(env));
  exports.Set("setMtu", Napi::Function::New(env, SetMtu, "setMtu"));
  exports.Set("setUp", Napi::Function::New(env, SetUp, "setUp"));
  exports.Set("addAddress", Napi::Function::New(env, AddAddress, "addAddress"));
  exports.Set("datagramPair", Napi::Function::New(env, DatagramPair, "datagramPair"));
  return exports;
}

NODE_API_MODULE(tapkit_utun, Init)
