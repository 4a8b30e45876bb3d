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
#include "tapkit/poll.h"

#include <memory>

namespace tapkit {

Napi::Value RtnetlinkRequest(const Napi::CallbackInfo& info);

class LinkWatcher : public Napi::ObjectWrap<LinkWatcher> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit LinkWatcher(const Napi::CallbackInfo& info);
  ~LinkWatcher() override;

  // LoopPoll's owner interface.
  void HandlePoll(int status, int events);
  void OnPipeEnded() {}
  void ReleaseOsResources() { LoopPoll<LinkWatcher>::CloseWithFd(poll_, fd_); }

 private:
  void Close(const Napi::CallbackInfo& info);
  bool ReadMessages();

  napi_env env_;
  int fd_ = -1;
  LoopPoll<LinkWatcher>* poll_ = nullptr;
  Napi::FunctionReference onMessages_;
  Napi::FunctionReference onError_;
  std::unique_ptr<Napi::AsyncContext> async_;
};

}  // namespace tapkit
