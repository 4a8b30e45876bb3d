// The plain system calls of DarwinSystem (src/system.ts): interface cloning, feth peering,
// interface configuration, sysctl, getifaddrs/getifmaddrs, process start times.
//
// Every number and layout used here (SIOC* requests, struct ifreq/ifdrv/if_fake_request/
// in6_aliasreq, ...) is pinned to xnu's by the static_asserts in tapkit/darwin_sdk.h, so a
// different SDK fails the build instead of sending the kernel a wrong request.
//   bsd/sys/sysctl.h   CTL_KERN.KERN_PROC (14).KERN_PROC_PID (1) gives a struct kinfo_proc;
//   bsd/sys/proc.h     its kp_proc.p_starttime is the process start time (struct timeval)
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <net/if_dl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/sockio.h>
#include <sys/sysctl.h>
#include <sys/types.h>
#include <unistd.h>

#include "tapkit/napi_config.h"

#include <cstdint>
#include <string>

#include "sys.h"
#include "tapkit/darwin_sdk.h"
#include "tapkit/errors.h"

namespace tapkit {
namespace {

// A datagram socket to issue interface ioctls on (any family reaches ifioctl; address ioctls
// need their own family).
int ControlSocket(Napi::Env env, int family) {
  int fd = socket(family, SOCK_DGRAM, 0);
  if (fd < 0) throw ErrnoError(env, errno, "socket");
  return fd;
}

struct ifreq IfReq(const std::string& name) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name.data(), name.size());
  return ifr;
}

// One ioctl on an ifreq-shaped request, through a fresh AF_INET socket.
template <typename Request>
void Ioctl(Napi::Env env, unsigned long request, const char* requestName, const std::string& name,
           Request* data, int family = AF_INET) {
  FdGuard fd(ControlSocket(env, family));
  if (ioctl(fd.get(), request, data) < 0) throw ErrnoError(env, errno, "ioctl", name, requestName);
}

Napi::Uint8Array BytesArg(const Napi::CallbackInfo& info, size_t index, size_t length, const char* what) {
  if (!info[index].IsTypedArray() || info[index].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      info[index].As<Napi::Uint8Array>().ElementLength() != length) {
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a Uint8Array of " + std::to_string(length) +
                                               " bytes");
  }
  return info[index].As<Napi::Uint8Array>();
}

Napi::Uint8Array MacValue(Napi::Env env, const uint8_t* mac) {
  Napi::Uint8Array out = Napi::Uint8Array::New(env, 6);
  memcpy(out.Data(), mac, 6);
  return out;
}

}  // namespace

// createInterface(name): SIOCIFCREATE2 with an explicit unit. feth takes no creation
// parameters (feth_clone_create ignores them), so ifr_data stays NULL. EEXIST if the name
// exists, ENXIO above the cloner's highest unit, EINVAL if there is no such cloner.
void CreateInterface(const Napi::CallbackInfo& info) {
  std::string name = NameArg(info, 0);
  struct ifreq ifr = IfReq(name);
  Ioctl(info.Env(), SIOCIFCREATE2, "SIOCIFCREATE2", name, &ifr);
}

void DestroyInterface(const Napi::CallbackInfo& info) {
  std::string name = NameArg(info, 0);
  struct ifreq ifr = IfReq(name);
  Ioctl(info.Env(), SIOCIFDESTROY, "SIOCIFDESTROY", name, &ifr);
}

// setPeer(name, peer): peers `name` with `peer` (the kernel sets both sides); '' unpeers.
void SetPeer(const Napi::CallbackInfo& info) {
  std::string name = NameArg(info, 0);
  std::string peer = NameArg(info, 1, true);
  IfFakeRequest request;
  memset(&request, 0, sizeof request);
  memcpy(request.u.peerName, peer.data(), peer.size());
  struct ifdrv drv;
  memset(&drv, 0, sizeof drv);
  memcpy(drv.ifd_name, name.data(), name.size());
  drv.ifd_cmd = kIfFakeSetPeer;
  drv.ifd_len = sizeof request;
  drv.ifd_data = &request;
  Ioctl(info.Env(), SIOCSDRVSPEC, "SIOCSDRVSPEC", name, &drv);
}

