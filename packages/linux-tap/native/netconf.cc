#include "netconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <string>

#include "tapkit/errors.h"

namespace tapkit {
namespace {

// struct in6_ifreq from <linux/ipv6.h>, which cannot be included together with glibc's
// <netinet/in.h>. Its layout is kernel ABI.
struct In6Ifreq {
  struct in6_addr addr;
  uint32_t prefixlen;
  int ifindex;
};

std::string NameArg(const Napi::CallbackInfo& info, size_t index) {
  if (!info[index].IsString()) throw Napi::TypeError::New(info.Env(), "interface name must be a string");
  std::string name = info[index].As<Napi::String>();
  if (name.empty() || name.size() >= IFNAMSIZ) {
    throw Napi::TypeError::New(info.Env(), "interface name must be 1-15 bytes");
  }
  return name;
}

struct ifreq MakeIfreq(const std::string& name) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name.data(), name.size());
  return ifr;
}

int ConfigSocket(Napi::Env env, int family) {
  int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw ErrnoError(env, errno, "socket");
  return fd;
}

void Ioctl(Napi::Env env, int fd, unsigned long request, void* arg, const char* requestName,
           const std::string& name) {
  if (ioctl(fd, request, arg) < 0) throw ErrnoError(env, errno, "ioctl", name, requestName);
}

}  // namespace

Napi::Value GetLink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = NameArg(info, 0);
  FdGuard sock(ConfigSocket(env, AF_INET));
  Napi::Object link = Napi::Object::New(env);
  struct ifreq ifr = MakeIfreq(name);
  Ioctl(env, sock.get(), SIOCGIFINDEX, &ifr, "SIOCGIFINDEX", name);
  link.Set("index", Napi::Number::New(env, ifr.ifr_ifindex));
  ifr = MakeIfreq(name);
  Ioctl(env, sock.get(), SIOCGIFMTU, &ifr, "SIOCGIFMTU", name);
  link.Set("mtu", Napi::Number::New(env, ifr.ifr_mtu));
  ifr = MakeIfreq(name);
  Ioctl(env, sock.get(), SIOCGIFHWADDR, &ifr, "SIOCGIFHWADDR", name);
  Napi::Uint8Array mac = Napi::Uint8Array::New(env, 6);
  memcpy(mac.Data(), ifr.ifr_hwaddr.sa_data, 6);
  link.Set("mac", mac);
  ifr = MakeIfreq(name);
  Ioctl(env, sock.get(), SIOCGIFFLAGS, &ifr, "SIOCGIFFLAGS", name);
  link.Set("up", Napi::Boolean::New(env, (ifr.ifr_flags & IFF_UP) != 0));
  return link;
}

void SetMtu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = NameArg(info, 0);
  if (!info[1].IsNumber()) throw Napi::TypeError::New(env, "mtu must be a number");
  FdGuard sock(ConfigSocket(env, AF_INET));
  struct ifreq ifr = MakeIfreq(name);
  ifr.ifr_mtu = info[1].As<Napi::Number>().Int32Value();
  Ioctl(env, sock.get(), SIOCSIFMTU, &ifr, "SIOCSIFMTU", name);
}

void SetMac(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = NameArg(info, 0);
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      info[1].As<Napi::Uint8Array>().ByteLength() != 6) {
    throw Napi::TypeError::New(env, "mac must be a Uint8Array of 6 bytes");
  }
  FdGuard sock(ConfigSocket(env, AF_INET));
  struct ifreq ifr = MakeIfreq(name);
  ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  memcpy(ifr.ifr_hwaddr.sa_data, info[1].As<Napi::Uint8Array>().Data(), 6);
  Ioctl(env, sock.get(), SIOCSIFHWADDR, &ifr, "SIOCSIFHWADDR", name);
}

void SetUp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = NameArg(info, 0);
  bool up = info[1].ToBoolean();
  FdGuard sock(ConfigSocket(env, AF_INET));
  struct ifreq ifr = MakeIfreq(name);
  Ioctl(env, sock.get(), SIOCGIFFLAGS, &ifr, "SIOCGIFFLAGS", name);
  if (up) {
    ifr.ifr_flags |= IFF_UP;
  } else {
    ifr.ifr_flags &= ~IFF_UP;
  }
  Ioctl(env, sock.get(), SIOCSIFFLAGS, &ifr, "SIOCSIFFLAGS", name);
}

void AddAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = NameArg(info, 0);
  int family = info[1].ToNumber().Int32Value();
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(env, "address must be a Uint8Array");
  }
  Napi::Uint8Array address = info[2].As<Napi::Uint8Array>();
  int prefix = info[3].ToNumber().Int32Value();

  if (family == 4) {
    if (address.ByteLength() != 4 || prefix < 0 || prefix > 32) {
      throw Napi::TypeError::New(env, "an IPv4 address is 4 bytes with a prefix length of 0-32");
    }
    // An IPv4 address beyond the first is an alias with its own label (`tap0:1`): SIOCSIFADDR
    // on the plain name would replace the first one.
    std::string label = info[4].IsString() ? info[4].As<Napi::String>().Utf8Value() : name;
    if (label.empty() || label.size() >= IFNAMSIZ) {
      throw Napi::TypeError::New(env, "address label must be 1-15 bytes");
    }
    FdGuard sock(ConfigSocket(env, AF_INET));
    struct ifreq ifr = MakeIfreq(label);
    auto* sin = reinterpret_cast<struct sockaddr_in*>(&ifr.ifr_addr);
    sin->sin_family = AF_INET;
    memcpy(&sin->sin_addr, address.Data(), 4);
    Ioctl(env, sock.get(), SIOCSIFADDR, &ifr, "SIOCSIFADDR", label);
    // The kernel gave the address its classful mask; set the real one (this also fixes the
    // broadcast address the kernel derived from the classful mask).
    ifr = MakeIfreq(label);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = prefix == 0 ? 0 : htonl(0xffffffffu << (32 - prefix));
    Ioctl(env, sock.get(), SIOCSIFNETMASK, &ifr, "SIOCSIFNETMASK", label);
    return;
  }

  if (family == 6) {
    if (address.ByteLength() != 16 || prefix < 0 || prefix > 128) {
      throw Napi::TypeError::New(env, "an IPv6 address is 16 bytes with a prefix length of 0-128");
    }
    FdGuard sock(ConfigSocket(env, AF_INET6));
    struct ifreq ifr = MakeIfreq(name);
    Ioctl(env, sock.get(), SIOCGIFINDEX, &ifr, "SIOCGIFINDEX", name);
    In6Ifreq req;
    memset(&req, 0, sizeof req);
    memcpy(&req.addr, address.Data(), 16);
    req.prefixlen = static_cast<uint32_t>(prefix);
    req.ifindex = ifr.ifr_ifindex;
    Ioctl(env, sock.get(), SIOCSIFADDR, &req, "SIOCSIFADDR", name);
    return;
  }

  throw Napi::TypeError::New(env, "family must be 4 or 6");
}

}  // namespace tapkit
