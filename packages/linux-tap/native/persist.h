// Persistent devices, prepared by an administrator for a user: TUNSETPERSIST, TUNSETOWNER,
// TUNSETGROUP; and user/group names to ids (NSS, as `ip tuntap add … user NAME` does).
#pragma once

#include "tapkit/napi_config.h"

namespace tapkit {

// setPersistent({ name, persistent, mode?, exclusive?, multiQueue?, owner?, group?, path? })
//   → { name, flags }
// Attaches to (or, exclusive, creates) the device, sets its owner and group when given, then
// its persistence, and closes the fd. `flags` are the device's before the change (TUNGETIFF).
Napi::Value SetPersistent(const Napi::CallbackInfo& info);
// lookupId('user' | 'group', name) → the uid/gid, or undefined when there is no such name.
Napi::Value LookupId(const Napi::CallbackInfo& info);

}  // namespace tapkit
