// tapkit_linux: Linux tap/tun devices for tapkit. Context-aware (no static state), so it loads
// in worker threads; every handle polls on its own environment's loop.
#include <errno.h>
#include <sys/socket.h>

#include "tapkit/napi_config.h"

#include "tapkit/errors.h"
#include "persist.h"
#include "rtnetlink.h"
#include "tap_handle.h"
#include "tun.h"

namespace tapkit {
namespace {

// seqpacketPair(): two connected non-blocking SOCK_SEQPACKET fds. Frame-preserving like a
// tap fd, so tests can drive TapHandle's data path (batches, EAGAIN, drain) unprivileged.
Napi::Value SeqpacketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0) {
    throw ErrnoError(env, errno, "socketpair");
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
  exports.Set("TapHandle", TapHandle::Define(env));
  exports.Set("setPersistent", Napi::Function::New(env, SetPersistent, "setPersistent"));
  exports.Set("lookupId", Napi::Function::New(env, LookupId, "lookupId"));
  exports.Set("rtnetlinkRequest", Napi::Function::New(env, RtnetlinkRequest, "rtnetlinkRequest"));
  exports.Set("LinkWatcher", LinkWatcher::Define(env));
  exports.Set("openTapFd", Napi::Function::New(env, OpenTapFd, "openTapFd"));
  exports.Set("seqpacketPair", Napi::Function::New(env, SeqpacketPair, "seqpacketPair"));
  return exports;
}

NODE_API_MODULE(tapkit_linux, Init)
