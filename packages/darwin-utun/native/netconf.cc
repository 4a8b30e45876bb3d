#include "netconf.h"

#include <errno.h>
#include <net/if.h>
#include <net/if_dl.h>
#include <net/route.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/sockio.h>
#include <unistd.h>

#include <string>

#include "tapkit/args.h"
#include "tapkit/darwin_sdk.h"
#include "tapkit/errors.h"

namespace tapkit {
namespace {

// A datagram socket of `family`, for interface ioctls.
int ConfigSocket(Napi::Env env, int family, const std::string& name) {
  int fd = socket(family, SOCK_DGRAM, 0);
  if (fd < 0) throw ErrnoError(env, errno, "socket", name);
  return fd;
}

void PrefixMask(uint8_t* mask, size_t bytes, uint32_t prefixLength) {
  memset(mask, 0, bytes);
  for (size_t i = 0; i < bytes && prefixLength > 0; i++) {
    uint32_t bits = prefixLength >= 8 ? 8 : prefixLength;
    mask[i] = static_cast<uint8_t>(0xff << (8 - bits));
    prefixLength -= bits;
  }
}

// Routing messages pad each sockaddr to 4 bytes on Darwin (uint32_t, not long as on FreeBSD).
size_t RoundUp(size_t length) { return length > 0 ? 1 + ((length - 1) | (sizeof(uint32_t) - 1)) : sizeof(uint32_t); }

// RTM_ADD for `destination`/`mask` through the interface (an interface route, like
// `route add -net … -interface utunN`). A route the kernel already made is fine.
void AddInterfaceRoute(Napi::Env env, const std::string& name, const struct sockaddr* destination,
                       const struct sockaddr* mask) {
  unsigned int index = if_nametoindex(name.c_str());
  if (index == 0) throw ErrnoError(env, errno, "if_nametoindex", name);

  struct sockaddr_dl gateway;
  memset(&gateway, 0, sizeof gateway);
  gateway.sdl_len = sizeof gateway;
  gateway.sdl_family = AF_LINK;
  gateway.sdl_index = static_cast<u_short>(index);

  struct {
    struct rt_msghdr header;
    uint8_t addresses[512];
  } message;
  memset(&message, 0, sizeof message);
  message.header.rtm_version = RTM_VERSION;
  message.header.rtm_type = RTM_ADD;
  message.header.rtm_flags = RTF_UP | RTF_STATIC;
  message.header.rtm_addrs = RTA_DST | RTA_GATEWAY | RTA_NETMASK;
  message.header.rtm_seq = 1;
  uint8_t* at = message.addresses;
  // The order is fixed by the RTA_* bits: destination, gateway, netmask.
  for (const struct sockaddr* address :
       {destination, reinterpret_cast<const struct sockaddr*>(&gateway), mask}) {
    memcpy(at, address, address->sa_len);
    at += RoundUp(address->sa_len);
  }
  message.header.rtm_msglen = static_cast<u_short>(at - reinterpret_cast<uint8_t*>(&message));

  FdGuard fd(socket(PF_ROUTE, SOCK_RAW, AF_UNSPEC));
  if (fd.get() < 0) throw ErrnoError(env, errno, "socket", name, "PF_ROUTE");
  if (write(fd.get(), &message, message.header.rtm_msglen) < 0 && errno != EEXIST) {
    throw ErrnoError(env, errno, "write", name, "RTM_ADD");
  }
}

}  // namespace

// setMtu(name, mtu): SIOCSIFMTU.
void SetMtu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = NameArg(info, 0);
  if (!info[1].IsNumber()) throw Napi::TypeError::New(env, "mtu must be a number");
  FdGuard fd(ConfigSocket(env, AF_INET, name));
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strlcpy(ifr.ifr_name, name.c_str(), sizeof ifr.ifr_name);
  ifr.ifr_mtu = info[1].As<Napi::Number>().Int32Value();
  if (ioctl(fd.get(), SIOCSIFMTU, &ifr) < 0) throw ErrnoError(env, errno, "ioctl", name, "SIOCSIFMTU");
}

