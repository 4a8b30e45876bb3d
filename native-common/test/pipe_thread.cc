// Drives tapkit/pipe.h's PipeThread on Linux for test/pipe-native.test.ts (darwin-feth), built
// with -fsanitize=address,undefined: the thread a darwin-feth pipe runs, with BPF framing on the
// read side and send() on the write side, over stand-ins for the BPF fd (a SOCK_SEQPACKET
// socket: one read returns what one write put in, as a BPF read returns one buffer) and the NDRV
// socket (a SOCK_DGRAM socket). The pipe code is the same code the addons compile.
// Self-checking (CHECK aborts with the line); prints one JSON line per scenario for the test.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tapkit/pipe.h"

using namespace tapkit;

#define CHECK(cond)                                                    \
  do {                                                                 \
    if (!(cond)) {                                                     \
      fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
      abort();                                                         \
    }                                                                  \
  } while (0)

// The pipe's "ended" signal: libuv's, in the addons; here a flag.
static std::atomic<int> endedSignals{0};
extern "C" int uv_async_send(uv_async_t*) {
  endedSignals++;
  return 0;
}

static void NonBlocking(int fd) { CHECK(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0); }

struct Pair {
  int fds[2];
  explicit Pair(int type) {
    CHECK(socketpair(AF_UNIX, type, 0, fds) == 0);
    NonBlocking(fds[0]);
    NonBlocking(fds[1]);
  }
  ~Pair() {
    if (fds[0] >= 0) close(fds[0]);
    if (fds[1] >= 0) close(fds[1]);
  }
};

// A frame whose bytes say its sequence number and length.
static std::vector<uint8_t> Frame(uint32_t seq, size_t length, bool vlan = false) {
  std::vector<uint8_t> f(length);
  for (size_t i = 0; i < length; i++) f[i] = static_cast<uint8_t>(seq * 7 + i);
  if (length >= 4) memcpy(f.data(), &seq, 4);
  if (vlan && length >= 14) {
    f[12] = 0x81;
    f[13] = 0x00;
  }
  return f;
}

static bool IsFrame(const uint8_t* data, size_t length, uint32_t seq, size_t wantLength) {
  if (length != wantLength || length < 4) return false;
  uint32_t got;
  memcpy(&got, data, 4);
  if (got != seq) return false;
  for (size_t i = 4; i < length; i++) {
    if (i == 12 || i == 13) continue;  // a VLAN tag may sit there
    if (data[i] != static_cast<uint8_t>(seq * 7 + i)) return false;
  }
  return true;
}

struct Rec {
  std::vector<uint8_t> frame;
  uint32_t caplen;
  uint16_t hdrlen;
};

// One BPF read's worth of records, as catchpacket packs them.
static std::vector<uint8_t> BpfBuffer(const std::vector<Rec>& records) {
  std::vector<uint8_t> out;
  for (const Rec& r : records) {
    out.resize(bpf::WordAlign(out.size()));
    size_t at = out.size();
    out.resize(at + r.hdrlen + r.caplen);
    uint32_t datalen = static_cast<uint32_t>(r.frame.size());
    memcpy(&out[at + 8], &r.caplen, 4);
    memcpy(&out[at + 12], &datalen, 4);
    memcpy(&out[at + 16], &r.hdrlen, 2);
    memcpy(&out[at + r.hdrlen], r.frame.data(), r.caplen);
  }
  return out;
}

static Rec Whole(std::vector<uint8_t> frame, uint16_t hdrlen = 18) {
  uint32_t caplen = static_cast<uint32_t>(frame.size());
  return {std::move(frame), caplen, hdrlen};
}

// Sends one buffer, waiting while the socket is full.
static void Send(int fd, const std::vector<uint8_t>& buffer) {
  for (;;) {
    ssize_t n = send(fd, buffer.data(), buffer.size(), 0);
    if (n == static_cast<ssize_t>(buffer.size())) return;
    if (n < 0 && errno != EAGAIN) fprintf(stderr, "send: %s\n", strerror(errno));
    CHECK(n < 0 && errno == EAGAIN);
    struct pollfd p = {fd, POLLOUT, 0};
    poll(&p, 1, 1000);
  }
}

// Reads datagrams from `fd` until `count` arrived (or 5 s passed).
static std::vector<std::vector<uint8_t>> Receive(int fd, size_t count) {
  std::vector<std::vector<uint8_t>> got;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::vector<uint8_t> buffer(70000);
  while (got.size() < count && std::chrono::steady_clock::now() < deadline) {
    struct pollfd p = {fd, POLLIN, 0};
    poll(&p, 1, 50);
    for (;;) {
      ssize_t n = recv(fd, buffer.data(), buffer.size(), 0);
      if (n < 0) break;
      got.emplace_back(buffer.begin(), buffer.begin() + n);
    }
  }
  return got;
}

