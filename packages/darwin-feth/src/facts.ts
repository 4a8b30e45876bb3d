/**
 * The macOS facts this backend relies on, each with where it was checked.
 *
 * Sources, read for facts only (no code was taken from them):
 * - xnu = github.com/apple-oss-distributions/xnu at tag xnu-11417.101.15 (macOS 15), with
 *   older tags (xnu-4570.1.46 = 10.13, xnu-4903 = 10.14, xnu-6153 = 10.15) where history matters.
 * - ZeroTier = github.com/zerotier/ZeroTierOne osdep/MacEthernetTap.cpp and
 *   osdep/MacEthernetTapAgent.c.
 *
 * @module
 */

/** The backend's name. */
export const BACKEND = 'darwin-feth';

// ---- feth (bsd/net/if_fake.c, bsd/net/if_fake_var.h) ----

/** Clone name: interfaces are `feth<unit>` (FAKE_ETHER_NAME, if_fake.c). */
export const FETH_PREFIX = 'feth';

/**
 * Highest unit: FETH_MAXUNIT = IF_MAXUNIT = 0x7fff (if_fake.c; bsd/net/if_private.h). A larger
 * unit makes SIOCIFCREATE2 fail with ENXIO (if_clone_create in bsd/net/if.c).
 */
export const FETH_MAX_UNIT = 0x7fff;

/**
 * Units tapkit uses. ZeroTier creates feth0–feth9999 and, on start, destroys every
 * feth0–feth9999 it finds (MacEthernetTap.cpp: names of 5–8 characters), so tapkit stays at
 * 10000 and above. The member carrying the user's addresses is `feth1xxxx`, its I/O peer
 * `feth2xxxx` with the same last four digits, so a pair is recognisable at a glance.
 */
export const USER_UNIT_BASE = 10000;
export const IO_UNIT_OFFSET = 10000;
export const PAIR_SLOTS = 10000;

/**
 * sysctl `net.link.fake.max_mtu`: the MTU ceiling of a feth is copied from it when the
 * interface is created (fakeif->iff_max_mtu in feth_clone_create) and never changes after.
 * Exists since 10.15 (xnu-6153; absent in xnu-4570 and xnu-4903, where the ceiling is fixed).
 * Default FETH_MAX_MTU_DEFAULT = 2048; the handler accepts ETHERMTU (1500) to
 * FETH_MAX_MTU_MAX = 16 * 1024 - ETHER_HDR_LEN = 16370, and only above buflet_size (512).
 */
export const MAX_MTU_SYSCTL = 'net.link.fake.max_mtu';
export const FETH_MAX_MTU_DEFAULT = 2048;
export const FETH_MAX_MTU_LIMIT = 16370;
export const FETH_MAX_MTU_SYSCTL_MIN = 1500;

/**
 * Smallest MTU: SIOCSIFMTU below IF_MINMTU = 72 is EINVAL (bsd/net/if_var.h; feth_ioctl and
 * ifioctl in bsd/net/if.c). Larger than core's 68, so this backend's range starts at 72.
 */
export const FETH_MIN_MTU = 72;

/**
 * In BSD mode (if_fake_bsd_mode = 1, the default) the ceiling is also capped by the mbuf
 * cluster size: 16384 - 14 with jumbo clusters (njcl > 0), else 4096 - 14 (get_max_mtu).
 * SIOCGIFDEVMTU reports the interface's real ceiling (ifdm_max); tapkit reads it after creation.
 */
export const FETH_NO_JUMBO_MAX_MTU = 4096 - 14;

/**
 * SIOCSDRVSPEC with `ifd_cmd` IF_FAKE_S_CMD_SET_PEER = 1 and a `struct if_fake_request`
 * (4 zero uint64 then a 128-byte union holding the peer's name: 160 bytes) peers two feth.
 * feth_set_drvspec / feth_config: ENXIO no such peer, EINVAL peer not a feth or reserved words
 * not zero or ifd_len < 160, EBUSY either side already peered or detaching. SIOCSDRVSPEC is
 * root-only (proc_suser in feth_ioctl). An empty name unpeers. IF_FAKE_G_CMD_GET_PEER = 1
 * (SIOCGDRVSPEC) returns the peer's name. Destroying a member unpeers (feth_clone_destroy).
 */
