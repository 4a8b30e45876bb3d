// NdrvWriter: an AF_NDRV socket bound and connected to an interface; frames written to it go
// out of that interface (ndrv_output → ifnet_output_raw).
#pragma once

#include "tapkit/napi_config.h"

#include <string>

namespace tapkit {

class NdrvWriter : public Napi::ObjectWrap<NdrvWriter> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit NdrvWriter(const Napi::CallbackInfo& info);
  ~NdrvWriter() override;

 private:
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value WriteBatch(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);

  static void CleanupHook(void* arg);
  // 1: sent; 0: no buffer (ENOBUFS/EAGAIN), dropped; -errno: failed.
  int Send(const uint8_t* data, size_t length);
  void ReleaseOsResources();

  napi_env env_;
  std::string interface_;
  int fd_ = -1;
  bool hookAdded_ = false;
};

}  // namespace tapkit
