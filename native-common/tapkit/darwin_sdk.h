// The Darwin SDK surface the two macOS addons use, and every ABI fact they rely on.
//
// Each header below is Apple's where the SDK has it. Where it does not — the cross toolchain that
// builds the macOS binaries on Linux (Zig's macOS headers) lacks <net/bpf.h>, <net/ndrv.h>,
// <netinet6/in6_var.h>, <sys/sys_domain.h> and <net/if_utun.h> — the few declarations the code
// needs are made here, from xnu's sources. Either way the static_asserts at the end pin each
// value and layout to what xnu (tag xnu-11417.101.15, the same since 10.13) defines, so a build
// against Apple's SDK checks Apple's headers, and a cross build checks these declarations.
// (Checked once against xnu's own headers, made public with unifdef as Apple's install does:
// every assert holds on x86_64 and arm64, and the declarations below have the same layouts.)
//
// <netinet6/nd6.h> is never included: it does not compile as C++ (its `struct prf_ra` is declared
// nested inside `struct in6_prflags` by in6_var.h, so in C++ it is an incomplete type).
#pragma once

#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/kern_control.h>
#include <sys/socket.h>
#include <sys/sockio.h>
#include <sys/types.h>

#if __has_include(<net/bpf.h>)
#include <net/bpf.h>
#else
// bsd/net/bpf.h: the ioctls used to set up a BPF fd (their argument is a u_int unless noted).
#define BIOCSBLEN _IOWR('B', 102, u_int)
#define BIOCPROMISC _IO('B', 105)
#define BIOCSETIF _IOW('B', 108, struct ifreq)
#define BIOCIMMEDIATE _IOW('B', 112, u_int)
#define BIOCSHDRCMPLT _IOW('B', 117, u_int)
#define BIOCSSEESENT _IOW('B', 119, u_int)
#endif

#if __has_include(<net/ndrv.h>)
#include <net/ndrv.h>
#else
// bsd/net/ndrv.h
struct sockaddr_ndrv {
  unsigned char snd_len;
  unsigned char snd_family;
  unsigned char snd_name[IFNAMSIZ];
};
#endif

#if __has_include(<netinet6/in6_var.h>)
#include <netinet6/in6_var.h>
#else
// bsd/netinet6/in6_var.h
struct in6_addrlifetime {
  time_t ia6t_expire;
  time_t ia6t_preferred;
  u_int32_t ia6t_vltime;
  u_int32_t ia6t_pltime;
};
struct in6_aliasreq {
  char ifra_name[IFNAMSIZ];
  struct sockaddr_in6 ifra_addr;
  struct sockaddr_in6 ifra_dstaddr;
  struct sockaddr_in6 ifra_prefixmask;
  int ifra_flags;
  struct in6_addrlifetime ifra_lifetime;
};
#define SIOCAIFADDR_IN6 _IOW('i', 26, struct in6_aliasreq)
// The union's largest member is struct icmp6_ifstat (34 u_quad_t): only ifru_addr is used here.
struct in6_ifreq {
  char ifr_name[IFNAMSIZ];
  union {
    struct sockaddr_in6 ifru_addr;
    uint64_t ifru_icmp6stat_space[34];
  } ifr_ifru;
};
#define SIOCDIFADDR_IN6 _IOW('i', 25, struct in6_ifreq)
#endif

#if __has_include(<sys/sys_domain.h>)
#include <sys/sys_domain.h>
#else
// bsd/sys/sys_domain.h
#define SYSPROTO_CONTROL 2
#define AF_SYS_CONTROL 2
#endif

#if __has_include(<net/if_utun.h>)
#include <net/if_utun.h>
#else
// bsd/net/if_utun.h (xnu installs it with the public headers; Zig does not have it)
#define UTUN_CONTROL_NAME "com.apple.net.utun_control"
#define UTUN_OPT_IFNAME 2
#endif

// bsd/netinet6/nd6.h (see above for why it is not included)
#ifndef ND6_INFINITE_LIFETIME
#define ND6_INFINITE_LIFETIME 0xffffffffU
#endif

namespace tapkit {

// bsd/net/if_fake_var.h (not in the SDK): the request of SIOCSDRVSPEC/SIOCGDRVSPEC for feth.
constexpr unsigned long kIfFakeSetPeer = 1;  // IF_FAKE_S_CMD_SET_PEER
constexpr unsigned long kIfFakeGetPeer = 1;  // IF_FAKE_G_CMD_GET_PEER
struct IfFakeRequest {
  uint64_t reserved[4];  // feth rejects the request (EINVAL) unless all four are zero
  union {
    char buf[128];  // "stable size"
    char peerName[IFNAMSIZ];
  } u;
};

}  // namespace tapkit