Napi::Value GetPeer(const Napi::CallbackInfo& info) {
  std::string name = NameArg(info, 0);
  IfFakeRequest request;
  memset(&request, 0, sizeof request);
  struct ifdrv drv;
  memset(&drv, 0, sizeof drv);
  memcpy(drv.ifd_name, name.data(), name.size());
  drv.ifd_cmd = kIfFakeGetPeer;
  drv.ifd_len = sizeof request;
  drv.ifd_data = &request;
  Ioctl(info.Env(), SIOCGDRVSPEC, "SIOCGDRVSPEC", name, &drv);
  return Napi::String::New(info.Env(), request.u.peerName, strnlen(request.u.peerName, IFNAMSIZ));
}

Napi::Value GetDeviceMtu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = NameArg(info, 0);
  struct ifreq ifr = IfReq(name);
  Ioctl(env, SIOCGIFDEVMTU, "SIOCGIFDEVMTU", name, &ifr);
  Napi::Object out = Napi::Object::New(env);
  out.Set("current", Napi::Number::New(env, ifr.ifr_devmtu.ifdm_current));
  out.Set("min", Napi::Number::New(env, ifr.ifr_devmtu.ifdm_min));
  out.Set("max", Napi::Number::New(env, ifr.ifr_devmtu.ifdm_max));
  return out;
}

void SetMtu(const Napi::CallbackInfo& info) {
  std::string name = NameArg(info, 0);
  struct ifreq ifr = IfReq(name);
  ifr.ifr_mtu = static_cast<int>(UintArg(info, 1, 65535, "mtu"));
  Ioctl(info.Env(), SIOCSIFMTU, "SIOCSIFMTU", name, &ifr);
}

// setMac(name, mac): SIOCSIFLLADDR takes the address in ifr_addr.sa_data, its length in sa_len
// (feth_ioctl passes both to ifnet_set_lladdr), family AF_LINK — as ifconfig's `lladdr` does.
void SetMac(const Napi::CallbackInfo& info) {
  std::string name = NameArg(info, 0);
  Napi::Uint8Array mac = BytesArg(info, 1, 6, "mac");
  struct ifreq ifr = IfReq(name);
  ifr.ifr_addr.sa_len = 6;
  ifr.ifr_addr.sa_family = AF_LINK;
  memcpy(ifr.ifr_addr.sa_data, mac.Data(), 6);
  Ioctl(info.Env(), SIOCSIFLLADDR, "SIOCSIFLLADDR", name, &ifr);
}

void SetMetric(const Napi::CallbackInfo& info) {
  std::string name = NameArg(info, 0);
  struct ifreq ifr = IfReq(name);
  ifr.ifr_metric = static_cast<int>(UintArg(info, 1, 0x7fffffff, "metric"));
  Ioctl(info.Env(), SIOCSIFMETRIC, "SIOCSIFMETRIC", name, &ifr);
}

void SetUp(const Napi::CallbackInfo& info) {
  std::string name = NameArg(info, 0);
  bool up = info[1].ToBoolean();
  struct ifreq ifr = IfReq(name);
  Ioctl(info.Env(), SIOCGIFFLAGS, "SIOCGIFFLAGS", name, &ifr);
  if (up) {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  } else {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags & ~IFF_UP);
  }
  Ioctl(info.Env(), SIOCSIFFLAGS, "SIOCSIFFLAGS", name, &ifr);
}

