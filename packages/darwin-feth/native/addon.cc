// tapkit_darwin_feth: the system calls of @tapkit/darwin-feth (src/system.ts, DarwinSystem).
// Context-aware, with no static state: it loads in worker threads, and every BpfReader polls
// on its own environment's loop.
#include "tapkit/darwin_route.h"
#include "tapkit/exports.h"
#include "bpf_reader.h"
#include "ndrv_writer.h"
#include "sys.h"

// NODE_API_MODULE wants an unqualified name.
static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace tapkit;
  exports.Set("BpfReader", BpfReader::Define(env));
  exports.Set("NdrvWriter", NdrvWriter::Define(env));
  exports.Set("RouteWatcher", RouteWatcher::Define(env));
  ExportFunctions(env, exports,
                  {
                      {"createInterface", CreateInterface},
                      {"destroyInterface", DestroyInterface},
                      {"setPeer", SetPeer},
                      {"getPeer", GetPeer},
                      {"getDeviceMtu", GetDeviceMtu},
                      {"setMtu", SetMtu},
                      {"setMac", SetMac},
                      {"setMetric", SetMetric},
                      {"setUp", SetUp},
                      {"addAddress", AddAddress},
                      {"removeAddress", RemoveAddress},
                      {"interfaceIndex", InterfaceIndex},
                      {"interfaceName", InterfaceName},
                      {"listInterfaces", ListInterfaces},
                      {"multicastMemberships", MulticastMemberships},
                      {"sysctlGet", SysctlGet},
                      {"sysctlSet", SysctlSet},
                      {"processStartTime", ProcessStartTime},
                  });
  return exports;
}

NODE_API_MODULE(tapkit_darwin_feth, Init)
