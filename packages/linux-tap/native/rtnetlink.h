// rtnetlink: what linux-tap needs of NETLINK_ROUTE. Messages are built and parsed in TypeScript
// (src/rtnetlink.ts, testable without privilege); here are only the sockets.
//
// rtnetlinkRequest(message: Uint8Array, request: string, subject: string): Buffer
//   Sends one request on a fresh socket and waits for the kernel's answer: the messages it sent
//   back (a dump's, a GETLINK's), or throws the errno of its NLMSG_ERROR like Node's system
//   errors (syscall 'rtnetlink', request e.g. 'RTM_NEWADDR', path = subject).
// new LinkWatcher({ onMessages(buffer), onError(error) })
//   A socket subscribed to link and IPv4/IPv6 address notifications, polled on the
//   environment's loop; never holds the loop. close() releases it (and a worker's exit does).
#pragma once

#include "tapkit/napi_config.h"
#include "tapkit/watcher.h"

#include <stddef.h>

namespace tapkit {

Napi::Value RtnetlinkRequest(const Napi::CallbackInfo& info);

// The socket's poll, lifecycle and reads are SocketWatcher's (tapkit/watcher.h), shared with the
// macOS addons' RouteWatcher; here is only the socket.
class LinkWatcher : public SocketWatcher<LinkWatcher> {
 public:
  static constexpr const char* kSubject = "NETLINK_ROUTE";
  // Large enough for any one datagram the kernel sends on NETLINK_ROUTE.
  static constexpr size_t kReceiveBytes = 64 * 1024;

  static Napi::Function Define(Napi::Env env) { return DefineWatcher(env, "LinkWatcher"); }
  explicit LinkWatcher(const Napi::CallbackInfo& info);
};

}  // namespace tapkit
