// Addon init helpers shared by the backends' addon.cc.
#pragma once

#include "tapkit/errors.h"
#include "tapkit/napi_config.h"

#include <errno.h>
#include <fcntl.h>
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

// Two connected, non-blocking, close-on-exec AF_UNIX sockets of `type` (SOCK_SEQPACKET,
// SOCK_DGRAM): frame-preserving like a device's fd, so tests drive a handle's data path (batches,
// EAGAIN, drain) without root. Set with fcntl, which every Unix has (macOS has no SOCK_NONBLOCK).
inline Napi::Value SocketPair(Napi::Env env, int type) {
  int fds[2];
  if (socketpair(AF_UNIX, type, 0, fds) < 0) throw ErrnoError(env, errno, "socketpair");
  for (int fd : fds) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
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

}  // namespace tapkit
