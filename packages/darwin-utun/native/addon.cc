// tapkit_utun: macOS utun interfaces for tapkit. Context-aware (no static state), so it loads in
// worker threads; every handle polls on its own environment's loop.
#include "tapkit/darwin_route.h"
#include "tapkit/exports.h"
#include "netconf.h"
#include "utun_handle.h"

// NODE_API_MODULE wants an unqualified name.
static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace tapkit;
  exports.Set("UtunHandle", UtunHandle::Define(env));
  exports.Set("RouteWatcher", RouteWatcher::Define(env));
  ExportFunctions(env, exports,
                  {
                      {"setMtu", SetMtu},
                      {"setUp", SetUp},
                      {"addAddress", AddAddress},
                      {"removeAddress", RemoveAddress},
                      {"interfaceIndex", InterfaceIndex},
                      {"interfaceName", InterfaceName},
                      // datagramPair(): a utun socket's stand-in for tests, on any Unix.
                      {"datagramPair", [](const Napi::CallbackInfo& info) { return SocketPair(info.Env(), SOCK_DGRAM); }},
                  });
  return exports;
}

NODE_API_MODULE(tapkit_utun, Init)
