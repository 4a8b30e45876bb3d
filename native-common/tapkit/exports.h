// Addon init helpers shared by the backends' addon.cc.
#pragma once

#include "tapkit/args.h"
#include "tapkit/errors.h"
#include "tapkit/napi_config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <initializer_list>

namespace tapkit {

// A JS function an addon exports: its name, and its callback (returning a value or not).
struct Export {
  using ValueCallback = Napi::Value (*)(const Napi::CallbackInfo&);
  using VoidCallback = void (*)(const Napi::CallbackInfo&);
  Export(const char* name, ValueCallback callback) : name(name), value(callback) {}
  Export(const char* name, VoidCallback callback) : name(name), action(callback) {}
  const char* name;
  ValueCallback value = nullptr;
  VoidCallback action = nullptr;
};

inline void ExportFunctions(Napi::Env env, Napi::Object exports, std::initializer_list<Export> functions) {
  for (const Export& f : functions) {
    exports.Set(f.name, f.value != nullptr ? Napi::Function::New(env, f.value, f.name)
                                           : Napi::Function::New(env, f.action, f.name));
  }
}

// An fd is made non-blocking and close-on-exec with fcntl, which every Unix has (macOS has no
// SOCK_NONBLOCK); false with errno set when it failed.
inline bool SetNonBlockingCloexec(int fd) {
  int flags = fcntl(fd, F_GETFL);
  return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) >= 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) >= 0;
}

// Two connected, non-blocking, close-on-exec AF_UNIX sockets of `type` (SOCK_SEQPACKET,
// SOCK_DGRAM): frame-preserving like a device's fd, so tests drive a handle's data path (batches,
// EAGAIN, drain) without root.
inline Napi::Value SocketPair(Napi::Env env, int type) {
  int fds[2];
  if (socketpair(AF_UNIX, type, 0, fds) < 0) throw ErrnoError(env, errno, "socketpair");
  for (int fd : fds) {
    if (!SetNonBlockingCloexec(fd)) {
      int err = errno;
      close(fds[0]);
      close(fds[1]);
      throw ErrnoError(env, err, "fcntl");
    }
  }
  Napi::Array pair = Napi::Array::New(env, 2);
  pair.Set(0u, Napi::Number::New(env, fds[0]));
  pair.Set(1u, Napi::Number::New(env, fds[1]));
  return pair;
}

// A socket address from AddressArgs' bytes and a port.
inline socklen_t SocketAddress(const AddressArg& address, uint32_t port, struct sockaddr_storage* storage) {
  memset(storage, 0, sizeof *storage);
  if (address.family == 4) {
    auto* in = reinterpret_cast<struct sockaddr_in*>(storage);
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<uint16_t>(port));
    memcpy(&in->sin_addr, address.bytes, 4);
    return sizeof *in;
  }
  auto* in6 = reinterpret_cast<struct sockaddr_in6*>(storage);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(static_cast<uint16_t>(port));
  memcpy(&in6->sin6_addr, address.bytes, 16);
  return sizeof *in6;
}

// openUdpSocket(family, local, localPort, family, remote, remotePort) -> [fd, bound port]: a UDP
// socket bound to local:localPort (0: the kernel picks) and connected to remote:remotePort,
// non-blocking and close-on-exec. Connected, a read is one datagram from that peer only and a
// write one datagram to it: the shape of a device's fd, so a handle adopts it as it is.
inline Napi::Value OpenUdpSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AddressArg local = AddressArgs(info, 0);
  AddressArg remote = AddressArgs(info, 3);
  uint32_t localPort = UintArg(info, 2, 65535, "localPort");
  uint32_t remotePort = UintArg(info, 5, 65535, "remotePort");
  if (local.family != remote.family) throw Napi::TypeError::New(env, "local and remote must be of one family");
  int fd = socket(local.family == 4 ? AF_INET : AF_INET6, SOCK_DGRAM, 0);
  if (fd < 0) throw ErrnoError(env, errno, "socket");
  struct sockaddr_storage address;
  auto* sa = reinterpret_cast<struct sockaddr*>(&address);
  socklen_t length = sizeof address;
  const char* failed = nullptr;
  if (!SetNonBlockingCloexec(fd)) {
    failed = "fcntl";
  } else if (bind(fd, sa, SocketAddress(local, localPort, &address)) < 0) {
    failed = "bind";
  } else if (connect(fd, sa, SocketAddress(remote, remotePort, &address)) < 0) {
    failed = "connect";
  } else if (getsockname(fd, sa, &length) < 0) {
    failed = "getsockname";
  }
  if (failed != nullptr) {
    int err = errno;
    close(fd);
    throw ErrnoError(env, err, failed);
  }
  uint16_t bound = address.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&address)->sin_port
                                                : reinterpret_cast<sockaddr_in6*>(&address)->sin6_port;
  Napi::Array result = Napi::Array::New(env, 2);
  result.Set(0u, Napi::Number::New(env, fd));
  result.Set(1u, Napi::Number::New(env, ntohs(bound)));
  return result;
}

}  // namespace tapkit