export const IF_FAKE_S_CMD_SET_PEER = 1;
export const IF_FAKE_G_CMD_GET_PEER = 1;
export const IF_FAKE_REQUEST_SIZE = 160;

/** The MAC a new feth gets: "feth" then the unit, big-endian (feth_clone_create). */
export function defaultFethMac(unit: number): Uint8Array {
  return Uint8Array.of(0x66, 0x65, 0x74, 0x68, (unit >> 8) & 0xff, unit & 0xff);
}

// ---- BPF (bsd/net/bpf.h, bsd/net/bpf.c) ----

/**
 * `struct bpf_hdr` on darwin: `struct timeval32 bh_tstamp` (int32 sec, int32 usec), u32
 * bh_caplen, u32 bh_datalen, u16 bh_hdrlen: 18 bytes of fields, sizeof 20 with padding.
 * Fields are in host order; every Mac with feth (x86_64, arm64) is little-endian.
 */
export const BPF_HDR_FIELDS = 18;
export const BPF_HDR_CAPLEN = 8;
export const BPF_HDR_DATALEN = 12;
export const BPF_HDR_HDRLEN = 16;

/**
 * What the kernel writes in bh_hdrlen: BPF_WORDALIGN(14 + SIZEOF_BPF_HDR) - 14 for Ethernet
 * (bpf_attach), SIZEOF_BPF_HDR being 18 because sizeof(struct bpf_hdr) <= 20: so 18, not 20,
 * and the IP header after the 14-byte Ethernet header lands on a 4-byte boundary. Readers
 * must use bh_hdrlen from each record, never a constant.
 */
export const BPF_ETHERNET_HDRLEN = 18;

/** BPF_ALIGNMENT = sizeof(int32_t); BPF_WORDALIGN rounds up to it. */
export const BPF_ALIGNMENT = 4;

/**
 * The buffer size tapkit asks for with BIOCSBLEN (ZeroTier uses the same). It must be set
 * before BIOCSETIF (EINVAL after), the kernel silently caps it (BPF_BUFSIZE_CAP) so the
 * effective size is read back, and every read(2) must ask for exactly that size (bpfread:
 * EINVAL otherwise). A packet larger than the buffer is truncated (catchpacket caps totlen at
 * bd_bufsize): then bh_caplen < bh_datalen. 128 KiB holds several of the largest frames feth
 * carries (16370 + 18).
 */
export const BPF_BUFFER_SIZE = 128 * 1024;

// ---- NDRV (bsd/net/ndrv.c, bsd/net/ndrv_var.h, bsd/kern/uipc_socket.c) ----

/**
 * AF_NDRV sockets start with a send buffer of NDRVSNDQ = 8192 bytes (ndrv_attach → soreserve)
 * and are PR_ATOMIC, so sosend refuses a write larger than sb_hiwat with EMSGSIZE: frames over
 * 8 KiB need SO_SNDBUF raised. Creating one needs root (ndrv_attach: EPERM without SS_PRIV).
 * ndrv_output hands the mbuf to the driver synchronously, so the buffer never fills: writes do
 * not return EAGAIN in practice, and no write queue is needed.
 */
export const NDRV_DEFAULT_SNDBUF = 8192;

// ---- Other interface facts (bsd/net/if.c, bsd/netinet/in.c) ----

/**
 * The interface metric (SIOCSIFMETRIC, root-only) is stored and copied to addresses
 * (ifa_metric) but the kernel does not use it to choose routes: it is a hint for software that
 * ranks interfaces. tapkit sets a high one by default, as ZeroTier does (ZT_IF_METRIC 5000).
 */
export const DEFAULT_METRIC = 5000;

/** Darwin 17 = macOS 10.13, the first with feth (xnu-4570). */
export const MIN_DARWIN_MAJOR = 17;

/** Largest Ethernet header the engine accepts over the MTU: 14 plus an 802.1Q tag. */
export const MAX_LINK_HEADER = 18;
