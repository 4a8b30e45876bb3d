// TapHandle: one queue (fd) of a tap/tun device, polled on the environment's own loop.
#pragma once

#include "tapkit/handle.h"
#include "tapkit/pipe.h"

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace tapkit {

class TapHandle : public FdHandle<TapHandle> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit TapHandle(const Napi::CallbackInfo& info);
  ~TapHandle() override;

 private:
  friend class FdHandle<TapHandle>;

  // JS methods of a tap's own (the rest are FdHandle's).
  Napi::Value GetFlags(const Napi::CallbackInfo& info);
  Napi::Value GetOffloads(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value WriteBatch(const Napi::CallbackInfo& info);
  Napi::Value WriteSpans(const Napi::CallbackInfo& info);
  void PipeTo(const Napi::CallbackInfo& info);
  Napi::Value PipeCounts(const Napi::CallbackInfo& info);
  void SetFrameLimit(const Napi::CallbackInfo& info);

  // FdHandle's hooks: a read is one frame, and frames lie end to end in a slab, so offsets_
  // holds count + 1 boundaries (offsets_[0] = the first frame's start, offsets_[i + 1] = frame
  // i's end).
  ssize_t ReadFrame(struct iovec iov[2]);
  size_t FrameStart(size_t used) const { return used; }
  void RecordFrame(uint32_t index, size_t start, size_t end) {
    if (index == 0) offsets_[0] = static_cast<uint32_t>(start);
    offsets_[index + 1] = static_cast<uint32_t>(end);
  }
  bool Piping() const { return pipe_ != nullptr; }
  void Unlink();

  void StopPipe();
  void StartPipeThreads();

  int flags_ = 0;          // the device's flags after attaching (TUNGETIFF); 0 for an adopted fd
  unsigned offloads_ = 0;  // the TUN_F_* offloads set (TUNSETOFFLOAD)

  // Pipe: while pipe_ is set, a thread reads this fd and writes to target_'s (pipeThread_,
  // shared with target_ when it pipes back here); this handle's poll then leaves reading to it
  // (a poll woken for every frame would cost what the thread saves) and hears of a failed read
  // through Poll::pipeEnded. Both ends are open handles (held by JS until closed); closing
  // either stops its pipes' threads before its fd is closed.
  std::unique_ptr<PipeDirection> pipe_;
  std::shared_ptr<PipeThread> pipeThread_;
  TapHandle* target_ = nullptr;
  std::vector<TapHandle*> sources_;     // handles piping into this one
  PipeDirection::Counts pipeCounts_{};  // the latest pipe's, kept when it stops
  // The frames this handle takes (setFrameLimit: its port's MTU), checked by pipes into it.
  std::shared_ptr<FrameLimit> frameLimit_ = std::make_shared<FrameLimit>();
};

}  // namespace tapkit
