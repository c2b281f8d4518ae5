// Optimizer kernels on the CPU: fused AdamW and SGD-momentum updates (one pass over p, g and the
// state), and the deterministic sum of squares and scale behind gradient clipping. The loops
// have AVX-512 clones (avx512_clone.h).
#include "autograd/kernels/optim.h"

#include <omp.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <vector>

#include "autograd/kernels/cpu/avx512_clone.h"

namespace lmlab::cpu {

static constexpr int64_t kParallelMin = 1 << 14;
static constexpr int64_t kSumBlock = 1 << 12;  // fixed block: the sum's order ignores thread count
static constexpr int64_t kChunk = 1 << 12;     // elements per OpenMP chunk of an update

// AdamW's scalars as torch.optim.AdamW (single-tensor path) forms them: in double, rounded once
// to T.
template <class T>
struct AdamWScalars {
  T decay, b1, one_minus_b1, b2, one_minus_b2, neg_step_size, bc2_sqrt, eps;
};

template <class T>
LMLAB_AVX512_CLONE static void adamw_chunk(T* p, const T* g, T* m, T* v, int64_t lo, int64_t hi,
                                           AdamWScalars<T> k) {
#pragma omp simd
  for (int64_t i = lo; i < hi; ++i) {
    const T gi = g[i];
    const T pi = p[i] * k.decay;
    const T mi = m[i] * k.b1 + k.one_minus_b1 * gi;
    const T vi = v[i] * k.b2 + (k.one_minus_b2 * gi) * gi;
    const T denom = std::sqrt(vi) / k.bc2_sqrt + k.eps;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi + (k.neg_step_size * mi) / denom;  // addcdiv: p + (value * m) / denom
  }
}

template <class T>
void adamw_step(T* p, const T* g, T* m, T* v, int64_t n, double lr, double beta1, double beta2,
                double eps, double weight_decay, int64_t t) {
  assert(t >= 1);
  const double bias_correction1 = 1 - std::pow(beta1, double(t));
  const double bias_correction2 = 1 - std::pow(beta2, double(t));
  const AdamWScalars<T> k{T(1 - lr * weight_decay),
                          T(beta1),
                          T(1 - beta1),
                          T(beta2),
                          T(1 - beta2),
                          T(-(lr / bias_correction1)),
                          T(std::sqrt(bias_correction2)),
                          T(eps)};
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t c = 0; c < chunks; ++c)
    adamw_chunk(p, g, m, v, c * kChunk, std::min(n, (c + 1) * kChunk), k);
}

template <class T>
void sgd_step(T* p, const T* g, T* buf, int64_t n, double lr, double momentum,
              double weight_decay) {
  const T decay = T(1 - lr * weight_decay);
  const T mu = T(momentum);
  const T neg_lr = T(-lr);
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const T b = buf[i] * mu + g[i];
    buf[i] = b;
    p[i] = p[i] * decay + neg_lr * b;
  }
}

// The sum of squares of x[lo .. hi) in kLanes fixed accumulators (element i goes to i % kLanes),
// combined in order: vectorised, and the same bits for AVX2 and AVX-512 code.
template <class T>
LMLAB_AVX512_CLONE static double sum_squares_block(const T* x, int64_t lo, int64_t hi) {
  constexpr int64_t kLanes = 16;
  double acc[kLanes] = {};
  int64_t i = lo;
  for (; i + kLanes <= hi; i += kLanes) {
#pragma omp simd
    for (int64_t j = 0; j < kLanes; ++j) acc[j] += double(x[i + j]) * double(x[i + j]);
  }
  for (int64_t j = 0; i < hi; ++i, ++j) acc[j] += double(x[i]) * double(x[i]);
  double total = 0;
  for (int64_t j = 0; j < kLanes; ++j) total += acc[j];
  return total;
}

template <class T>
double sum_squares(const T* x, int64_t n) {
  const int64_t blocks = (n + kSumBlock - 1) / kSumBlock;
  std::vector<double> partial(size_t(blocks), 0.0);
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t b = 0; b < blocks; ++b)
    partial[size_t(b)] = sum_squares_block(x, b * kSumBlock, std::min(n, (b + 1) * kSumBlock));
  double total = 0;
  for (double s : partial) total += s;
  return total;
}

template <class T>
void scale(T* x, int64_t n, double s) {
  const T c = T(s);
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) x[i] *= c;
}

template void adamw_step<float>(float*, const float*, float*, float*, int64_t, double, double,
                                double, double, double, int64_t);
template void adamw_step<double>(double*, const double*, double*, double*, int64_t, double, double,
                                 double, double, double, int64_t);
template void sgd_step<float>(float*, const float*, float*, int64_t, double, double, double);
template void sgd_step<double>(double*, const double*, double*, int64_t, double, double, double);
template double sum_squares<float>(const float*, int64_t);
template double sum_squares<double>(const double*, int64_t);
template void scale<float>(float*, int64_t, double);
template void scale<double>(double*, int64_t, double);

}  // namespace lmlab::cpu
