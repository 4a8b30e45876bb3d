// Interface configuration by ioctl and routing socket: MTU, up/down, addresses and routes.
#pragma once

#include "tapkit/napi_config.h"

namespace tapkit {

void SetMtu(const Napi::CallbackInfo& info);
void SetUp(const Napi::CallbackInfo& info);
void AddAddress(const Napi::CallbackInfo& info);

}  // namespace tapkit
