// Row-wise softmax, log-softmax and fused softmax-cross-entropy on the CPU, over contiguous
// (rows, C) buffers. One row per loop iteration; each row is handled by one thread with sums
// accumulated in double in index order, so results are bitwise identical for any thread count.
#include "autograd/kernels/softmax.h"

#include <omp.h>

#include <cassert>
#include <cmath>

#include "autograd/kernels/cpu/avx512_clone.h"
#include "autograd/kernels/cpu/fast_math.h"

namespace lmlab::cpu {

static constexpr int64_t kParallelMin = 1 << 14;

template <class T>
static T row_max(const T* x, int64_t C) {
  T m = x[0];
  for (int64_t i = 1; i < C; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

// y_i = exp(x_i - max) / sum_j exp(x_j - max)
template <class T>
void softmax_forward(const T* x, T* y, int64_t rows, int64_t C) {
  assert(C > 0);
#pragma omp parallel for schedule(static) if (rows * C >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * C;
    T* yr = y + r * C;
    const T m = row_max(xr, C);
    double s = 0;
    for (int64_t i = 0; i < C; ++i) {
      yr[i] = std::exp(xr[i] - m);
      s += double(yr[i]);
    }
    const T inv = T(1.0 / s);
    for (int64_t i = 0; i < C; ++i) yr[i] *= inv;
  }
}

// y = softmax(x): dx_i = sum_j dy_j dy_j/dx_i = sum_j dy_j y_j (delta_ij - y_i)
//   term 1: y_i dy_i            term 2: -y_i sum_j dy_j y_j
template <class T>
void softmax_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t C) {
#pragma omp parallel for schedule(static) if (rows * C >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* yr = y + r * C;
    const T* dyr = dy + r * C;
    T* dxr = dx + r * C;
    double dot = 0;
    for (int64_t i = 0; i < C; ++i) dot += double(dyr[i]) * double(yr[i]);
    const T d = T(dot);
    for (int64_t i = 0; i < C; ++i) dxr[i] = yr[i] * (dyr[i] - d);
  }
}

// y_i = x_i - logsumexp(x) = (x_i - max) - log(sum_j exp(x_j - max))
template <class T>
void log_softmax_forward(const T* x, T* y, int64_t rows, int64_t C) {
  assert(C > 0);
#pragma omp parallel for schedule(static) if (rows * C >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * C;
    T* yr = y + r * C;
    const T m = row_max(xr, C);
    double s = 0;
    for (int64_t i = 0; i < C; ++i) s += std::exp(double(xr[i] - m));
    const T log_s = T(std::log(s));
    for (int64_t i = 0; i < C; ++i) yr[i] = (xr[i] - m) - log_s;
  }
}

// y = log_softmax(x): dy_j/dx_i = delta_ij - softmax_i, softmax_i = exp(y_i)
//   term 1: dy_i                term 2: -exp(y_i) sum_j dy_j
template <class T>
void log_softmax_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t C) {
#pragma omp parallel for schedule(static) if (rows * C >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* yr = y + r * C;
    const T* dyr = dy + r * C;
    T* dxr = dx + r * C;
    double s = 0;
    for (int64_t i = 0; i < C; ++i) s += double(dyr[i]);
    const T st = T(s);
    for (int64_t i = 0; i < C; ++i) dxr[i] = dyr[i] - std::exp(yr[i]) * st;
  }
}

// sum_i e^(z_i - m) over a row of V logits, in double; each term is also written to e[i] when
// kStore. float rows use fast_math's vectorised exp (over the whole range, so far-off logits still
// give 0), with an AVX-512 clone (avx512_clone.h); the cross-entropy's libm exp was 3% of a small
// training step. The sum runs in kLanes fixed accumulators (term i goes to i % kLanes), so AVX2
// and AVX-512 code give the same bits.
template <bool kStore, class T>
LMLAB_AVX512_CLONE static double exp_terms(const T* z, T m, T* e, int64_t V) {
  constexpr int64_t kLanes = 16;
  double acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= V; i += kLanes) {
#pragma omp simd
    for (int64_t j = 0; j < kLanes; ++j) {
      const T t = fast_exp_full(T(z[i + j] - m));
      if constexpr (kStore) e[i + j] = t;
      acc[j] += double(t);
    }
  }
  for (int64_t j = 0; i < V; ++i, ++j) {
    const T t = fast_exp_full(T(z[i] - m));
    if constexpr (kStore) e[i] = t;
    acc[j] += double(t);
  }
  double s = 0;
  for (int64_t j = 0; j < kLanes; ++j) s += acc[j];
  return s;
}