// addAddress(name, family, address, prefixLength): SIOCAIFADDR with address, netmask and
// broadcast for IPv4; SIOCAIFADDR_IN6 with the prefix mask and infinite lifetimes for IPv6.
void AddAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = NameArg(info, 0);
  uint32_t family = UintArg(info, 1, 6, "family");
  if (family == 4) {
    Napi::Uint8Array address = BytesArg(info, 2, 4, "address");
    uint32_t prefix = UintArg(info, 3, 32, "prefixLength");
    struct sockaddr_in addr, mask, broadcast;
    memset(&addr, 0, sizeof addr);
    addr.sin_len = sizeof addr;
    addr.sin_family = AF_INET;
    memcpy(&addr.sin_addr, address.Data(), 4);
    mask = addr;
    mask.sin_addr.s_addr = htonl(prefix == 0 ? 0 : 0xffffffffu << (32 - prefix));
    broadcast = addr;
    broadcast.sin_addr.s_addr = addr.sin_addr.s_addr | ~mask.sin_addr.s_addr;
    struct ifaliasreq request;
    memset(&request, 0, sizeof request);
    memcpy(request.ifra_name, name.data(), name.size());
    memcpy(&request.ifra_addr, &addr, sizeof addr);
    memcpy(&request.ifra_mask, &mask, sizeof mask);
    // /31 and /32 have no broadcast address.
    if (prefix < 31) memcpy(&request.ifra_broadaddr, &broadcast, sizeof broadcast);
    Ioctl(env, SIOCAIFADDR, "SIOCAIFADDR", name, &request, AF_INET);
  } else if (family == 6) {
    Napi::Uint8Array address = BytesArg(info, 2, 16, "address");
    uint32_t prefix = UintArg(info, 3, 128, "prefixLength");
    struct in6_aliasreq request;
    memset(&request, 0, sizeof request);
    memcpy(request.ifra_name, name.data(), name.size());
    request.ifra_addr.sin6_len = sizeof request.ifra_addr;
    request.ifra_addr.sin6_family = AF_INET6;
    memcpy(&request.ifra_addr.sin6_addr, address.Data(), 16);
    request.ifra_prefixmask.sin6_len = sizeof request.ifra_prefixmask;
    request.ifra_prefixmask.sin6_family = AF_INET6;
    uint8_t* mask = reinterpret_cast<uint8_t*>(&request.ifra_prefixmask.sin6_addr);
    for (uint32_t bit = 0; bit < prefix; bit++) mask[bit / 8] |= static_cast<uint8_t>(0x80 >> (bit % 8));
    request.ifra_lifetime.ia6t_vltime = ND6_INFINITE_LIFETIME;
    request.ifra_lifetime.ia6t_pltime = ND6_INFINITE_LIFETIME;
    Ioctl(env, SIOCAIFADDR_IN6, "SIOCAIFADDR_IN6", name, &request, AF_INET6);
  } else {
    throw Napi::RangeError::New(env, "family must be 4 or 6");
  }
}

// listInterfaces(): the AF_LINK entry of every interface: name, MAC (when 6 bytes), and
// from its if_data the MTU and metric.
Napi::Value ListInterfaces(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct ifaddrs* list = nullptr;
  if (getifaddrs(&list) < 0) throw ErrnoError(env, errno, "getifaddrs");
  Napi::Array out = Napi::Array::New(env);
  uint32_t count = 0;
  for (struct ifaddrs* ifa = list; ifa != nullptr; ifa = ifa->ifa_next) {
    if (ifa->ifa_addr == nullptr || ifa->ifa_addr->sa_family != AF_LINK) continue;
    const struct sockaddr_dl* link = reinterpret_cast<const struct sockaddr_dl*>(ifa->ifa_addr);
    const struct if_data* data = static_cast<const struct if_data*>(ifa->ifa_data);
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("name", Napi::String::New(env, ifa->ifa_name));
    if (link->sdl_alen == 6) {
      entry.Set("mac", MacValue(env, reinterpret_cast<const uint8_t*>(LLADDR(link))));
    } else {
      entry.Set("mac", env.Undefined());
    }
    entry.Set("mtu", Napi::Number::New(env, data != nullptr ? data->ifi_mtu : 0));
    entry.Set("metric", Napi::Number::New(env, data != nullptr ? data->ifi_metric : 0));
    entry.Set("up", Napi::Boolean::New(env, (ifa->ifa_flags & IFF_UP) != 0));
    out.Set(count++, entry);
  }
  freeifaddrs(list);
  return out;
}

