// Errors shaped like Node's system errors, so that TS can map them by `code`.
#pragma once

#include "napi_config.h"
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include <string>

namespace tapkit {

// The errno's name as Node prints it (EPERM, EBUSY…). libuv's table first; glibc's for the
// few libuv does not know (EBADFD is what a tun fd returns once its interface is deleted).
inline std::string ErrnoName(int err) {
  char buf[64];
  uv_err_name_r(-err, buf, sizeof buf);
  if (strncmp(buf, "Unknown", 7) == 0) {
    if (const char* name = strerrorname_np(err)) return name;
  }
  return buf;
}

// `CODE: description, syscall 'subject'` with code, errno (negative, as Node's system errors
// have it), syscall and, when given, the ioctl request name and the subject as `path`.
inline Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall,
                              const std::string& subject = std::string(),
                              const char* request = nullptr) {
  char desc[128];
  const char* text = strerror_r(err, desc, sizeof desc);  // GNU variant: returns the text
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
