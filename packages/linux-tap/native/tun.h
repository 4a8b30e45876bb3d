// Opening /dev/net/tun and attaching the fd to an interface: shared by TapHandle and the
// persistent-device helpers.
#pragma once

#include <linux/if_tun.h>
#include "tapkit/napi_config.h"

#include <string>

// Newer than some kernel headers (Linux 6.2).
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

namespace tapkit {

// Size of the virtio-net header in front of every frame in offload mode: struct
// virtio_net_hdr_v1 (virtio 1.0; also virtio_net_hdr_mrg_rxbuf), 12 bytes.
constexpr int kVnetHeaderBytes = 12;

// What OpenTun did: the fd, the kernel's name for the interface (it expands `%d`), and the
// device's flags as TUNGETIFF reports them (IFF_PERSIST, IFF_MULTI_QUEUE, IFF_VNET_HDR…).
struct TunFd {
  int fd;
  std::string name;
  int flags;
};

// Opens `path` (close-on-exec, non-blocking) and attaches it with TUNSETIFF to `name` using
// `flags` (IFF_TAP or IFF_TUN, IFF_NO_PI, IFF_TUN_EXCL…). Attaching (no IFF_TUN_EXCL) without
// IFF_MULTI_QUEUE to a device made multi-queue is retried as one of its queues. Throws an
// ErrnoError (syscall `open` or `ioctl` with the request name) on failure.
TunFd OpenTun(Napi::Env env, const std::string& path, const std::string& name, int flags);

// openTapFd(name, path?) → { fd, name }: creates the tap `name` (IFF_TAP | IFF_NO_PI, never
// attaching to an existing device; `%d` is filled in) and returns its fd, blocking and
// close-on-exec, to be handed to another process (stdio, SCM_RIGHTS), which owns it.
Napi::Value OpenTapFd(const Napi::CallbackInfo& info);

}  // namespace tapkit
