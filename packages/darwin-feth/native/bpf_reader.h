// BpfReader: a BPF device bound to an interface, polled for readable on the environment's own
// event loop (FdHandle's); each wake-up reads until EAGAIN (or a cap) and hands the reads to JS
// in one call, as BPF buffers of records (split in TypeScript), not frame by frame.
#pragma once

#include "tapkit/handle.h"
#include "tapkit/pipe.h"

#include <errno.h>

#include <cstdint>
#include <memory>
#include <string>

namespace tapkit {

class NdrvWriter;

class BpfReader : public FdHandle<BpfReader> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit BpfReader(const Napi::CallbackInfo& info);
  ~BpfReader() override;

  // Ends this reader's pipe (its thread joined), keeping its counts. Calls no JS; never throws.
  void StopPipe();

 private:
  // The poll, pause/resume, ref/unref, close and the error path are FdHandle's; these are the
  // hooks it calls.
  friend class FdHandle<BpfReader>;
  friend class NdrvWriter;
  void OnReadable(Napi::Env env);
  bool Piping() const { return pipe_ != nullptr; }
  void Unlink() { StopPipe(); }
  // The poll or a pipe's thread saw the end and a read says no more: the interface is gone.
  int PollError(int status) const { return ENXIO; }

  Napi::Value GetBufferSize(const Napi::CallbackInfo& info);
  Napi::Value GetDevice(const Napi::CallbackInfo& info);
  void PipeTo(const Napi::CallbackInfo& info);
  Napi::Value PipeCounts(const Napi::CallbackInfo& info);

  std::string device_;       // /dev/bpfN
  uint32_t bufferSize_ = 0;  // what BIOCSBLEN granted: every read asks for exactly this much
  // Reads land back to back in spill_ (kReadsPerBatch buffers); a batch is copied once into an
  // ArrayBuffer that JS owns. spillBytes_ is one read's size, what the error path reads.
  size_t batchCapacity_ = 0;

  // Pipe: while pipe_ is set, a thread of its own reads the fd (whole BPF buffers, split into
  // records) and sends each frame to target_'s NDRV socket; the poll is stopped meanwhile. One
  // thread per direction. The target stops this pipe before its socket closes.
  std::unique_ptr<PipeDirection> pipe_;
  std::unique_ptr<PipeThread> pipeThread_;
  NdrvWriter* target_ = nullptr;
  PipeDirection::Counts pipeCounts_{};  // the latest pipe's, kept when it stops
};

}  // namespace tapkit
