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

}  // namespace tapkit
