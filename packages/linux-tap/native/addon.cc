// tapkit_linux: Linux tap/tun devices for tapkit. Context-aware (no static state), so it loads
// in worker threads; every handle polls on its own environment's loop.
#include "tapkit/exports.h"
#include "persist.h"
#include "rtnetlink.h"
#include "tap_handle.h"
#include "tun.h"

// NODE_API_MODULE wants an unqualified name.
static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace tapkit;
  exports.Set("TapHandle", TapHandle::Define(env));
  exports.Set("LinkWatcher", LinkWatcher::Define(env));
  ExportFunctions(env, exports,
                  {
                      {"setPersistent", SetPersistent},
                      {"lookupId", LookupId},
                      {"rtnetlinkRequest", RtnetlinkRequest},
                      {"openTapFd", OpenTapFd},
                      {"openUdpSocket", OpenUdpSocket},
                      // seqpacketPair(): a tap fd's stand-in for tests.
                      {"seqpacketPair", [](const Napi::CallbackInfo& info) { return SocketPair(info.Env(), SOCK_SEQPACKET); }},
                  });
  return exports;
}

NODE_API_MODULE(tapkit_linux, Init)
