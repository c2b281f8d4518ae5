// Raw-pointer kernels for indexing: embedding gather / scatter-add, masked fill and dropout masks.
#pragma once
#include <cstdint>

namespace lmlab::cpu {

// out[n, :] = weight[ids[n], :] for n < N; ids already range-checked.
template <class T>
void embedding_forward(const T* weight, const int32_t* ids, T* out, int64_t N, int64_t C);
// dweight[ids[n], :] += dout[n, :] (sequential over n: deterministic for repeated ids).
template <class T>
void embedding_backward(const T* dout, const int32_t* ids, T* dweight, int64_t N, int64_t C);
// y = mask ? value : x, with x contiguous and the int32 mask read through broadcast strides.
template <class T>
void masked_fill(const T* x, const int32_t* mask, const int64_t* mask_strides, T value, T* y,
                 const int64_t* shape, int64_t ndim);
// mask[i] = (uniform(seed, offset + i) >= p) / (1 - p): the keep-and-rescale factor of dropout.
template <class T>
void dropout_mask(T* mask, int64_t n, double p, uint64_t seed, uint64_t offset);

}  // namespace lmlab::cpu

namespace lmlab::cuda {

void embedding_forward(const float* weight, const int32_t* ids, float* out, int64_t N, int64_t C);
void embedding_backward(const float* dout, const int32_t* ids, float* dweight, int64_t N,
                        int64_t C);
void masked_fill(const float* x, const int32_t* mask, const int64_t* mask_strides, float value,
                 float* y, const int64_t* shape, int64_t ndim);
void dropout_mask(float* mask, int64_t n, double p, uint64_t seed, uint64_t offset);

}  // namespace lmlab::cuda
