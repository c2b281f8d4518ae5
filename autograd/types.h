// Element types and devices, with their names for messages.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "autograd/kernels/host_device.h"

namespace lmlab {

// float32 is the training type; float64 exists on the CPU for gradient checks; int32 holds ids;
// bfloat16 is mixed precision's compute type (autograd/autocast.h): the casts, matmul and
// causal_attention take it, on both devices.
enum class DType { F32, F64, I32, BF16 };
enum class Device { CPU, CUDA };

inline size_t dtype_size(DType t) { return t == DType::F64 ? 8 : t == DType::BF16 ? 2 : 4; }
inline bool is_float(DType t) { return t != DType::I32; }

// bfloat16 (Google Brain): the top 16 bits of a float32, 8 exponent bits and 7 mantissa bits.
// From float: round to nearest, ties to even (as __float2bfloat16_rn on the GPU and PyTorch's
// .to(torch.bfloat16)); a NaN stays a (quiet) NaN. To float: exact. Layout-compatible with CUDA's
// __nv_bfloat16, so device kernels read the same buffers.
// The bits of a float32 and back, on the host and in device code.
LMLAB_HOST_DEVICE inline uint32_t float_bits(float f) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}
LMLAB_HOST_DEVICE inline float bits_float(uint32_t u) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

struct bf16 {
  uint16_t bits = 0;
  bf16() = default;
  LMLAB_HOST_DEVICE explicit bf16(float f) : bits(round(f)) {}
  LMLAB_HOST_DEVICE explicit operator float() const { return bits_float(uint32_t(bits) << 16); }
  static LMLAB_HOST_DEVICE uint16_t round(float f) {
    uint32_t u = float_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);  // NaN: keep quiet
    u += 0x7fffu + ((u >> 16) & 1u);  // ties to even; overflow carries into inf, as it should
    return uint16_t(u >> 16);
  }
};
static_assert(sizeof(bf16) == 2);

inline std::string to_string(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::F64: return "float64";
    case DType::I32: return "int32";
    case DType::BF16: return "bfloat16";
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
template <>
constexpr DType dtype_of<bf16>() {
  return DType::BF16;
}

}  // namespace lmlab
