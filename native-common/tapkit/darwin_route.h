// What both macOS addons (darwin-feth, darwin-utun) need to follow and change an interface's
// addresses beyond their own configuration calls:
//
// new RouteWatcher({ onMessages(buffer), onError(error), fd? })
//   A routing socket (socket(PF_ROUTE, SOCK_RAW, AF_UNSPEC)), non-blocking, polled on the
//   environment's loop (SocketWatcher, tapkit/watcher.h): every routing message the kernel
//   sends goes to onMessages, decoded in TypeScript (@tapkit/core's darwin-route.ts). `fd`
//   adopts an open datagram socket instead (tests feed it routing messages on any Unix).
// interfaceIndex(name): if_nametoindex, 0 when there is no such interface.
// interfaceName(index): if_indextoname, undefined when the index names none.
// removeAddress(name, family, address, prefixLength): SIOCDIFADDR (struct ifreq, IPv4) or
//   SIOCDIFADDR_IN6 (struct in6_ifreq), found by the address (the prefix is not needed).
#pragma once

#include "tapkit/args.h"
#include "tapkit/darwin_sdk.h"
#include "tapkit/errors.h"
#include "tapkit/napi_config.h"
#include "tapkit/watcher.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace tapkit {

class RouteWatcher : public SocketWatcher<RouteWatcher> {
 public:
  static constexpr const char* kSubject = "PF_ROUTE";
  // rtm_msglen is a u_short: no routing message is longer.
  static constexpr size_t kReceiveBytes = 64 * 1024;

  static Napi::Function Define(Napi::Env env) { return DefineWatcher(env, "RouteWatcher"); }

  explicit RouteWatcher(const Napi::CallbackInfo& info) : SocketWatcher<RouteWatcher>(info, "RouteWatcher") {
    Napi::Env env = info.Env();
    Napi::Value adopt = info[0].As<Napi::Object>().Get("fd");
    int fd;
    if (adopt.IsNumber()) {
      fd = adopt.As<Napi::Number>().Int32Value();
      if (fd < 0) throw Napi::TypeError::New(env, "options.fd must be an open file descriptor");
    } else {
      fd = socket(PF_ROUTE, SOCK_RAW, AF_UNSPEC);
      if (fd < 0) throw ErrnoError(env, errno, "socket", std::string(), kSubject);
    }
    FdGuard sock(fd);
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
      throw ErrnoError(env, errno, "fcntl", std::string(), kSubject);
    }
    Watch(env, sock.release());
  }
};

inline Napi::Value InterfaceIndex(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) throw Napi::TypeError::New(info.Env(), "name must be a string");
  std::string name = info[0].As<Napi::String>();
  return Napi::Number::New(info.Env(), name.size() < IFNAMSIZ ? if_nametoindex(name.c_str()) : 0);
}

inline Napi::Value InterfaceName(const Napi::CallbackInfo& info) {
  if (!info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "index must be a number");
  int64_t index = info[0].As<Napi::Number>().Int64Value();
  char name[IF_NAMESIZE];
  if (index <= 0 || index > 0xffffffffLL || if_indextoname(static_cast<unsigned int>(index), name) == nullptr) {
    return info.Env().Undefined();
  }
  return Napi::String::New(info.Env(), name);
}

inline void RemoveAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = NameArg(info, 0);
  AddressArg arg = AddressArgs(info, 1);
  uint32_t family = arg.family;
  const uint8_t* address = arg.bytes;
  FdGuard fd(socket(family == 4 ? AF_INET : AF_INET6, SOCK_DGRAM, 0));
  if (fd.get() < 0) throw ErrnoError(env, errno, "socket", name);
  if (family == 4) {
    struct ifreq request;
    memset(&request, 0, sizeof request);
    memcpy(request.ifr_name, name.data(), name.size());
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_len = sizeof addr;
    addr.sin_family = AF_INET;
    memcpy(&addr.sin_addr, address, 4);
    memcpy(&request.ifr_addr, &addr, sizeof addr);
    if (ioctl(fd.get(), SIOCDIFADDR, &request) < 0) throw ErrnoError(env, errno, "ioctl", name, "SIOCDIFADDR");
    return;
  }
  struct in6_ifreq request;
  memset(&request, 0, sizeof request);
  memcpy(request.ifr_name, name.data(), name.size());
  request.ifr_ifru.ifru_addr.sin6_len = sizeof request.ifr_ifru.ifru_addr;
  request.ifr_ifru.ifru_addr.sin6_family = AF_INET6;
  memcpy(&request.ifr_ifru.ifru_addr.sin6_addr, address, 16);
  if (ioctl(fd.get(), SIOCDIFADDR_IN6, &request) < 0) {
    throw ErrnoError(env, errno, "ioctl", name, "SIOCDIFADDR_IN6");
  }
}

}  // namespace tapkit
