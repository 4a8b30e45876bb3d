// tapkit_darwin_feth: the system calls of @tapkit/darwin-feth (src/system.ts, DarwinSystem).
// Context-aware, with no static state: it loads in worker threads, and every BpfReader polls
// on its own environment's loop.
#include "tapkit/napi_config.h"

#include "bpf_reader.h"
#include "ndrv_writer.h"
#include "sys.h"

// NODE_API_MODULE wants an unqualified name.
static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace tapkit;
  exports.Set("BpfReader", BpfReader::Define(env));
  exports.Set("NdrvWriter", NdrvWriter::Define(env));
  exports.Set("createInterface", Napi::Function::New(env, CreateInterface, "createInterface"));
  exports.Set("destroyInterface", Napi::Function::New(env, DestroyInterface, "destroyInterface"));
  exports.Set("setPeer", Napi::Function::New(env, SetPeer, "setPeer"));
  exports.Set("getPeer", Napi::Function::New(env, GetPeer, "getPeer"));
  exports.Set("getDeviceMtu", Napi::Function::New(env, GetDeviceMtu, "getDeviceMtu"));
  exports.Set("setMtu", Napi::Function::New(env, SetMtu, "setMtu"));
  exports.Set("setMac", Napi::Function::New(env, SetMac, "setMac"));
  exports.Set("setMetric", Napi::Function::New(env, SetMetric, "setMetric"));
  exports.Set("setUp", Napi::Function::New(env, SetUp, "setUp"));
  exports.Set("addAddress", Napi::Function::New(env, AddAddress, "addAddress"));
  exports.Set("listInterfaces", Napi::Function::New(env, ListInterfaces, "listInterfaces"));
  exports.Set("multicastMemberships", Napi::Function::New(env, MulticastMemberships, "multicastMemberships"));
  exports.Set("sysctlGet", Napi::Function::New(env, SysctlGet, "sysctlGet"));
  exports.Set("sysctlSet", Napi::Function::New(env, SysctlSet, "sysctlSet"));
  exports.Set("processStartTime", Napi::Function::New(env, ProcessStartTime, "processStartTime"));
  return exports;
}

NODE_API_MODULE(tapkit_darwin_feth, Init)