#ifdef __APPLE__
// The ABI facts, as xnu defines them (LP64). Off macOS (the Linux check of darwin-utun's data
// path compiles against stand-ins that are not Darwin's) there is nothing to check.
static_assert(sizeof(void*) == 8, "macOS is LP64");
static_assert(AF_NDRV == 27, "AF_NDRV");
static_assert(AF_SYSTEM == 32 && PF_SYSTEM == 32, "AF_SYSTEM");
static_assert(SYSPROTO_CONTROL == 2 && AF_SYS_CONTROL == 2, "sys_domain.h");
static_assert(UTUN_OPT_IFNAME == 2, "UTUN_OPT_IFNAME");
static_assert(ND6_INFINITE_LIFETIME == 0xffffffffU, "ND6_INFINITE_LIFETIME");

static_assert(sizeof(struct ifreq) == 32, "struct ifreq: 16-byte name + 16-byte union");
static_assert(sizeof(struct ifdrv) == 40, "struct ifdrv, #pragma pack(4)");
static_assert(offsetof(struct ifdrv, ifd_cmd) == 16 && offsetof(struct ifdrv, ifd_len) == 24 &&
                  offsetof(struct ifdrv, ifd_data) == 32,
              "struct ifdrv fields");
static_assert(sizeof(tapkit::IfFakeRequest) == 160, "struct if_fake_request");
static_assert(offsetof(tapkit::IfFakeRequest, u) == 32, "if_fake_request: the peer name after 4 uint64");
static_assert(sizeof(struct ifaliasreq) == 64, "struct ifaliasreq");
static_assert(sizeof(struct in6_aliasreq) == 128, "struct in6_aliasreq");
static_assert(offsetof(struct in6_aliasreq, ifra_lifetime) == 104, "in6_aliasreq.ifra_lifetime");
static_assert(sizeof(struct sockaddr_ndrv) == 18, "struct sockaddr_ndrv");
static_assert(sizeof(struct ctl_info) == 100, "struct ctl_info: u32 id + 96-byte name");
static_assert(sizeof(struct sockaddr_ctl) == 32, "struct sockaddr_ctl");
static_assert(offsetof(struct sockaddr_ctl, sc_id) == 4 && offsetof(struct sockaddr_ctl, sc_unit) == 8,
              "sockaddr_ctl fields");

static_assert(SIOCIFCREATE2 == 0xc020697aUL, "SIOCIFCREATE2 _IOWR('i', 122, struct ifreq)");
static_assert(SIOCIFDESTROY == 0x80206979UL, "SIOCIFDESTROY _IOW('i', 121, struct ifreq)");
static_assert(SIOCSDRVSPEC == 0x8028697bUL, "SIOCSDRVSPEC _IOW('i', 123, struct ifdrv)");
static_assert(SIOCGDRVSPEC == 0xc028697bUL, "SIOCGDRVSPEC _IOWR('i', 123, struct ifdrv)");
static_assert(SIOCSIFMTU == 0x80206934UL, "SIOCSIFMTU _IOW('i', 52, struct ifreq)");
static_assert(SIOCGIFDEVMTU == 0xc0206944UL, "SIOCGIFDEVMTU _IOWR('i', 68, struct ifreq)");
static_assert(SIOCSIFLLADDR == 0x8020693cUL, "SIOCSIFLLADDR _IOW('i', 60, struct ifreq)");
static_assert(SIOCSIFMETRIC == 0x80206918UL, "SIOCSIFMETRIC _IOW('i', 24, struct ifreq)");
static_assert(SIOCGIFFLAGS == 0xc0206911UL, "SIOCGIFFLAGS _IOWR('i', 17, struct ifreq)");
static_assert(SIOCSIFFLAGS == 0x80206910UL, "SIOCSIFFLAGS _IOW('i', 16, struct ifreq)");
static_assert(SIOCAIFADDR == 0x8040691aUL, "SIOCAIFADDR _IOW('i', 26, struct ifaliasreq)");
static_assert(SIOCAIFADDR_IN6 == 0x8080691aUL, "SIOCAIFADDR_IN6 _IOW('i', 26, struct in6_aliasreq)");
static_assert(CTLIOCGINFO == 0xc0644e03UL, "CTLIOCGINFO _IOWR('N', 3, struct ctl_info)");

