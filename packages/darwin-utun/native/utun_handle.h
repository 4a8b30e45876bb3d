// UtunHandle: one utun's kernel-control socket, polled on the environment's own loop.
#pragma once

#include "tapkit/handle.h"

namespace tapkit {

class UtunHandle : public FdHandle<UtunHandle> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit UtunHandle(const Napi::CallbackInfo& info);
  ~UtunHandle() override;

 private:
  friend class FdHandle<UtunHandle>;

  // JS methods of a utun's own (the rest are FdHandle's).
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value WriteBatch(const Napi::CallbackInfo& info);

  // FdHandle's hooks: a read is one datagram (4-byte family + packet), placed after a gap of
  // kGap free bytes (room for the shim's Ethernet header); datagram i lies at
  // [offsets_[2i], offsets_[2i + 1]).
  ssize_t ReadFrame(struct iovec iov[2]);
  size_t FrameStart(size_t used) const;
  void RecordFrame(uint32_t index, size_t start, size_t end) {
    offsets_[2 * index] = static_cast<uint32_t>(start);
    offsets_[2 * index + 1] = static_cast<uint32_t>(end);
  }
};

}  // namespace tapkit
