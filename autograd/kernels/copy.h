// Raw-pointer kernels that move and fill memory: strided copies (contiguous(), copy_, concat),
// fills, random fills and dtype conversion. Shapes and strides are in elements.
#pragma once
#include <cstdint>

#include "autograd/types.h"

namespace lmlab::cpu {

// dst[idx . dst_strides] = src[idx . src_strides] for every index idx of `shape` (ndim dims).
template <class T>
void copy_strided(const T* src, const int64_t* src_strides, T* dst, const int64_t* dst_strides,
                  const int64_t* shape, int64_t ndim);
template <class T>
void fill(T* y, int64_t n, T value);
// y[i] = mean + std * N(0,1) drawn from counter (offset + i) of `seed` (see random.h).
template <class T>
void fill_normal(T* y, int64_t n, uint64_t seed, uint64_t offset, double mean, double std);
template <class T>
void fill_uniform(T* y, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi);
template <class From, class To>
void convert(const From* x, To* y, int64_t n);

}  // namespace lmlab::cpu

namespace lmlab::cuda {

// Same contract as the CPU version for elements of elem_size bytes: 4 (float32, int32) or 2
// (bfloat16).
void copy_strided(const void* src, const int64_t* src_strides, void* dst,
                  const int64_t* dst_strides, const int64_t* shape, int64_t ndim, size_t elem_size);
void fill(float* y, int64_t n, float value);
void fill(int32_t* y, int64_t n, int32_t value);
void fill(bf16* y, int64_t n, bf16 value);
// Contiguous dtype conversion for mixed precision: float32 -> bfloat16 rounds to nearest even
// (bitwise cpu::convert's), bfloat16 -> float32 is exact.
void convert(const float* x, bf16* y, int64_t n);
void convert(const bf16* x, float* y, int64_t n);
void fill_normal(float* y, int64_t n, uint64_t seed, uint64_t offset, double mean, double std);
void fill_uniform(float* y, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi);

}  // namespace lmlab::cuda
