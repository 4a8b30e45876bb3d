// Checking the arguments JS hands the addons: each failure is a TypeError/RangeError naming the
// option, thrown before any OS resource is taken.
#pragma once

#include "tapkit/napi_config.h"

#include <net/if.h>

#include <cstdint>
#include <string>

namespace tapkit {

inline Napi::Function FunctionOption(Napi::Object options, const char* key) {
  Napi::Value value = options.Get(key);
  if (!value.IsFunction()) {
    throw Napi::TypeError::New(options.Env(), std::string("options.") + key + " must be a function");
  }
  return value.As<Napi::Function>();
}

// An integer in [min, max] (doubles hold every integer the options use exactly).
inline double IntegerOption(Napi::Object options, const char* key, double min, double max) {
  Napi::Value value = options.Get(key);
  double number = value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : -1;
  if (!(number >= min && number <= max) || number != static_cast<double>(static_cast<int64_t>(number))) {
    throw Napi::RangeError::New(options.Env(), std::string("options.") + key + " must be an integer in " +
                                                   std::to_string(static_cast<int64_t>(min)) + "-" +
                                                   std::to_string(static_cast<int64_t>(max)));
  }
  return number;
}

inline uint32_t UintOption(Napi::Object options, const char* key, uint32_t min, uint32_t max) {
  return static_cast<uint32_t>(IntegerOption(options, key, min, max));
}

inline std::string StringOption(Napi::Object options, const char* key, const char* fallback) {
  Napi::Value value = options.Get(key);
  if (value.IsUndefined()) return fallback;
  if (!value.IsString()) {
    throw Napi::TypeError::New(options.Env(), std::string("options.") + key + " must be a string");
  }
  return value.As<Napi::String>();
}

// options.offsets: a Uint32Array of at least `elements` elements, where a batch's boundaries go.
inline Napi::Uint32Array OffsetsOption(Napi::Object options, size_t elements, const char* wanted) {
  Napi::Value offsets = options.Get("offsets");
  if (!offsets.IsTypedArray() || offsets.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array ||
      offsets.As<Napi::Uint32Array>().ElementLength() < elements) {
    throw Napi::TypeError::New(options.Env(), std::string("options.offsets must be a Uint32Array of ") + wanted);
  }
  return offsets.As<Napi::Uint32Array>();
}

// The bytes of a Uint8Array (or Buffer), with one N-API call; false for anything else. The
// write path uses this instead of node-addon-api's wrappers, which make four calls per frame.
inline bool Uint8Bytes(napi_env env, napi_value value, uint8_t** data, size_t* length) {
  napi_typedarray_type type;
  void* bytes = nullptr;
  if (napi_get_typedarray_info(env, value, &type, length, &bytes, nullptr, nullptr) != napi_ok) return false;
  if (type != napi_uint8_array) return false;
  *data = static_cast<uint8_t*>(bytes);
  return true;
}

// An interface name argument: a string of 1 to IFNAMSIZ - 1 bytes (0 with allowEmpty), no NUL.
inline std::string NameArg(const Napi::CallbackInfo& info, size_t index, bool allowEmpty = false) {
  if (!info[index].IsString()) throw Napi::TypeError::New(info.Env(), "an interface name must be a string");
  std::string name = info[index].As<Napi::String>();
  if ((name.empty() && !allowEmpty) || name.size() >= IFNAMSIZ || name.find('\0') != std::string::npos) {
    throw Napi::TypeError::New(info.Env(), "an interface name must be 1 to 15 bytes");
  }
  return name;
}

// An integer argument from 0 to `max`; `what` names it in the RangeError.
inline uint32_t UintArg(const Napi::CallbackInfo& info, size_t index, uint32_t max, const char* what) {
  double value = info[index].IsNumber() ? info[index].As<Napi::Number>().DoubleValue() : -1;
  if (!(value >= 0 && value <= max) || value != static_cast<uint32_t>(value)) {
    throw Napi::RangeError::New(info.Env(), std::string(what) + " must be an integer from 0 to " + std::to_string(max));
  }
  return static_cast<uint32_t>(value);
}

// An IP address as two arguments, family (4 or 6) at `index` and its bytes after it.
struct AddressArg {
  uint32_t family;
  size_t length;  // 4 or 16
  const uint8_t* bytes;
};

inline AddressArg AddressArgs(const Napi::CallbackInfo& info, size_t index) {
  Napi::Env env = info.Env();
  uint32_t family = info[index].IsNumber() ? info[index].As<Napi::Number>().Uint32Value() : 0;
  if (family != 4 && family != 6) throw Napi::TypeError::New(env, "family must be 4 or 6");
  size_t length = family == 4 ? 4 : 16;
  Napi::Value value = info[index + 1];
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      value.As<Napi::Uint8Array>().ElementLength() != length) {
    throw Napi::TypeError::New(env, "address must be a Uint8Array of 4 (IPv4) or 16 (IPv6) bytes");
  }
  return {family, length, value.As<Napi::Uint8Array>().Data()};
}

}  // namespace tapkit