// multicastMemberships(): every link-layer group joined on every interface. The interface is
// named by the sockaddr_dl in ifma_name (its name, or else its index); the group is the
// link-layer address in ifma_addr.
Napi::Value MulticastMemberships(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct ifmaddrs* list = nullptr;
  if (getifmaddrs(&list) < 0) throw ErrnoError(env, errno, "getifmaddrs");
  Napi::Array out = Napi::Array::New(env);
  uint32_t count = 0;
  for (struct ifmaddrs* ifma = list; ifma != nullptr; ifma = ifma->ifma_next) {
    if (ifma->ifma_addr == nullptr || ifma->ifma_addr->sa_family != AF_LINK || ifma->ifma_name == nullptr ||
        ifma->ifma_name->sa_family != AF_LINK) {
      continue;
    }
    const struct sockaddr_dl* group = reinterpret_cast<const struct sockaddr_dl*>(ifma->ifma_addr);
    const struct sockaddr_dl* owner = reinterpret_cast<const struct sockaddr_dl*>(ifma->ifma_name);
    if (group->sdl_alen != 6) continue;
    std::string name(owner->sdl_data, owner->sdl_nlen);
    if (name.empty()) {
      char buffer[IF_NAMESIZE];
      if (if_indextoname(owner->sdl_index, buffer) == nullptr) continue;
      name = buffer;
    }
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("interfaceName", Napi::String::New(env, name));
    entry.Set("mac", MacValue(env, reinterpret_cast<const uint8_t*>(LLADDR(group))));
    out.Set(count++, entry);
  }
  freeifmaddrs(list);
  return out;
}

// sysctlGet(name) / sysctlSet(name, value): an unsigned int sysctl by name (the only one used
// is net.link.fake.max_mtu, "IU"). ENOENT when the name does not exist.
Napi::Value SysctlGet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "the sysctl name must be a string");
  std::string name = info[0].As<Napi::String>();
  unsigned int value = 0;
  size_t length = sizeof value;
  if (sysctlbyname(name.c_str(), &value, &length, nullptr, 0) < 0) {
    throw ErrnoError(env, errno, "sysctl", std::string(), name.c_str());
  }
  if (length != sizeof value) throw ErrnoError(env, EINVAL, "sysctl", std::string(), name.c_str());
  return Napi::Number::New(env, value);
}

void SysctlSet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "the sysctl name must be a string");
  std::string name = info[0].As<Napi::String>();
  unsigned int value = UintArg(info, 1, 0xffffffffu, "value");
  if (sysctlbyname(name.c_str(), nullptr, nullptr, &value, sizeof value) < 0) {
    throw ErrnoError(env, errno, "sysctl", std::string(), name.c_str());
  }
}

// processStartTime(pid): when the process started (kinfo_proc.kp_proc.p_starttime), in ms
// since the epoch; undefined when there is no such process (sysctl returns no data).
Napi::Value ProcessStartTime(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t pid = UintArg(info, 0, 0x7fffffff, "pid");
  int mib[4] = {CTL_KERN, KERN_PROC, KERN_PROC_PID, static_cast<int>(pid)};
  struct kinfo_proc process;
  memset(&process, 0, sizeof process);
  size_t length = sizeof process;
  if (sysctl(mib, 4, &process, &length, nullptr, 0) < 0) {
    throw ErrnoError(env, errno, "sysctl", std::string(), "kern.proc.pid");
  }
  if (length == 0) return env.Undefined();
  const struct timeval& start = process.kp_proc.p_starttime;
  return Napi::Number::New(env, static_cast<double>(start.tv_sec) * 1000 + start.tv_usec / 1000);
}

}  // namespace tapkit