static_assert(SIOCDIFADDR == 0x80206919UL, "SIOCDIFADDR _IOW('i', 25, struct ifreq)");
static_assert(SIOCDIFADDR_IN6 == 0x81206919UL, "SIOCDIFADDR_IN6 _IOW('i', 25, struct in6_ifreq)");
static_assert(sizeof(struct in6_ifreq) == 288 && offsetof(struct in6_ifreq, ifr_ifru) == 16, "struct in6_ifreq");

// The routing socket, as @tapkit/core's darwin-route.ts decodes it (its DARWIN_ROUTE constants).
static_assert(PF_ROUTE == 17 && AF_LINK == 18 && AF_INET == 2 && AF_INET6 == 30, "address families");
static_assert(RTM_VERSION == 5, "RTM_VERSION");
static_assert(RTM_NEWADDR == 0xc && RTM_DELADDR == 0xd && RTM_IFINFO == 0xe, "RTM_ types");
static_assert(RTA_DST == 0x1 && RTA_GATEWAY == 0x2 && RTA_NETMASK == 0x4 && RTA_GENMASK == 0x8 &&
                  RTA_IFP == 0x10 && RTA_IFA == 0x20 && RTA_AUTHOR == 0x40 && RTA_BRD == 0x80 && RTAX_MAX == 8,
              "RTA_ bits, in sockaddr order");
static_assert(IFF_UP == 0x1 && IFF_RUNNING == 0x40, "IFF_UP, IFF_RUNNING");
static_assert(sizeof(struct if_msghdr) == 112, "struct if_msghdr");
static_assert(offsetof(struct if_msghdr, ifm_msglen) == 0 && offsetof(struct if_msghdr, ifm_version) == 2 &&
                  offsetof(struct if_msghdr, ifm_type) == 3 && offsetof(struct if_msghdr, ifm_addrs) == 4 &&
                  offsetof(struct if_msghdr, ifm_flags) == 8 && offsetof(struct if_msghdr, ifm_index) == 12 &&
                  offsetof(struct if_msghdr, ifm_data) == 16,
              "if_msghdr fields");
static_assert(sizeof(struct if_data) == 96, "struct if_data (ifi_lastchange a timeval32)");
static_assert(offsetof(struct if_data, ifi_mtu) == 8 && offsetof(struct if_data, ifi_metric) == 12,
              "if_data.ifi_mtu, ifi_metric");
static_assert(sizeof(struct ifa_msghdr) == 20, "struct ifa_msghdr");
static_assert(offsetof(struct ifa_msghdr, ifam_msglen) == 0 && offsetof(struct ifa_msghdr, ifam_version) == 2 &&
                  offsetof(struct ifa_msghdr, ifam_type) == 3 && offsetof(struct ifa_msghdr, ifam_addrs) == 4 &&
                  offsetof(struct ifa_msghdr, ifam_flags) == 8 && offsetof(struct ifa_msghdr, ifam_index) == 12 &&
                  offsetof(struct ifa_msghdr, ifam_metric) == 16,
              "ifa_msghdr fields");
static_assert(sizeof(struct sockaddr_in) == 16 && offsetof(struct sockaddr_in, sin_addr) == 4, "sockaddr_in");
static_assert(sizeof(struct sockaddr_in6) == 28 && offsetof(struct sockaddr_in6, sin6_addr) == 8, "sockaddr_in6");

static_assert(BIOCSBLEN == 0xc0044266UL, "BIOCSBLEN _IOWR('B', 102, u_int)");
static_assert(BIOCPROMISC == 0x20004269UL, "BIOCPROMISC _IO('B', 105)");
static_assert(BIOCSETIF == 0x8020426cUL, "BIOCSETIF _IOW('B', 108, struct ifreq)");
static_assert(BIOCIMMEDIATE == 0x80044270UL, "BIOCIMMEDIATE _IOW('B', 112, u_int)");
static_assert(BIOCSHDRCMPLT == 0x80044275UL, "BIOCSHDRCMPLT _IOW('B', 117, u_int)");
static_assert(BIOCSSEESENT == 0x80044277UL, "BIOCSSEESENT _IOW('B', 119, u_int)");
#endif
