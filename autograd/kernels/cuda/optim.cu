// Optimizer kernels on the GPU: fused AdamW and SGD-momentum (one thread per element, one pass
// over p, g and the state), and the sum of squares and scale behind gradient clipping. The
// updates use round-to-nearest intrinsics (__fmul_rn, __fadd_rn, ...), which the compiler never
// fuses into FMAs, so each element follows cpu/optim.cpp's float operations one for one.
#include <algorithm>
#include <cmath>

#include "autograd/kernels/cuda/common.cuh"
#include "autograd/kernels/optim.h"

namespace lmlab::cuda {

constexpr int64_t kSumBlock = 4096;  // elements per first-pass block of sum_squares

struct AdamWScalars {
  float decay, b1, one_minus_b1, b2, one_minus_b2, neg_step_size, bc2_sqrt, eps;
};

__global__ void adamw_kernel(float* p, const float* g, float* m, float* v, int64_t n,
                             AdamWScalars s) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float gi = g[i];
    const float pi = __fmul_rn(p[i], s.decay);
    const float mi = __fadd_rn(__fmul_rn(m[i], s.b1), __fmul_rn(s.one_minus_b1, gi));
    const float vi = __fadd_rn(__fmul_rn(v[i], s.b2), __fmul_rn(__fmul_rn(s.one_minus_b2, gi), gi));
    const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), s.bc2_sqrt), s.eps);
    m[i] = mi;
    v[i] = vi;
    p[i] = __fadd_rn(pi, __fdiv_rn(__fmul_rn(s.neg_step_size, mi), denom));
  }
}

__global__ void sgd_kernel(float* p, const float* g, float* buf, int64_t n, float decay, float mu,
                           float neg_lr) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float b = __fadd_rn(__fmul_rn(buf[i], mu), g[i]);
    buf[i] = b;
    p[i] = __fadd_rn(__fmul_rn(p[i], decay), __fmul_rn(neg_lr, b));
  }
}

// partial[b] = sum of x^2 over block b's kSumBlock elements (double).
__global__ void sum_squares_blocks_kernel(const float* x, int64_t n, double* partial) {
  const int64_t lo = blockIdx.x * kSumBlock;
  const int64_t hi = lo + kSumBlock < n ? lo + kSumBlock : n;
  double acc = 0;
  for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) acc += double(x[i]) * double(x[i]);
  acc = block_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

// out[0] = sum of partial[0..blocks), by one block.
__global__ void sum_partials_kernel(const double* partial, int64_t blocks, double* out) {
  double acc = 0;
  for (int64_t b = threadIdx.x; b < blocks; b += blockDim.x) acc += partial[b];
  acc = block_sum(acc);
  if (threadIdx.x == 0) out[0] = acc;
}

__global__ void scale_kernel(float* x, int64_t n, float c) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    x[i] = __fmul_rn(x[i], c);
}

// One AdamW step; the scalars are formed in double and rounded once, as cpu::adamw_step does.
void adamw_step(float* p, const float* g, float* m, float* v, int64_t n, double lr, double beta1,
                double beta2, double eps, double weight_decay, int64_t t) {
  if (n == 0) return;
  const double bias_correction1 = 1 - std::pow(beta1, double(t));
  const double bias_correction2 = 1 - std::pow(beta2, double(t));
  const AdamWScalars s{float(1 - lr * weight_decay), float(beta1),
                       float(1 - beta1),             float(beta2),
                       float(1 - beta2),             float(-(lr / bias_correction1)),
                       float(std::sqrt(bias_correction2)), float(eps)};
  adamw_kernel<<<grid_for(n), kThreads, 0, stream()>>>(p, g, m, v, n, s);
  CUDA_CHECK_LAUNCH("adamw_kernel");
}

// p *= 1 - lr wd;  buf = momentum buf + g;  p -= lr buf
void sgd_step(float* p, const float* g, float* buf, int64_t n, double lr, double momentum,
              double weight_decay) {
  if (n == 0) return;
  sgd_kernel<<<grid_for(n), kThreads, 0, stream()>>>(p, g, buf, n, float(1 - lr * weight_decay),
                                                     float(momentum), float(-lr));
  CUDA_CHECK_LAUNCH("sgd_kernel");
}

// sum_i x[i]^2 in double for each tensor: fixed blocks, then the block sums by one block, each
// total into its own slot; one copy back at the end (this waits for the stream once).
std::vector<double> sum_squares_each(const std::vector<std::pair<const float*, int64_t>>& xs) {
  std::vector<double> out(xs.size(), 0.0);
  int64_t max_blocks = 0;
  for (const auto& [x, n] : xs) max_blocks = std::max(max_blocks, (n + kSumBlock - 1) / kSumBlock);
  if (max_blocks == 0) return out;
  // One partial buffer serves every tensor in turn: the kernels run in order on the one stream.
  Scratch partial(size_t(max_blocks) * sizeof(double)), totals(xs.size() * sizeof(double));
  CUDA_CHECK(cudaMemsetAsync(totals.as<double>(), 0, xs.size() * sizeof(double), stream()));
  for (size_t k = 0; k < xs.size(); ++k) {
    const auto [x, n] = xs[k];
    if (n == 0) continue;
    const int64_t blocks = (n + kSumBlock - 1) / kSumBlock;
    sum_squares_blocks_kernel<<<unsigned(blocks), kThreads, 0, stream()>>>(x, n, partial.as<double>());
    CUDA_CHECK_LAUNCH("sum_squares_blocks_kernel");
    sum_partials_kernel<<<1, 1024, 0, stream()>>>(partial.as<double>(), blocks, totals.as<double>() + k);
    CUDA_CHECK_LAUNCH("sum_partials_kernel");
  }
  copy_device_to_host(out.data(), totals.as<double>(), xs.size() * sizeof(double));
  return out;
}

// x[i] *= s (s rounded to float once).
void scale(float* x, int64_t n, double s) {
  if (n == 0) return;
  scale_kernel<<<grid_for(n), kThreads, 0, stream()>>>(x, n, float(s));
  CUDA_CHECK_LAUNCH("scale_kernel");
}

}  // namespace lmlab::cuda
