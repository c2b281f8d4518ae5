// Strided copies, fills and random fills on the GPU: one thread per element (grid-stride loops);
// strided layouts are collapsed on the host first (common.cuh).
#include "autograd/kernels/copy.h"
#include "autograd/kernels/cuda/common.cuh"
#include "autograd/kernels/cuda/random.cuh"

namespace lmlab::cuda {

// Elements are moved as words of their size: uint32_t for float32 and int32, uint16_t for bf16.
template <class Word>
__global__ void copy_strided_kernel(const Word* src, Word* dst, Layout<2> l, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[2];
    layout_offsets(l, i, off);
    dst[off[1]] = src[off[0]];
  }
}

template <class T>
__global__ void fill_kernel(T* y, int64_t n, T value) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = value;
}

__global__ void to_bf16_kernel(const float* x, bf16* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = bf16(x[i]);
}

__global__ void from_bf16_kernel(const bf16* x, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = float(x[i]);
}

__global__ void fill_normal_kernel(float* y, int64_t n, uint64_t seed, uint64_t offset, double mean,
                                   double std) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = float(mean + std * normal01(random_bits(seed, offset + uint64_t(i))));
}

__global__ void fill_uniform_kernel(float* y, int64_t n, uint64_t seed, uint64_t offset, double lo,
                                    double hi) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float v = float(lo + (hi - lo) * uniform01(random_bits(seed, offset + uint64_t(i))));
    y[i] = v < float(hi) ? v : float(lo);  // rounding to float can reach hi: keep [lo, hi)
  }
}

// dst[idx . dst_strides] = src[idx . src_strides] over `shape` (cpu::copy_strided's contract).
void copy_strided(const void* src, const int64_t* src_strides, void* dst,
                  const int64_t* dst_strides, const int64_t* shape, int64_t ndim,
                  size_t elem_size) {
  int64_t n = 1;
  for (int64_t d = 0; d < ndim; ++d) n *= shape[d];
  if (n == 0) return;
  if (elem_size != 4 && elem_size != 2)
    throw Error("[copy] no GPU copy for " + std::to_string(elem_size) + "-byte elements");
  const int64_t* const strides[2] = {src_strides, dst_strides};
  const Layout<2> l = make_layout(shape, ndim, strides, "copy");
  if (elem_size == 4)
    copy_strided_kernel<<<grid_for(n), kThreads, 0, stream()>>>(static_cast<const uint32_t*>(src),
                                                                static_cast<uint32_t*>(dst), l, n);
  else
    copy_strided_kernel<<<grid_for(n), kThreads, 0, stream()>>>(static_cast<const uint16_t*>(src),
                                                                static_cast<uint16_t*>(dst), l, n);
  CUDA_CHECK_LAUNCH("copy_strided_kernel");
}

void fill(float* y, int64_t n, float value) {
  if (n == 0) return;
  fill_kernel<float><<<grid_for(n), kThreads, 0, stream()>>>(y, n, value);
  CUDA_CHECK_LAUNCH("fill_kernel<float>");
}

void fill(int32_t* y, int64_t n, int32_t value) {
  if (n == 0) return;
  fill_kernel<int32_t><<<grid_for(n), kThreads, 0, stream()>>>(y, n, value);
  CUDA_CHECK_LAUNCH("fill_kernel<int32_t>");
}

void fill(bf16* y, int64_t n, bf16 value) {
  if (n == 0) return;
  fill_kernel<bf16><<<grid_for(n), kThreads, 0, stream()>>>(y, n, value);
  CUDA_CHECK_LAUNCH("fill_kernel<bf16>");
}

void convert(const float* x, bf16* y, int64_t n) {
  if (n == 0) return;
  to_bf16_kernel<<<grid_for(n), kThreads, 0, stream()>>>(x, y, n);
  CUDA_CHECK_LAUNCH("to_bf16_kernel");
}

void convert(const bf16* x, float* y, int64_t n) {
  if (n == 0) return;
  from_bf16_kernel<<<grid_for(n), kThreads, 0, stream()>>>(x, y, n);
  CUDA_CHECK_LAUNCH("from_bf16_kernel");
}

void fill_normal(float* y, int64_t n, uint64_t seed, uint64_t offset, double mean, double std) {
  if (n == 0) return;
  fill_normal_kernel<<<grid_for(n), kThreads, 0, stream()>>>(y, n, seed, offset, mean, std);
  CUDA_CHECK_LAUNCH("fill_normal_kernel");
}

void fill_uniform(float* y, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi) {
  if (n == 0) return;
  fill_uniform_kernel<<<grid_for(n), kThreads, 0, stream()>>>(y, n, seed, offset, lo, hi);
  CUDA_CHECK_LAUNCH("fill_uniform_kernel");
}

}  // namespace lmlab::cuda
