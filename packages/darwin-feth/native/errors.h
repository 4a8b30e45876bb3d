// Errors shaped like Node's system errors, so that TypeScript maps them by `code`
// (src/errors.ts): code (EPERM…), errno (negative, as Node has it), syscall, and, where there is
// one, the ioctl/sysctl request name and the interface or file as `path`.
#pragma once

#include <napi.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include <string>

namespace tapkit {

// The errno's name as Node prints it. libuv's UV_E* are -errno on Unix, so its table names
// darwin's errno values.
inline std::string ErrnoName(int err) {
  char name[64];
  uv_err_name_r(-err, name, sizeof name);
  return name;
}

inline Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall,
                              const std::string& subject = std::string(),
                              const char* request = nullptr) {
  char text[128];
  // macOS has the XSI strerror_r (returns int).
  if (strerror_r(err, text, sizeof text) != 0) snprintf(text, sizeof text, "error %d", err);
  std::string code = ErrnoName(err);
  std::string message = code + ": " + text + ", " + syscall;
  if (request != nullptr) message += std::string(" ") + request;
  if (!subject.empty()) message += " '" + subject + "'";
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("syscall", Napi::String::New(env, syscall));
  if (request != nullptr) error.Set("request", Napi::String::New(env, request));
  if (!subject.empty()) error.Set("path", Napi::String::New(env, subject));
  return error;
}

// Closes an fd when it goes out of scope, unless released.
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) close(fd_);
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

// An interface name argument: a string of 1 to IFNAMSIZ - 1 bytes.
std::string NameArg(const Napi::CallbackInfo& info, size_t index, bool allowEmpty = false);

}  // namespace tapkit
