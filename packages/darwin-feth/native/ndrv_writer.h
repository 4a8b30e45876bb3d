// NdrvWriter: an AF_NDRV socket bound and connected to an interface; frames written to it go
// out of that interface (ndrv_output → ifnet_output_raw).
#pragma once

#include "tapkit/napi_config.h"
#include "tapkit/pipe.h"

#include <memory>
#include <string>
#include <vector>

namespace tapkit {

class BpfReader;

// Marks NdrvWriter objects, so a BpfReader's pipeTo() can tell one from any other object.
constexpr napi_type_tag kNdrvWriterTag = {0x4e6472765772697aULL, 0x9c3f5e21a7b4d806ULL};

class NdrvWriter : public Napi::ObjectWrap<NdrvWriter> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit NdrvWriter(const Napi::CallbackInfo& info);
  ~NdrvWriter() override;

 private:
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value WriteBatch(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);
  void SetFrameLimit(const Napi::CallbackInfo& info);

  friend class BpfReader;

  static void CleanupHook(void* arg);
  // 1: sent; 0: no buffer (ENOBUFS/EAGAIN), dropped; -errno: failed.
  int Send(const uint8_t* data, size_t length);
  void ReleaseOsResources();

  napi_env env_;
  std::string interface_;
  int fd_ = -1;
  bool hookAdded_ = false;
  // The frames this socket takes (setFrameLimit: its port's MTU), checked by pipes into it.
  std::shared_ptr<FrameLimit> frameLimit_ = std::make_shared<FrameLimit>();
  std::vector<BpfReader*> sources_;  // readers piping into this socket: stopped before it closes
};

}  // namespace tapkit
