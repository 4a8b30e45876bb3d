// The plain system calls of DarwinSystem; see sys.cc.
#pragma once

#include "tapkit/napi_config.h"

#include <stddef.h>

#include <string>

#include "tapkit/args.h"

namespace tapkit {

void CreateInterface(const Napi::CallbackInfo& info);
void DestroyInterface(const Napi::CallbackInfo& info);
void SetPeer(const Napi::CallbackInfo& info);
Napi::Value GetPeer(const Napi::CallbackInfo& info);
Napi::Value GetDeviceMtu(const Napi::CallbackInfo& info);
void SetMtu(const Napi::CallbackInfo& info);
void SetMac(const Napi::CallbackInfo& info);
void SetMetric(const Napi::CallbackInfo& info);
void SetUp(const Napi::CallbackInfo& info);
void AddAddress(const Napi::CallbackInfo& info);
Napi::Value ListInterfaces(const Napi::CallbackInfo& info);
Napi::Value MulticastMemberships(const Napi::CallbackInfo& info);
Napi::Value SysctlGet(const Napi::CallbackInfo& info);
void SysctlSet(const Napi::CallbackInfo& info);
Napi::Value ProcessStartTime(const Napi::CallbackInfo& info);

}  // namespace tapkit
