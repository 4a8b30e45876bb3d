// The BPF record walker in C++: what a native pipe reading a darwin BPF device does with each
// read. The same rules as darwin-feth's TypeScript walker (src/bpf.ts), which is the spec: a
// test drives both with the same crafted buffers and checks that they agree.
//
// A read holds records back to back: a darwin `struct bpf_hdr` (int32 sec, int32 usec — a
// struct timeval32 on 64-bit macOS —, u32 caplen, u32 datalen, u16 hdrlen: 18 bytes of fields),
// padding up to bh_hdrlen, then bh_caplen bytes of the packet; the next record starts at
// BPF_WORDALIGN(bh_hdrlen + bh_caplen) (4-byte alignment). The last record is not padded.
//
// Nothing here trusts a length. Every field is read with memcpy (records need not be aligned in
// the caller's buffer), every record is checked to lie inside the read before a byte of it is
// used, and every step moves forward by at least 20 bytes. A record that does not fit ends the
// read's walk (malformed: the frames before it were delivered). Records the kernel cut
// (caplen < datalen) are skipped and counted as truncated; records shorter than an Ethernet
// header are skipped and counted as runts. Pure C++ (no N-API, no OS calls): the same code on
// macOS and on Linux, where it is tested with sanitizers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace tapkit {
namespace bpf {

constexpr size_t kHeaderFields = 18;  // the bpf_hdr fields, without the struct's tail padding
constexpr size_t kCaplenAt = 8;
constexpr size_t kDatalenAt = 12;
constexpr size_t kHdrlenAt = 16;
constexpr size_t kAlignment = 4;  // BPF_ALIGNMENT: sizeof(int32_t)
constexpr size_t kEthernetHeader = 14;

inline size_t WordAlign(size_t length) { return (length + kAlignment - 1) & ~(kAlignment - 1); }

// Host order: little-endian on every Mac that has feth (and on the Linux hosts that test this).
inline uint32_t Load32(const uint8_t* at) {
  uint32_t value;
  memcpy(&value, at, sizeof value);
  return value;
}

inline uint16_t Load16(const uint8_t* at) {
  uint16_t value;
  memcpy(&value, at, sizeof value);
  return value;
}

enum class Step {
  kFrame,      // *frame is the next whole frame; *next is where the walk goes on after it
  kEnd,        // the read is done
  kMalformed,  // the record at *at does not fit the read: the read's walk ends here
};

struct Counts {
  uint64_t truncated = 0;  // records cut by the kernel (caplen < datalen): skipped
  uint64_t runts = 0;      // records shorter than an Ethernet header: skipped
};

// The next whole frame of the read `data[0, end)` at or after `*at`. Records skipped on the way
// are counted in `counts` and `*at` moves past them, so a caller that stops at a frame (its
// destination said EAGAIN) and asks again later finds the same frame without counting twice.
// On kFrame the frame is data[*frameStart, *frameStart + *frameLength) and the walk goes on at
// *next (which may be beyond `end`: the last record is not padded).
inline Step Next(const uint8_t* data, size_t end, size_t* at, size_t* frameStart, size_t* frameLength,
                 size_t* next, Counts* counts) {
  while (*at < end) {
    size_t left = end - *at;
    if (left < kHeaderFields) return Step::kMalformed;
    const uint8_t* record = data + *at;
    uint32_t caplen = Load32(record + kCaplenAt);
    uint32_t datalen = Load32(record + kDatalenAt);
    uint16_t hdrlen = Load16(record + kHdrlenAt);
    if (hdrlen < kHeaderFields) return Step::kMalformed;
    if (caplen > datalen) return Step::kMalformed;
    // hdrlen ≤ 65535 and caplen < 2^32: the sum cannot overflow a 64-bit size_t; on a 32-bit
    // one, caplen > left is checked first.
    if (caplen > left || hdrlen > left - caplen) return Step::kMalformed;
    size_t step = WordAlign(static_cast<size_t>(hdrlen) + caplen);  // ≥ 20: the walk ends
    if (caplen < datalen) {
      counts->truncated++;
    } else if (caplen < kEthernetHeader) {
      counts->runts++;
    } else {
      *frameStart = *at + hdrlen;
      *frameLength = caplen;
      *next = step >= left ? end : *at + step;
      return Step::kFrame;
    }
    *at = step >= left ? end : *at + step;
  }
  return Step::kEnd;
}

}  // namespace bpf
}  // namespace tapkit
