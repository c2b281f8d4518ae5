// Optimizer kernels on the CPU: fused AdamW and SGD-momentum updates (one pass over p, g and the
// state), and the deterministic sum of squares and scale behind gradient clipping.
#include "autograd/kernels/optim.h"

#include <omp.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <vector>

namespace lmlab::cpu {

static constexpr int64_t kParallelMin = 1 << 14;
static constexpr int64_t kSumBlock = 1 << 12;  // fixed block: the sum's order ignores thread count

template <class T>
void adamw_step(T* p, const T* g, T* m, T* v, int64_t n, double lr, double beta1, double beta2,
                double eps, double weight_decay, int64_t t) {
  assert(t >= 1);
  // Scalars as torch.optim.AdamW (single-tensor path) forms them: in double, rounded once to T.
  const double bias_correction1 = 1 - std::pow(beta1, double(t));
  const double bias_correction2 = 1 - std::pow(beta2, double(t));
  const T decay = T(1 - lr * weight_decay);
  const T b1 = T(beta1), one_minus_b1 = T(1 - beta1);
  const T b2 = T(beta2), one_minus_b2 = T(1 - beta2);
  const T neg_step_size = T(-(lr / bias_correction1));
  const T bc2_sqrt = T(std::sqrt(bias_correction2));
  const T e = T(eps);
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const T gi = g[i];
    const T pi = p[i] * decay;
    const T mi = m[i] * b1 + one_minus_b1 * gi;
    const T vi = v[i] * b2 + (one_minus_b2 * gi) * gi;
    const T denom = std::sqrt(vi) / bc2_sqrt + e;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi + (neg_step_size * mi) / denom;  // addcdiv: p + (value * m) / denom
  }
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

template <class T>
double sum_squares(const T* x, int64_t n) {
  const int64_t blocks = (n + kSumBlock - 1) / kSumBlock;
  std::vector<double> partial(size_t(blocks), 0.0);
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t lo = b * kSumBlock, hi = std::min(n, lo + kSumBlock);
    double acc = 0;
    for (int64_t i = lo; i < hi; ++i) acc += double(x[i]) * double(x[i]);
    partial[size_t(b)] = acc;
  }
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