// setUp(name, up): IFF_UP through SIOCGIFFLAGS / SIOCSIFFLAGS.
void SetUp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = NameArg(info, 0);
  bool up = info[1].ToBoolean();
  FdGuard fd(ConfigSocket(env, AF_INET, name));
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strlcpy(ifr.ifr_name, name.c_str(), sizeof ifr.ifr_name);
  if (ioctl(fd.get(), SIOCGIFFLAGS, &ifr) < 0) throw ErrnoError(env, errno, "ioctl", name, "SIOCGIFFLAGS");
  ifr.ifr_flags = static_cast<short>(up ? (ifr.ifr_flags | IFF_UP) : (ifr.ifr_flags & ~IFF_UP));
  if (ioctl(fd.get(), SIOCSIFFLAGS, &ifr) < 0) throw ErrnoError(env, errno, "ioctl", name, "SIOCSIFFLAGS");
}

// addAddress(name, family, address, prefixLength). A utun is point-to-point: an IPv4 address is
// given itself as the destination (as `ifconfig utunN inet A/P A` does), and the prefix is
// routed through the interface, so the whole prefix is reached over it — which is what the shim
// calls on-link. IPv6 addresses get infinite lifetimes.
void AddAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = NameArg(info, 0);
  AddressArg arg = AddressArgs(info, 1);
  uint32_t family = arg.family;
  size_t bytes = arg.length;
  const uint8_t* address = arg.bytes;
  uint32_t prefixLength = info[3].IsNumber() ? info[3].As<Napi::Number>().Uint32Value() : 999;
  if (prefixLength > bytes * 8) throw Napi::RangeError::New(env, "prefixLength is out of range");

  if (family == 4) {
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_len = sizeof addr;
    addr.sin_family = AF_INET;
    memcpy(&addr.sin_addr, address, 4);
    struct sockaddr_in mask = addr;
    PrefixMask(reinterpret_cast<uint8_t*>(&mask.sin_addr), 4, prefixLength);

    struct ifaliasreq request;
    memset(&request, 0, sizeof request);
    strlcpy(request.ifra_name, name.c_str(), sizeof request.ifra_name);
    memcpy(&request.ifra_addr, &addr, sizeof addr);
    memcpy(&request.ifra_broadaddr, &addr, sizeof addr);  // the destination of a point-to-point link
    memcpy(&request.ifra_mask, &mask, sizeof mask);
    FdGuard fd(ConfigSocket(env, AF_INET, name));
    if (ioctl(fd.get(), SIOCAIFADDR, &request) < 0) throw ErrnoError(env, errno, "ioctl", name, "SIOCAIFADDR");
    if (prefixLength < 32) {
      struct sockaddr_in network = addr;
      for (int i = 0; i < 4; i++) {
        reinterpret_cast<uint8_t*>(&network.sin_addr)[i] &= reinterpret_cast<uint8_t*>(&mask.sin_addr)[i];
      }
      AddInterfaceRoute(env, name, reinterpret_cast<struct sockaddr*>(&network),
                        reinterpret_cast<struct sockaddr*>(&mask));
    }
    return;
  }

  struct sockaddr_in6 addr;
  memset(&addr, 0, sizeof addr);
  addr.sin6_len = sizeof addr;
  addr.sin6_family = AF_INET6;
  memcpy(&addr.sin6_addr, address, 16);
  struct sockaddr_in6 mask = addr;
  PrefixMask(reinterpret_cast<uint8_t*>(&mask.sin6_addr), 16, prefixLength);

  struct in6_aliasreq request;
  memset(&request, 0, sizeof request);
  strlcpy(request.ifra_name, name.c_str(), sizeof request.ifra_name);
  memcpy(&request.ifra_addr, &addr, sizeof addr);
  memcpy(&request.ifra_prefixmask, &mask, sizeof mask);
  request.ifra_lifetime.ia6t_vltime = ND6_INFINITE_LIFETIME;
  request.ifra_lifetime.ia6t_pltime = ND6_INFINITE_LIFETIME;
  FdGuard fd(ConfigSocket(env, AF_INET6, name));
  if (ioctl(fd.get(), SIOCAIFADDR_IN6, &request) < 0) {
    throw ErrnoError(env, errno, "ioctl", name, "SIOCAIFADDR_IN6");
  }
  if (prefixLength < 128) {
    struct sockaddr_in6 network = addr;
    for (int i = 0; i < 16; i++) network.sin6_addr.s6_addr[i] &= mask.sin6_addr.s6_addr[i];
    AddInterfaceRoute(env, name, reinterpret_cast<struct sockaddr*>(&network),
                      reinterpret_cast<struct sockaddr*>(&mask));
  }
}

}  // namespace tapkit
