// Reductions over the middle axis of (outer, R, inner) on the CPU. Each output element is
// accumulated by one thread in index order: bitwise reproducible for any thread count.
#include "autograd/kernels/reduce.h"

#include <omp.h>

#include <vector>

#include "autograd/kernels/max_nan.h"

namespace lmlab::cpu {

static constexpr int64_t kParallelMin = 1 << 14;

template <class T>
void sum_dim(const T* x, T* y, int64_t outer, int64_t R, int64_t inner, double scale) {
  if (inner == 1) {
#pragma omp parallel for schedule(static) if (outer * R >= kParallelMin)
    for (int64_t o = 0; o < outer; ++o) {
      const T* row = x + o * R;
      double acc = 0;
      for (int64_t r = 0; r < R; ++r) acc += row[r];
      y[o] = T(acc * scale);
    }
    return;
  }
#pragma omp parallel for schedule(static) if (outer * R * inner >= kParallelMin)
  for (int64_t o = 0; o < outer; ++o) {
    std::vector<double> acc(inner, 0.0);  // walk rows contiguously, accumulate per column
    for (int64_t r = 0; r < R; ++r) {
      const T* row = x + (o * R + r) * inner;
      for (int64_t i = 0; i < inner; ++i) acc[i] += row[i];
    }
    for (int64_t i = 0; i < inner; ++i) y[o * inner + i] = T(acc[i] * scale);
  }
}

using kernels::is_max;
using kernels::max_nan;

template <class T>
void max_dim(const T* x, T* y, int64_t outer, int64_t R, int64_t inner) {
#pragma omp parallel for schedule(static) if (outer * R * inner >= kParallelMin)
  for (int64_t o = 0; o < outer; ++o) {
    T* out = y + o * inner;
    for (int64_t i = 0; i < inner; ++i) out[i] = x[o * R * inner + i];
    for (int64_t r = 1; r < R; ++r) {
      const T* row = x + (o * R + r) * inner;
      for (int64_t i = 0; i < inner; ++i) out[i] = max_nan(out[i], row[i]);
    }
  }
}

template <class T>
void max_dim_backward(const T* x, const T* y, const T* dy, T* dx, int64_t outer, int64_t R,
                      int64_t inner) {
#pragma omp parallel for schedule(static) if (outer * R * inner >= kParallelMin)
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const T m = y[o * inner + i];
      int64_t ties = 0;
      for (int64_t r = 0; r < R; ++r) ties += is_max(x[(o * R + r) * inner + i], m);
      const T g = dy[o * inner + i] / T(ties);
      for (int64_t r = 0; r < R; ++r) {
        const int64_t k = (o * R + r) * inner + i;
        dx[k] = is_max(x[k], m) ? g : T(0);
      }
    }
  }
}

template void sum_dim<float>(const float*, float*, int64_t, int64_t, int64_t, double);
template void sum_dim<double>(const double*, double*, int64_t, int64_t, int64_t, double);
template void max_dim<float>(const float*, float*, int64_t, int64_t, int64_t);
template void max_dim<double>(const double*, double*, int64_t, int64_t, int64_t);
template void max_dim_backward<float>(const float*, const float*, const float*, float*, int64_t,
                                      int64_t, int64_t);
template void max_dim_backward<double>(const double*, const double*, const double*, double*,
                                       int64_t, int64_t, int64_t);

}  // namespace lmlab::cpu
