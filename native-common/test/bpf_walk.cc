// Drives tapkit/bpf_records.h for test/bpf-native.test.ts (darwin-feth), built with
// -fsanitize=address,undefined. stdin: buffers, each a little-endian u32 length then its bytes.
// stdout: one JSON line per buffer: the frames' [start, length], the counts, where a malformed
// record stopped the walk. Each buffer is walked twice, from allocations of exactly its size
// (so a read past its end is an ASan error): at an aligned address, and one byte past one (so
// an unaligned load is a UBSan error). Every frame is asked for twice, as a pipe does when its
// destination says EAGAIN: the second answer must be the same, and count nothing again.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tapkit/bpf_records.h"

using namespace tapkit;

static std::string Walk(const uint8_t* data, size_t end) {
  std::string out = "{\"frames\":[";
  bpf::Counts counts;
  size_t at = 0;
  bool first = true;
  long malformedAt = -1;
  for (;;) {
    size_t start = 0, length = 0, next = 0;
    bpf::Step step = bpf::Next(data, end, &at, &start, &length, &next, &counts);
    if (step == bpf::Step::kEnd) break;
    if (step == bpf::Step::kMalformed) {
      malformedAt = static_cast<long>(at);
      break;
    }
    // Asked again (EAGAIN): the same frame, nothing counted twice.
    bpf::Counts before = counts;
    size_t at2 = at, start2 = 0, length2 = 0, next2 = 0;
    if (bpf::Next(data, end, &at2, &start2, &length2, &next2, &counts) != bpf::Step::kFrame || at2 != at ||
        start2 != start || length2 != length || next2 != next || counts.truncated != before.truncated ||
        counts.runts != before.runts) {
      fprintf(stderr, "a second Next() at %zu did not return the same frame\n", at);
      abort();
    }
    if (start + length > end || next <= at) {
      fprintf(stderr, "frame [%zu, +%zu) or next %zu is out of bounds\n", start, length, next);
      abort();
    }
    // Touch every byte of the frame: a bound error here is ASan's to report.
    volatile uint8_t sum = 0;
    for (size_t i = 0; i < length; i++) sum = sum + data[start + i];
    (void)sum;
    out += (first ? "" : ",") + std::string("[") + std::to_string(start) + "," + std::to_string(length) + "]";
    first = false;
    at = next;
  }
  out += "],\"truncated\":" + std::to_string(counts.truncated) + ",\"runts\":" + std::to_string(counts.runts) +
         ",\"malformedAt\":" + std::to_string(malformedAt) + "}";
  return out;
}

int main() {
  std::vector<uint8_t> input;
  uint8_t chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) input.insert(input.end(), chunk, chunk + n);
  size_t at = 0;
  while (at + 4 <= input.size()) {
    uint32_t length;
    memcpy(&length, input.data() + at, 4);
    at += 4;
    if (length > input.size() - at) return 2;
    // Exactly `length` bytes, aligned (malloc's alignment) and not (one byte in).
    uint8_t* aligned = static_cast<uint8_t*>(malloc(length == 0 ? 1 : length));
    uint8_t* shifted = static_cast<uint8_t*>(malloc(length + 1));
    memcpy(aligned, input.data() + at, length);
    memcpy(shifted + 1, input.data() + at, length);
    std::string a = Walk(aligned, length);
    std::string b = Walk(shifted + 1, length);
    if (a != b) {
      fprintf(stderr, "the walk depends on alignment:\n%s\n%s\n", a.c_str(), b.c_str());
      return 3;
    }
    printf("%s\n", a.c_str());
    free(aligned);
    free(shifted);
    at += length;
  }
  return at == input.size() ? 0 : 2;
}