// loss_r = logsumexp(z_r) - z_r[t_r]; ignored rows get loss 0 and lse 0 (backward skips them).
template <class T>
void cross_entropy_forward(const T* logits, const int32_t* targets, T* loss, T* lse, int64_t rows,
                           int64_t V, int32_t ignore_index) {
  assert(V > 0);
#pragma omp parallel for schedule(static) if (rows * V >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t t = targets[r];
    if (t == ignore_index) {
      loss[r] = T(0);
      lse[r] = T(0);
      continue;
    }
    assert(t >= 0 && t < V);
    const T* zr = logits + r * V;
    // loss = log(sum_i exp(z_i - m)) - (z_t - m): never forms m + log(sum) first, which at |m| of
    // 1e8 (float) or 1e16 (double) would round log(sum) away (all-equal rows would get loss 0).
    const T m = row_max(zr, V);
    const double s = exp_terms<false>(zr, m, static_cast<T*>(nullptr), V);
    lse[r] = T(double(m) + std::log(s));
    loss[r] = T(std::log(s) - double(zr[t] - m));
  }
}

// loss = scale * sum_r (lse_r - z_r[t_r]): d loss / d z_ri = scale * (softmax(z_r)_i - [i == t_r])
//   term 1: scale * exp(z_ri - m_r) / sum_j exp(z_rj - m_r)     term 2: -scale at the target class
// The softmax is recomputed from the row max rather than read as exp(z - lse): at huge |z| the
// saved lse has lost log(sum) to rounding (see the forward). `lse` is kept for the CUDA twin.
template <class T>
void cross_entropy_backward(const T* logits, const T* /*lse*/, const int32_t* targets, double scale,
                            T* dlogits, int64_t rows, int64_t V, int32_t ignore_index) {
  const T s = T(scale);
#pragma omp parallel for schedule(static) if (rows * V >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t t = targets[r];
    T* dr = dlogits + r * V;
    if (t == ignore_index) {
      for (int64_t i = 0; i < V; ++i) dr[i] = T(0);
      continue;
    }
    assert(t >= 0 && t < V);
    const T* zr = logits + r * V;
    const double sum = exp_terms<true>(zr, row_max(zr, V), dr, V);
    const T k = T(scale / sum);
#pragma omp simd
    for (int64_t i = 0; i < V; ++i) dr[i] *= k;
    dr[t] -= s;
  }
}

template void softmax_forward<float>(const float*, float*, int64_t, int64_t);
template void softmax_forward<double>(const double*, double*, int64_t, int64_t);
template void softmax_backward<float>(const float*, const float*, float*, int64_t, int64_t);
template void softmax_backward<double>(const double*, const double*, double*, int64_t, int64_t);
template void log_softmax_forward<float>(const float*, float*, int64_t, int64_t);
template void log_softmax_forward<double>(const double*, double*, int64_t, int64_t);
template void log_softmax_backward<float>(const float*, const float*, float*, int64_t, int64_t);
template void log_softmax_backward<double>(const double*, const double*, double*, int64_t, int64_t);
template void cross_entropy_forward<float>(const float*, const int32_t*, float*, float*, int64_t,
                                           int64_t, int32_t);
template void cross_entropy_forward<double>(const double*, const int32_t*, double*, double*,
                                            int64_t, int64_t, int32_t);
template void cross_entropy_backward<float>(const float*, const float*, const int32_t*, double,
                                            float*, int64_t, int64_t, int32_t);
template void cross_entropy_backward<double>(const double*, const double*, const int32_t*, double,
                                             double*, int64_t, int64_t, int32_t);

}  // namespace lmlab::cpu
