#include "persist.h"

#include <errno.h>
#include <grp.h>
#include <net/if.h>
#include <pwd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tapkit/errors.h"
#include "tun.h"

namespace tapkit {
namespace {

// An optional id option: -1 when absent.
long IdOption(Napi::Object options, const char* key) {
  Napi::Value value = options.Get(key);
  if (value.IsUndefined()) return -1;
  double id = value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : -1;
  // (uid_t)-1 means "none" to the kernel: not a valid id.
  if (!(id >= 0 && id < 4294967295.0) || id != static_cast<double>(static_cast<long>(id))) {
    throw Napi::RangeError::New(options.Env(), std::string("options.") + key + " must be an id from 0 to 4294967294");
  }
  return static_cast<long>(id);
}

}  // namespace

Napi::Value SetPersistent(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
  Napi::Object options = info[0].As<Napi::Object>();
  Napi::Value nameValue = options.Get("name");
  if (!nameValue.IsString()) throw Napi::TypeError::New(env, "options.name must be a string");
  std::string name = nameValue.As<Napi::String>();
  if (name.empty()) throw Napi::TypeError::New(env, "options.name must not be empty");
  Napi::Value modeValue = options.Get("mode");
  std::string mode = modeValue.IsString() ? modeValue.As<Napi::String>().Utf8Value() : "tap";
  if (mode != "tap" && mode != "tun") throw Napi::TypeError::New(env, "options.mode must be 'tap' or 'tun'");
  Napi::Value pathValue = options.Get("path");
  std::string path = pathValue.IsString() ? pathValue.As<Napi::String>().Utf8Value() : "/dev/net/tun";
  bool persistent = options.Get("persistent").ToBoolean();
  long owner = IdOption(options, "owner");
  long group = IdOption(options, "group");

  int flags = (mode == "tun" ? IFF_TUN : IFF_TAP) | IFF_NO_PI;
  if (options.Get("exclusive").ToBoolean()) flags |= IFF_TUN_EXCL;
  if (options.Get("multiQueue").ToBoolean()) flags |= IFF_MULTI_QUEUE;
  TunFd tun = OpenTun(env, path, name, flags);
  FdGuard fd(tun.fd);
  if (owner >= 0 && ioctl(fd.get(), TUNSETOWNER, static_cast<unsigned long>(owner)) < 0) {
    throw ErrnoError(env, errno, "ioctl", tun.name, "TUNSETOWNER");
  }
  if (group >= 0 && ioctl(fd.get(), TUNSETGROUP, static_cast<unsigned long>(group)) < 0) {
    throw ErrnoError(env, errno, "ioctl", tun.name, "TUNSETGROUP");
  }
  // Closing the fd deletes a device that is not persistent (any more) and has no other queue.
  if (ioctl(fd.get(), TUNSETPERSIST, static_cast<unsigned long>(persistent ? 1 : 0)) < 0) {
    throw ErrnoError(env, errno, "ioctl", tun.name, "TUNSETPERSIST");
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("name", Napi::String::New(env, tun.name));
  result.Set("flags", Napi::Number::New(env, tun.flags));
  return result;
}

Napi::Value LookupId(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsString()) throw Napi::TypeError::New(env, "lookupId(kind, name)");
  std::string kind = info[0].As<Napi::String>();
  std::string name = info[1].As<Napi::String>();
  long size = sysconf(kind == "user" ? _SC_GETPW_R_SIZE_MAX : _SC_GETGR_R_SIZE_MAX);
  std::vector<char> buffer(size > 0 ? static_cast<size_t>(size) : 16384);
  for (;;) {
    int err;
    long id = -1;
    if (kind == "user") {
      struct passwd entry, *found = nullptr;
      err = getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found);
      if (err == 0 && found != nullptr) id = found->pw_uid;
    } else if (kind == "group") {
      struct group entry, *found = nullptr;
      err = getgrnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found);
      if (err == 0 && found != nullptr) id = found->gr_gid;
    } else {
      throw Napi::TypeError::New(env, "kind must be 'user' or 'group'");
    }
    if (err == ERANGE && buffer.size() < (1u << 20)) {
      buffer.resize(buffer.size() * 2);
      continue;
    }
    // Not found is 0 (or, from some NSS modules, ENOENT and the like) with no entry.
    if (id >= 0) return Napi::Number::New(env, static_cast<double>(id));
    if (err != 0 && err != ENOENT && err != ESRCH && err != EBADF && err != EPERM) {
      throw ErrnoError(env, err, kind == "user" ? "getpwnam_r" : "getgrnam_r", name);
    }
    return env.Undefined();
  }
}

}  // namespace tapkit
