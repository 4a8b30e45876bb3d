// Reference relay: the practical limit of this machine for a user-space TAP relay.
//
//   relay [--vnet-hdr] [--mtu N] <tapA> <tapB>
//
// Creates two TAP devices (IFF_TAP|IFF_NO_PI; with --vnet-hdr also IFF_VNET_HDR and checksum/TSO
// offloads, so the kernel hands over GSO super-frames with a virtio_net_hdr in front), sets their
// MTU, brings them up, prints "ready", then copies frames both ways with epoll, draining each fd
// until EAGAIN. On SIGTERM/SIGINT it prints one JSON line (frames, bytes, CPU time, peak RSS;
// ru_maxrss survives exec, so when started by a bigger process it reports that one's size: the
// harness reads VmHWM instead).
//
// Write policy (the tapkit relay follows the same): a frame is never dropped by the relay. When
// a write says EAGAIN the frame is held, reading from its source stops, and the destination is
// polled for writable; then the frame goes out and reading resumes (backpressure, like a tapkit
// write() that returns false followed by `await drain()`). A TAP write in practice never says
// EAGAIN (the tun socket's send buffer is INT_MAX); the kernel drops what its backlog cannot take.
// Other write errors (EIO while the peer interface is still down) drop the frame and count it.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define VNET_HDR_LEN 12 /* struct virtio_net_hdr_v1, as linux-tap's offload mode */
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#define TUN_F_USO6 0x40
#endif
#define BUF_LEN (65536 + 64)

struct dir {
  int in, out;        /* read from in, write to out */
  unsigned char *buf; /* the frame held back by EAGAIN, if pending > 0 */
  ssize_t pending;
  unsigned long long frames, bytes, errors;
};

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static void die(const char *what, const char *name) {
  fprintf(stderr, "relay: %s %s: %s\n", what, name, strerror(errno));
  exit(1);
}

static int open_tap(const char *name, int vnet, int mtu) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) die("open /dev/net/tun for", name);
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) die("TUNSETIFF", name);
  if (vnet) {
    int size = VNET_HDR_LEN;
    if (ioctl(fd, TUNSETVNETHDRSZ, &size) < 0) die("TUNSETVNETHDRSZ", name);
    /* UDP segmentation offload too where the kernel has it (6.2+), as linux-tap does. */
    unsigned offloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
    if (ioctl(fd, TUNSETOFFLOAD, offloads | TUN_F_USO4 | TUN_F_USO6) < 0 && ioctl(fd, TUNSETOFFLOAD, offloads) < 0)
      die("TUNSETOFFLOAD", name);
  }
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) die("socket for", name);
  ifr.ifr_mtu = mtu;
  if (ioctl(sock, SIOCSIFMTU, &ifr) < 0) die("SIOCSIFMTU", name);
  if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0) die("SIOCGIFFLAGS", name);
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0) die("SIOCSIFFLAGS", name);
  close(sock);
  return fd;
}

/* What fd wants from epoll: readable unless its outgoing direction is held back, writable
   while a frame for it waits. */
static void update(int ep, int fd, const struct dir *from, const struct dir *to) {
  struct epoll_event ev = {.events = (from->pending ? 0 : EPOLLIN) | (to->pending ? EPOLLOUT : 0),
                           .data.fd = fd};
  if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) < 0) die("epoll_ctl", "");
}

/* Writes the held frame; returns 0 if it is still held (EAGAIN). */
static int flush(struct dir *d) {
  for (;;) {
    if (write(d->out, d->buf, d->pending) >= 0) {
      d->frames++;
      d->bytes += d->pending;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN) {
      return 0;
    } else {
      d->errors++;
    }
    d->pending = 0;
    return 1;
  }
}

/* Copies frames in -> out until read says EAGAIN or a write is held back. */
static void pump(struct dir *d) {
  while (!d->pending) {
    ssize_t n = read(d->in, d->buf, BUF_LEN);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      die("read", "");
    }
    d->pending = n;
    flush(d);
  }
}

int main(int argc, char **argv) {
  int vnet = 0, mtu = 1500, i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (!strcmp(argv[i], "--vnet-hdr")) vnet = 1;
    else if (!strcmp(argv[i], "--mtu") && i + 1 < argc) mtu = atoi(argv[++i]);
    else break;
  }
  if (argc - i != 2) {
    fprintf(stderr, "usage: relay [--vnet-hdr] [--mtu N] <tapA> <tapB>\n");
    return 2;
  }
  /* Signals are blocked except inside epoll_pwait, so none is lost between checks. */
  sigset_t block, wait_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  sigprocmask(SIG_BLOCK, &block, &wait_mask);
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  int a = open_tap(argv[i], vnet, mtu), b = open_tap(argv[i + 1], vnet, mtu);
  struct dir ab = {.in = a, .out = b, .buf = malloc(BUF_LEN)}, ba = {.in = b, .out = a, .buf = malloc(BUF_LEN)};
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ea = {.events = EPOLLIN, .data.fd = a}, eb = {.events = EPOLLIN, .data.fd = b};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, a, &ea) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, b, &eb) < 0)
    die("epoll", "");
  printf("ready\n");
  fflush(stdout);

  while (!stop) {
    struct epoll_event events[2];
    int n = epoll_pwait(ep, events, 2, -1, &wait_mask);
    if (n < 0 && errno != EINTR) die("epoll_wait", "");
    for (int k = 0; k < n; k++) {
      int fd = events[k].data.fd;
      struct dir *from = fd == a ? &ab : &ba, *to = fd == a ? &ba : &ab;
      int held = from->pending != 0, waiting = to->pending != 0;
      if ((events[k].events & EPOLLOUT) && waiting && flush(to)) pump(to); /* resume its source */
      if (events[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) pump(from);
      if (held != (from->pending != 0) || waiting != (to->pending != 0)) {
        update(ep, a, &ab, &ba);
        update(ep, b, &ba, &ab);
      }
    }
  }

  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"relay\":\"c\",\"vnetHdr\":%s,\"frames\":%llu,\"bytes\":%llu,\"writeErrors\":%llu,"
         "\"cpuUserSec\":%.6f,\"cpuSysSec\":%.6f,\"maxRssKiB\":%ld}\n",
         vnet ? "true" : "false", ab.frames + ba.frames, ab.bytes + ba.bytes, ab.errors + ba.errors,
         ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6, ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
         ru.ru_maxrss);
  return 0;
}
