#pragma once
// Linux check only: see ../prelude.h. Not Darwin's layouts or values.
#include <sys/types.h>
struct rt_metrics { uint32_t rmx_locks; uint32_t rmx_mtu; uint32_t rmx_filler[12]; };
struct rt_msghdr { u_short rtm_msglen; u_char rtm_version; u_char rtm_type; u_short rtm_index; int rtm_flags; int rtm_addrs; pid_t rtm_pid; int rtm_seq; int rtm_errno; int rtm_use; uint32_t rtm_inits; struct rt_metrics rtm_rmx; };
#define RTM_VERSION 5
#define RTM_ADD 0x1
#define RTF_UP 0x1
#define RTF_STATIC 0x800
#define RTA_DST 0x1
#define RTA_GATEWAY 0x2
#define RTA_NETMASK 0x4
#ifndef PF_ROUTE
#define PF_ROUTE 17
#endif
