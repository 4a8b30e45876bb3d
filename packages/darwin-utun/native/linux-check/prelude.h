// Linux check only: lets the addon's Darwin-only files compile on glibc, so that the data path
// (UtunHandle over an adopted fd) can be run in tests on Linux. The declarations here and in the
// headers beside it are NOT Darwin's layouts or values; nothing built with them talks to a
// kernel's utun, routing socket or interface ioctls. Never used on macOS.
#pragma once
#include <string.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <net/if.h>
#define sa_len sa_data[0]
#define sin_len sin_zero[0]
#define sin6_len sin6_flowinfo
#define AF_LINK 18
#define AF_SYSTEM 32
#define PF_SYSTEM AF_SYSTEM
#ifndef IFNAMSIZ
#define IFNAMSIZ 16
#endif
static inline size_t strlcpy(char* to, const char* from, size_t size) {
  size_t length = strlen(from);
  if (size > 0) {
    size_t n = length < size - 1 ? length : size - 1;
    memcpy(to, from, n);
    to[n] = 0;
  }
  return length;
}
struct ifaliasreq { char ifra_name[IFNAMSIZ]; struct sockaddr ifra_addr; struct sockaddr ifra_broadaddr; struct sockaddr ifra_mask; };
#define SIOCAIFADDR 0x8040691a
