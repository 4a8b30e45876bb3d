// Errors shaped like Node's system errors, so that TypeScript maps them by `code` (each
// backend's src/errors.ts): code (EPERM…), errno (negative, as Node has it), syscall and, where
// there is one, the request (ioctl, sysctl or routing message) and the interface or file as
// `path`. Shared by linux-tap, darwin-utun and darwin-feth (from ../../native-common in the
// workspace, native/common in a packed tarball).
#pragma once

#include "napi_config.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include <string>

namespace tapkit {

// The errno's name as Node prints it (EPERM, EBUSY…). libuv's UV_E* are -errno on Unix, so its
// table names the platform's errno values; on glibc, glibc's table for the few libuv does not
// know (EBADFD is what a Linux tun fd returns once its interface is deleted).
inline std::string ErrnoName(int err) {
  char buf[64];
  uv_err_name_r(-err, buf, sizeof buf);
#if defined(__GLIBC__)
  if (strncmp(buf, "Unknown", 7) == 0) {
    if (const char* name = strerrorname_np(err)) return name;
  }
#endif
  return buf;
}

namespace detail {
// strerror_r comes in two shapes: GNU (glibc with _GNU_SOURCE, which g++ defines) returns the
// text, which may or may not be in `buf`; XSI (macOS, musl) returns 0 or an error number and
// writes `buf`. Overloading on the result takes whichever this libc has.
inline const char* StrerrorText(const char* text, char* /*buf*/, size_t /*size*/, int /*err*/) {
  return text;
}
inline const char* StrerrorText(int result, char* buf, size_t size, int err) {
  if (result != 0) snprintf(buf, size, "errno %d", err);
  return buf;
}
}  // namespace detail

// `CODE: description, syscall request 'subject'`, with code, errno, syscall and, when given,
// request and the subject as `path`.
inline Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall,
                              const std::string& subject = std::string(),
                              const char* request = nullptr) {
  char desc[128];
  const char* text =
      detail::StrerrorText(strerror_r(err, desc, sizeof desc), desc, sizeof desc, err);
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

// Closes an fd on scope exit unless released.
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

}  // namespace tapkit
