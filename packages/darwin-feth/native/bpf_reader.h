// BpfReader: a BPF device bound to an interface, polled for readable on the environment's own
// event loop; each wake-up reads until EAGAIN (or a cap) and hands the reads to JS in one call.
#pragma once

#include "tapkit/napi_config.h"
#include "tapkit/pipe.h"
#include "tapkit/poll.h"

#include <cstdint>
#include <memory>
#include <string>

namespace tapkit {

class NdrvWriter;

class BpfReader : public Napi::ObjectWrap<BpfReader> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit BpfReader(const Napi::CallbackInfo& info);
  ~BpfReader() override;

 private:
  // The poll's lifecycle (closing at a worker's exit included) is the shared one: see poll.h.
  using Poll = LoopPoll<BpfReader>;
  friend Poll;

  Napi::Value GetBufferSize(const Napi::CallbackInfo& info);
  Napi::Value GetDevice(const Napi::CallbackInfo& info);
  void Resume(const Napi::CallbackInfo& info);
  void Pause(const Napi::CallbackInfo& info);
  void RefLoop(const Napi::CallbackInfo& info);
  void UnrefLoop(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);
  void PipeTo(const Napi::CallbackInfo& info);
  Napi::Value PipeCounts(const Napi::CallbackInfo& info);

 public:
  // Ends this reader's pipe (its thread joined), keeping its counts. Calls no JS; never throws.
  void StopPipe();

 private:
  friend class NdrvWriter;
  void HandlePoll(int status, int events);
  void OnPipeEnded();
  void UpdateLoopRef();
  void ReadBatch(Napi::Env env);
  void Fail(Napi::Env env, int err, const char* syscall);
  void SetPolling(Napi::Env env, bool on);
  void ReleaseOsResources();

  napi_env env_;
  std::string device_;
  std::string interface_;
  int fd_ = -1;
  Poll* poll_ = nullptr;
  uint32_t bufferSize_ = 0;  // what BIOCSBLEN granted: every read asks for exactly this much
  bool polling_ = false;
  bool failed_ = false;
  bool closed_ = false;
  bool held_ = false;  // the wrapper is referenced strongly while open
  bool refed_ = true;  // ref()/unref(): while piping, pipeEnded holds the loop instead of the poll

  // Pipe: while pipe_ is set, a thread of its own reads the fd (whole BPF buffers, split into
  // records) and sends each frame to target_'s NDRV socket; the poll is stopped meanwhile. One
  // thread per direction. The target stops this pipe before its socket closes.
  std::unique_ptr<PipeDirection> pipe_;
  std::unique_ptr<PipeThread> pipeThread_;
  NdrvWriter* target_ = nullptr;
  PipeDirection::Counts pipeCounts_{};  // the latest pipe's, kept when it stops

  // Reads land here back to back; a batch is copied once into an ArrayBuffer that JS owns.
  std::unique_ptr<uint8_t[]> batch_;
  size_t batchCapacity_ = 0;

  Napi::FunctionReference onRead_;
  Napi::FunctionReference onError_;
  std::unique_ptr<Napi::AsyncContext> async_;
};

}  // namespace tapkit
