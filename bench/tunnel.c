// Reference tunnel end: the practical limit of this machine for a user-space L2-over-UDP tunnel
// (the design of examples/udp-tunnel: one Ethernet frame per datagram, in the clear).
//
//   tunnel [--mtu N] <tap> <local port> <peer port>
//
// Creates a TAP device (IFF_TAP|IFF_NO_PI), sets its MTU, brings it up, binds a UDP socket to
// 127.0.0.1:<local port> and connects it to 127.0.0.1:<peer port>, prints "ready", then copies
// frames both ways with epoll, draining each fd until EAGAIN: read(tap) → send(udp), recv(udp) →
// write(tap), one syscall a frame each way (as relay.c). On SIGTERM/SIGINT it prints one JSON line.
//
// Write policy (as relay.c): a send that says EAGAIN holds the frame, reading the tap stops and
// the socket is polled for writable. Other errors (ECONNREFUSED while the peer is not up yet, a
// write refused for a down interface) drop the frame and count it.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

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
  fprintf(stderr, "tunnel: %s %s: %s\n", what, name, strerror(errno));
  exit(1);
}

static int open_tap(const char *name, int mtu) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) die("open /dev/net/tun for", name);
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) die("TUNSETIFF", name);
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

static int open_udp(int local, int peer) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket", "udp");
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  sa.sin_port = htons(local);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind", "udp");
  sa.sin_port = htons(peer);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("connect", "udp");
  return fd;
}

static void update(int ep, int fd, const struct dir *from, const struct dir *to) {
  struct epoll_event ev = {.events = (from->pending ? 0 : EPOLLIN) | (to->pending ? EPOLLOUT : 0),
                           .data.fd = fd};
  if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) < 0) die("epoll_ctl", "");
}

/* Writes the held frame (write() on the tap, send() on the connected socket); returns 0 if it is
   still held (EAGAIN). */
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
      if (errno == EINTR || errno == ECONNREFUSED) continue; /* an ICMP error of an earlier send */
      if (errno == EAGAIN) return;
      die("read", "");
    }
    if (n == 0) continue;
    d->pending = n;
    flush(d);
  }
}

int main(int argc, char **argv) {
  int mtu = 1500, i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (!strcmp(argv[i], "--mtu") && i + 1 < argc) mtu = atoi(argv[++i]);
    else break;
  }
  if (argc - i != 3) {
    fprintf(stderr, "usage: tunnel [--mtu N] <tap> <local port> <peer port>\n");
    return 2;
  }
  sigset_t block, wait_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  sigprocmask(SIG_BLOCK, &block, &wait_mask);
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  int tap = open_tap(argv[i], mtu), udp = open_udp(atoi(argv[i + 1]), atoi(argv[i + 2]));
  struct dir out = {.in = tap, .out = udp, .buf = malloc(BUF_LEN)},
             in = {.in = udp, .out = tap, .buf = malloc(BUF_LEN)};
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event et = {.events = EPOLLIN, .data.fd = tap}, eu = {.events = EPOLLIN, .data.fd = udp};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, tap, &et) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, udp, &eu) < 0)
    die("epoll", "");
  printf("ready\n");
  fflush(stdout);

  while (!stop) {
    struct epoll_event events[2];
    int n = epoll_pwait(ep, events, 2, -1, &wait_mask);
    if (n < 0 && errno != EINTR) die("epoll_wait", "");
    for (int k = 0; k < n; k++) {
      int fd = events[k].data.fd;
      struct dir *from = fd == tap ? &out : &in, *to = fd == tap ? &in : &out;
      int held = from->pending != 0, waiting = to->pending != 0;
      if ((events[k].events & EPOLLOUT) && waiting && flush(to)) pump(to); /* resume its source */
      if (events[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) pump(from);
      if (held != (from->pending != 0) || waiting != (to->pending != 0)) {
        update(ep, tap, &out, &in);
        update(ep, udp, &in, &out);
      }
    }
  }

  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"tunnel\":\"c\",\"framesOut\":%llu,\"framesIn\":%llu,\"sendErrors\":%llu,\"writeErrors\":%llu,"
         "\"cpuUserSec\":%.6f,\"cpuSysSec\":%.6f}\n",
         out.frames, in.frames, out.errors, in.errors, ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
         ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
  return 0;
}
