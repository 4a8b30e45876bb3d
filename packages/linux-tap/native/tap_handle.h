// TapHandle: one queue (fd) of a tap/tun device, polled on the environment's own loop.
#pragma once

#include "tapkit/napi_config.h"
#include "pipe.h"
#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace tapkit {

class TapHandle : public Napi::ObjectWrap<TapHandle> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit TapHandle(const Napi::CallbackInfo& info);
  ~TapHandle() override;

 private:
  // libuv can still hold the poll handle after this object is gone (uv_close completes on a
  // later loop turn), so it lives in its own allocation, freed by the close callback, and
  // points back here only while open. The allocation also holds the environment's async
  // cleanup hook, removed only once the handle has closed: Node then keeps turning the loop
  // at the environment's exit until the close callback has run. (With a plain cleanup hook it
  // did not wait: a worker's environment was freed and this addon unloaded with the close
  // still pending, and libuv then called the close callback in unmapped code: a segfault.)
  // pipeEnded, signalled by a pipe's thread whose read failed (the interface was deleted),
  // runs the same error path on the loop; it shares the allocation and is closed with it.
  struct Poll {
    uv_poll_t handle;
    uv_async_t pipeEnded;
    TapHandle* owner;
    napi_async_cleanup_hook_handle hook;
    int open;  // libuv handles not yet closed: the allocation goes with the last
  };

  // JS methods.
  Napi::Value GetName(const Napi::CallbackInfo& info);
  Napi::Value GetFlags(const Napi::CallbackInfo& info);
  Napi::Value GetOffloads(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value WriteBatch(const Napi::CallbackInfo& info);
  Napi::Value WriteSpans(const Napi::CallbackInfo& info);
  void PipeTo(const Napi::CallbackInfo& info);
  Napi::Value PipeCounts(const Napi::CallbackInfo& info);
  void Resume(const Napi::CallbackInfo& info);
  void Pause(const Napi::CallbackInfo& info);
  void RefLoop(const Napi::CallbackInfo& info);
  void UnrefLoop(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnClosed(uv_handle_t* handle);
  static void OnPipeEnded(uv_async_t* async);
  static void CloseHandles(Poll* poll);
  static void OnEnvironmentExit(napi_async_cleanup_hook_handle hook, void* arg);
  void HandlePoll(int status, int events);
  void ReadFrames(Napi::Env env);
  void Deliver(Napi::Env env);
  void SetSlab(Napi::ArrayBuffer slab);
  Napi::ArrayBuffer NewSlab(Napi::Env env, size_t size);
  void DropSlab();
  void Unlink();
  void StopPipe();
  void StartPipeThreads();
  void Send(Napi::Env env, const uint8_t* data, size_t length);
  void FlushQueue(Napi::Env env);
  void ReportError(Napi::Env env, int err, const char* syscall);
  void UpdatePoll();
  void UpdateLoopRef();
  void ReleaseOsResources();
  void ReleaseJsReferences();

  napi_env env_;
  std::string name_;
  int flags_ = 0;         // the device's flags after attaching (TUNGETIFF); 0 for an adopted fd
  unsigned offloads_ = 0;  // the TUN_F_* offloads set (TUNSETOFFLOAD)
  int fd_ = -1;
  Poll* poll_ = nullptr;
  int pollEvents_ = 0;
  bool reading_ = false;
  bool failed_ = false;      // the fd reported an error: poll no more
  bool closed_ = false;
  bool openRef_ = false;     // the wrapper is held strongly while open
  bool loopRef_ = true;      // the handle holds the event loop (ref()), unless unref()ed

  // Receive: frames are read straight into a slab (an ArrayBuffer JS will own) one after the
  // other; a batch is handed to JS as (slab, count) with the frame boundaries in offsets_.
  // Memory once handed to JS is never written again.
  uint32_t batchFrames_ = 0;
  size_t frameReserve_ = 0;  // room needed before a read: the largest frame expected
  size_t slabBytes_ = 0;
  Napi::Reference<Napi::ArrayBuffer> slab_;
  uint8_t* slabData_ = nullptr;
  size_t slabSize_ = 0;
  size_t slabUsed_ = 0;
  Napi::Reference<Napi::Uint32Array> offsetsRef_;
  uint32_t* offsets_ = nullptr;  // offsets_[0] = first frame's start, offsets_[i + 1] = frame i's end
  uint32_t pending_ = 0;         // frames read but not yet handed to JS
  std::unique_ptr<uint8_t[]> spill_;

  // Send: frames the kernel would not take yet (EAGAIN), copied, in order.
  std::deque<std::vector<uint8_t>> queue_;
  size_t queuedBytes_ = 0;

  // Pipe: while pipe_ is set, a thread reads this fd and writes to target_'s (pipeThread_,
  // shared with target_ when it pipes back here); this handle's poll then leaves reading to it
  // (a poll woken for every frame would cost what the thread saves) and hears of a failed read
  // through Poll::pipeEnded. Both ends are open handles (held by JS until closed, see
  // openRef_); closing either stops its pipes' threads before its fd is closed.
  std::unique_ptr<PipeDirection> pipe_;
  std::shared_ptr<PipeThread> pipeThread_;
  TapHandle* target_ = nullptr;
  std::vector<TapHandle*> sources_;  // handles piping into this one
  PipeDirection::Counts pipeCounts_{};  // the latest pipe's, kept when it stops

  Napi::FunctionReference onRead_;
  Napi::FunctionReference onDrain_;
  Napi::FunctionReference onError_;
  std::unique_ptr<Napi::AsyncContext> async_;
};

}  // namespace tapkit
