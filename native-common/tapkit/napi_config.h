// node-addon-api, configured for the tapkit addons: every file includes this instead of <napi.h>,
// so all of them compile its inline code the same way. Shared by linux-tap, darwin-utun and
// darwin-feth (from ../../native-common in the workspace, native/common in a packed tarball).
#pragma once

// A worker being terminated (worker.terminate()) stops running JS while its loop can still call
// us, and JS already running can still call our methods: N-API calls then fail with
// napi_pending_exception although no exception is pending. Without this, node-addon-api turns
// that into a process-wide abort (a fatal "Error::Error napi_define_properties", or a C++ throw
// out of its method wrapper reaching std::terminate). With it, the error is dropped: there is
// no JS left to hand it to. Documented in node-addon-api's doc/setup.md.
#ifndef NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS
#define NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS
#endif
#include <napi.h>
