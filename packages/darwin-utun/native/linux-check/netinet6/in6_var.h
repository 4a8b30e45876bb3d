#pragma once
// Linux check only: see ../prelude.h. Not Darwin's layouts or values.
#include <netinet/in.h>
struct in6_addrlifetime { time_t ia6t_expire; time_t ia6t_preferred; uint32_t ia6t_vltime; uint32_t ia6t_pltime; };
struct in6_aliasreq { char ifra_name[IFNAMSIZ]; struct sockaddr_in6 ifra_addr; struct sockaddr_in6 ifra_dstaddr; struct sockaddr_in6 ifra_prefixmask; int ifra_flags; struct in6_addrlifetime ifra_lifetime; };
#define SIOCAIFADDR_IN6 0x8080691a
struct in6_ifreq { union { char ifrn_name[IFNAMSIZ]; } ifr_ifrn; union { struct sockaddr_in6 ifru_addr; } ifr_ifru; };  // ifr_name: glibc's macro
#define SIOCDIFADDR_IN6 0x81206919
