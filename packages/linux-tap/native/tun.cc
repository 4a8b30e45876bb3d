#include "tun.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>

#include "tapkit/errors.h"

namespace tapkit {

TunFd OpenTun(Napi::Env env, const std::string& path, const std::string& name, int flags) {
  if (name.size() >= IFNAMSIZ) throw Napi::TypeError::New(env, "interface name must be at most 15 bytes");
  FdGuard fd(open(path.c_str(), O_RDWR | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) throw ErrnoError(env, errno, "open", path);

  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name.data(), name.size());
  ifr.ifr_flags = static_cast<short>(flags);
  int err = ioctl(fd.get(), TUNSETIFF, &ifr) < 0 ? errno : 0;
  if (err == EINVAL && (flags & (IFF_TUN_EXCL | IFF_MULTI_QUEUE)) == 0) {
    // A multi-queue device is attached to with IFF_MULTI_QUEUE only: try again as one of its queues.
    memcpy(ifr.ifr_name, name.data(), name.size());
    ifr.ifr_flags = static_cast<short>(flags | IFF_MULTI_QUEUE);
    if (ioctl(fd.get(), TUNSETIFF, &ifr) == 0) err = 0;
  }
  if (err != 0) throw ErrnoError(env, err, "ioctl", name, "TUNSETIFF");
  TunFd result{-1, std::string(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ)), 0};
  memset(&ifr, 0, sizeof ifr);
  if (ioctl(fd.get(), TUNGETIFF, &ifr) < 0) throw ErrnoError(env, errno, "ioctl", result.name, "TUNGETIFF");
  result.flags = static_cast<unsigned short>(ifr.ifr_flags);
  result.fd = fd.release();
  return result;
}

Napi::Value OpenTapFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "name must be a string");
  std::string path = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "/dev/net/tun";
  TunFd tun = OpenTun(env, path, info[0].As<Napi::String>().Utf8Value(), IFF_TAP | IFF_NO_PI | IFF_TUN_EXCL);
  FdGuard fd(tun.fd);
  // Blocking, as a file a program is handed normally is; tapkit's own reader sets O_NONBLOCK.
  int flags = fcntl(fd.get(), F_GETFL);
  if (flags < 0 || fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) < 0) throw ErrnoError(env, errno, "fcntl", tun.name);
  Napi::Object result = Napi::Object::New(env);
  result.Set("name", tun.name);
  result.Set("fd", fd.release());
  return result;
}

}  // namespace tapkit
