// Interface configuration by ioctl on a datagram socket: MTU, MAC, flags, addresses.
#pragma once

#include "tapkit/napi_config.h"

namespace tapkit {

// getLink(name) → { index, mtu, mac: Uint8Array(6), up }; needs no privilege
Napi::Value GetLink(const Napi::CallbackInfo& info);
// setMtu(name, mtu)
void SetMtu(const Napi::CallbackInfo& info);
// setMac(name, mac: Uint8Array(6))
void SetMac(const Napi::CallbackInfo& info);
// setUp(name, up: boolean)
void SetUp(const Napi::CallbackInfo& info);
// addAddress(name, family: 4 | 6, address: Uint8Array(4 | 16), prefixLength, label?: string)
void AddAddress(const Napi::CallbackInfo& info);

}  // namespace tapkit
