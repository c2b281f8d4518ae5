// Element types and devices, with their names for messages.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace lmlab {

// float32 is the training type; float64 exists on the CPU for gradient checks; int32 holds ids.
enum class DType { F32, F64, I32 };
enum class Device { CPU, CUDA };

inline size_t dtype_size(DType t) { return t == DType::F64 ? 8 : 4; }
inline bool is_float(DType t) { return t == DType::F32 || t == DType::F64; }

inline std::string to_string(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::F64: return "float64";
    case DType::I32: return "int32";
  }
  return "?";
}
inline std::string to_string(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

// The C++ type <-> DType mapping used by Tensor::data<T>().
template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::F32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::F64;
}
template <>
constexpr DType dtype_of<int32_t>() {
  return DType::I32;
}

}  // namespace lmlab
