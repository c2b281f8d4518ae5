// Optimizer kernels on the GPU: multi-tensor AdamW (one launch for up to 48 parameters, one pass
// over p, g and the state), SGD-momentum (one thread per element), and the sum of squares and scale
// behind gradient clipping. The updates use round-to-nearest intrinsics (__fmul_rn, __fadd_rn,
// ...), which the compiler never fuses into FMAs, so each element follows cpu/optim.cpp's float
// operations one for one.
#include <algorithm>
#include <climits>
#include <cmath>

#include "autograd/kernels/cuda/common.cuh"
#include "autograd/kernels/optim.h"

namespace lmlab::cuda {

constexpr int64_t kSumBlock = 4096;  // elements per first-pass block of sum_squares

// The shared coefficients of one AdamW step, and each tensor's own (decay and the bias
// corrections depend on its weight decay and step count), all rounded to float once on the host.
struct AdamWShared {
  float b1, one_minus_b1, b2, one_minus_b2, eps;
};
struct AdamWEntry {
  float* p;
  const float* g;
  float* m;
  float* v;
  int64_t n;
  float decay, neg_step_size, bc2_sqrt;
};
constexpr int kAdamWMaxTensors = 48;  // per launch: the table stays well under 4 KiB of arguments
constexpr int64_t kAdamWChunk = 64 * 1024;  // elements per block
struct AdamWTable {
  AdamWEntry e[kAdamWMaxTensors];
  // tensor k owns blocks [first_block[k], first_block[k + 1])
  int32_t first_block[kAdamWMaxTensors + 1];
  int32_t count;
};

static_assert(sizeof(AdamWTable) + sizeof(AdamWShared) <= 4096, "kernel arguments over 4 KiB");

// Block b finds its tensor in the table (a scan of at most 48 entries in the parameter bank;
// __grid_constant__ lets the kernel index it without a per-thread copy to local memory) and
// updates chunk b - first_block[k] of it, one thread per element in turn.
__global__ void adamw_multi_kernel(const __grid_constant__ AdamWTable table, const AdamWShared s) {
  const int32_t b = int32_t(blockIdx.x);
  int k = 0;
  while (k + 1 < table.count && table.first_block[k + 1] <= b) ++k;
  const AdamWEntry t = table.e[k];
  const int64_t lo = int64_t(b - table.first_block[k]) * kAdamWChunk;
  const int64_t hi = lo + kAdamWChunk < t.n ? lo + kAdamWChunk : t.n;
  for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    const float gi = t.g[i];
    const float pi = __fmul_rn(t.p[i], t.decay);
    const float mi = __fadd_rn(__fmul_rn(t.m[i], s.b1), __fmul_rn(s.one_minus_b1, gi));
    const float vi =
        __fadd_rn(__fmul_rn(t.v[i], s.b2), __fmul_rn(__fmul_rn(s.one_minus_b2, gi), gi));
    const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), t.bc2_sqrt), s.eps);
    t.m[i] = mi;
    t.v[i] = vi;
    t.p[i] = __fadd_rn(pi, __fdiv_rn(__fmul_rn(t.neg_step_size, mi), denom));
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

// AdamW over many tensors: the table is passed by value as the kernel's argument (no copy to the
// device, no wait); a launch closes when the table is full. The scalars are formed in double and
// rounded once, as cpu::adamw_step does, so each element matches the CPU bit for bit.
void adamw_step(const std::vector<AdamWTensor>& tensors, double lr, double beta1, double beta2,
                double eps) {
  const AdamWShared shared{float(beta1), float(1 - beta1), float(beta2), float(1 - beta2),
                           float(eps)};
  AdamWTable table{};
  auto launch = [&] {
    if (table.count == 0) return;
    const int32_t blocks = table.first_block[table.count];
    adamw_multi_kernel<<<unsigned(blocks), kThreads, 0, stream()>>>(table, shared);
    CUDA_CHECK_LAUNCH("adamw_multi_kernel");
    table = AdamWTable{};
  };
  for (const AdamWTensor& x : tensors) {
    if (x.n == 0) continue;
    const int64_t chunks = (x.n + kAdamWChunk - 1) / kAdamWChunk;
    // Block indices are int32: a launch also closes before its blocks would pass 2^31 - 1.
    if (table.count == kAdamWMaxTensors ||
        int64_t(table.first_block[table.count]) + chunks > int64_t(INT32_MAX))
      launch();
    const double bias_correction1 = 1 - std::pow(beta1, double(x.t));
    const double bias_correction2 = 1 - std::pow(beta2, double(x.t));
    const float decay = float(1 - lr * x.weight_decay);
    const float neg_step_size = float(-(lr / bias_correction1));
    const float bc2_sqrt = float(std::sqrt(bias_correction2));
    table.e[table.count] = AdamWEntry{x.p, x.g, x.m, x.v, x.n, decay, neg_step_size, bc2_sqrt};
    table.first_block[table.count + 1] = int32_t(table.first_block[table.count] + chunks);
    ++table.count;
  }
  launch();
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
    sum_squares_blocks_kernel<<<unsigned(blocks), kThreads, 0, stream()>>>(x, n,
                                                                           partial.as<double>());
    CUDA_CHECK_LAUNCH("sum_squares_blocks_kernel");
    sum_partials_kernel<<<1, 1024, 0, stream()>>>(partial.as<double>(), blocks,
                                                  totals.as<double>() + k);
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