template <typename Pred>
static bool WaitFor(Pred pred) {
  for (int i = 0; i < 500; i++) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

static std::string Json(const char* name, const PipeDirection::Counts& c, size_t delivered) {
  char line[512];
  snprintf(line, sizeof line,
           "{\"scenario\":\"%s\",\"frames\":%.0f,\"bytes\":%.0f,\"interfaceDown\":%.0f,\"refused\":%.0f,"
           "\"noBuffers\":%.0f,\"truncated\":%.0f,\"runts\":%.0f,\"malformed\":%.0f,\"delivered\":%zu}",
           name, c.frames, c.bytes, c.interfaceDown, c.refused, c.noBuffers, c.truncated, c.runts, c.malformed,
           delivered);
  return line;
}

constexpr size_t kBufferBytes = 128 * 1024;  // BIOCSBLEN's grant: every read asks for exactly this

// BPF records in, send() out: frames delivered in order; truncated records and runts skipped
// and counted; a malformed read counted once, its frames before the bad record delivered; frames
// over the destination's limit refused (a VLAN tag allowed 4 more); a read's end ends the pipe.
static void Records() {
  Pair bpf(SOCK_SEQPACKET), ndrv(SOCK_DGRAM);
  auto limit = std::make_shared<FrameLimit>();
  limit->Set(14, 1514, 4);
  PipeDirection d(bpf.fds[1], ndrv.fds[0], kBufferBytes, nullptr, limit, ReadFraming::kBpf, WriteFraming::kSend);
  int before = endedSignals;
  {
    PipeThread thread({&d});
    Send(bpf.fds[0], BpfBuffer({Whole(Frame(1, 60)), Whole(Frame(2, 1514)), Whole(Frame(3, 61), 19)}));
    Send(bpf.fds[0], BpfBuffer({{Frame(0, 1514), 100, 18}, Whole(Frame(0, 13)), Whole(Frame(4, 14), 23),
                                Whole(Frame(0, 1515)), Whole(Frame(5, 1518, true)), Whole(Frame(0, 1519, true))}));
    std::vector<uint8_t> bad = BpfBuffer({Whole(Frame(6, 100)), Whole(Frame(0, 100))});
    uint32_t lie = 5000;  // the second record claims more than the read holds
    memcpy(&bad[bpf::WordAlign(118) + 8], &lie, 4);
    memcpy(&bad[bpf::WordAlign(118) + 12], &lie, 4);
    Send(bpf.fds[0], bad);
    Send(bpf.fds[0], std::vector<uint8_t>(7, 0xee));  // garbage: malformed at once
    Send(bpf.fds[0], BpfBuffer({Whole(Frame(7, 64))}));
    auto got = Receive(ndrv.fds[1], 7);
    CHECK(got.size() == 7);
    const size_t lengths[] = {60, 1514, 61, 14, 1518, 100, 64};
    for (uint32_t i = 0; i < 7; i++) CHECK(IsFrame(got[i].data(), got[i].size(), i + 1, lengths[i]));
    CHECK(WaitFor([&] { return d.counts().malformed == 2; }));
    PipeDirection::Counts c = d.counts();
    CHECK(c.frames == 7 && c.bytes == 60 + 1514 + 61 + 14 + 1518 + 100 + 64);
    CHECK(c.truncated == 1 && c.runts == 1 && c.refused == 2 && c.noBuffers == 0 && c.interfaceDown == 0);
    // The BPF fd's end (the interface destroyed): the thread stops and says so.
    close(bpf.fds[0]);
    bpf.fds[0] = -1;
    CHECK(WaitFor([&] { return endedSignals == before + 1; }));
  }
  printf("%s\n", Json("records", d.counts(), 7).c_str());
}

// Backpressure: the destination says EAGAIN in the middle of a BPF read; the rest of the read
// is held (records after the stop neither lost nor counted twice) and goes once it drains.
static void Backpressure() {
  Pair bpf(SOCK_SEQPACKET), ndrv(SOCK_DGRAM);
  int small = 4096;
  CHECK(setsockopt(ndrv.fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
  auto limit = std::make_shared<FrameLimit>();
  PipeDirection d(bpf.fds[1], ndrv.fds[0], kBufferBytes, nullptr, limit, ReadFraming::kBpf, WriteFraming::kSend);
  const uint32_t reads = 40, perRead = 30;  // 1,200 frames, 40 truncated records among them
  uint32_t seq = 0;
  {
    PipeThread thread({&d});
    // The writer waits when the stand-in's buffer is full, as the kernel's BPF buffer would drop.
    std::thread writer([&] {
      for (uint32_t r = 0; r < reads; r++) {
        std::vector<Rec> records;
        for (uint32_t k = 0; k < perRead; k++, seq++) records.push_back(Whole(Frame(seq, 200 + (seq % 700))));
        records.push_back({Frame(0, 1000), 50, 18});  // truncated: skipped once, however often it waits
        Send(bpf.fds[0], BpfBuffer(records));
      }
    });
    // Nobody reads ndrv yet: the pipe stops at EAGAIN, holding the rest of a read.
    CHECK(WaitFor([&] { return d.counts().frames > 0; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK(d.counts().frames < reads * perRead);
    auto got = Receive(ndrv.fds[1], reads * perRead);
    writer.join();
    CHECK(got.size() == reads * perRead);
    for (uint32_t i = 0; i < got.size(); i++) CHECK(IsFrame(got[i].data(), got[i].size(), i, 200 + (i % 700)));
    CHECK(WaitFor([&] { return d.counts().truncated == reads; }));
  }
  PipeDirection::Counts c = d.counts();
  CHECK(c.frames == reads * perRead && c.truncated == reads && c.refused == 0);
  printf("%s\n", Json("backpressure", c, reads * perRead).c_str());
}

// Plain framing into write(2) (linux-tap's pipe), and BPF into a plain fd (write): one read, one
// frame; the limit applies; a refusal (the peer gone: EPIPE) is counted and the pipe goes on.
static void PlainAndRefusals() {
  Pair in(SOCK_SEQPACKET), out(SOCK_SEQPACKET);
  auto limit = std::make_shared<FrameLimit>();
  limit->Set(14, 114, 4);
  PipeDirection d(in.fds[1], out.fds[0], kBufferBytes, nullptr, limit);
  {
    PipeThread thread({&d});
    for (uint32_t i = 0; i < 4; i++) Send(in.fds[0], Frame(i, i == 2 ? 115 : 100));
    Send(in.fds[0], Frame(4, 118, true));
    auto got = Receive(out.fds[1], 4);
    CHECK(got.size() == 4);
    CHECK(IsFrame(got[2].data(), got[2].size(), 3, 100) && IsFrame(got[3].data(), got[3].size(), 4, 118));
    CHECK(WaitFor([&] { return d.counts().refused == 1; }));
    close(out.fds[1]);
    out.fds[1] = -1;
    Send(in.fds[0], Frame(5, 100));
    CHECK(WaitFor([&] { return d.counts().refused == 2; }));
  }
  PipeDirection::Counts c = d.counts();
  CHECK(c.frames == 4 && c.bytes == 3 * 100 + 118 && c.refused == 2 && c.truncated == 0);
  printf("%s\n", Json("plain", c, 4).c_str());

  Pair bpf(SOCK_SEQPACKET), tap(SOCK_SEQPACKET);
  PipeDirection e(bpf.fds[1], tap.fds[0], kBufferBytes, nullptr, std::make_shared<FrameLimit>(), ReadFraming::kBpf,
                  WriteFraming::kWrite);
  {
    PipeThread thread({&e});
    Send(bpf.fds[0], BpfBuffer({Whole(Frame(1, 60)), Whole(Frame(2, 70)), Whole(Frame(3, 80))}));
    auto got = Receive(tap.fds[1], 3);
    CHECK(got.size() == 3 && IsFrame(got[1].data(), got[1].size(), 2, 70));
  }
  printf("%s\n", Json("bpf-to-plain", e.counts(), 3).c_str());
}

// Two directions on one thread (a relay), stopped while frames are held: the destructor joins.
static void RelayAndStop() {
  Pair a(SOCK_SEQPACKET), ab(SOCK_DGRAM), b(SOCK_SEQPACKET), ba(SOCK_DGRAM);
  auto limit = std::make_shared<FrameLimit>();
  int small = 4096;
  CHECK(setsockopt(ab.fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
  PipeDirection there(a.fds[1], ab.fds[0], kBufferBytes, nullptr, limit, ReadFraming::kBpf, WriteFraming::kSend);
  PipeDirection back(b.fds[1], ba.fds[0], kBufferBytes, nullptr, limit, ReadFraming::kBpf, WriteFraming::kSend);
  {
    PipeThread thread({&there, &back});
    for (uint32_t i = 0; i < 30; i++) {
      Send(a.fds[0], BpfBuffer({Whole(Frame(i, 1400)), Whole(Frame(i, 1400))}));
      Send(b.fds[0], BpfBuffer({Whole(Frame(i, 100))}));
    }
    CHECK(WaitFor([&] { return back.counts().frames == 30; }));
    // Nobody reads ab: `there` is held; the thread is stopped like that.
  }
  CHECK(back.counts().frames == 30 && there.counts().frames < 60);
  printf("%s\n", Json("relay-stopped", there.counts(), 0).c_str());
}

int main() {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  Records();
  Backpressure();
  PlainAndRefusals();
  RelayAndStop();
  return 0;
}
