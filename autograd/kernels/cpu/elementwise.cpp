// Elementwise kernels on the CPU: unary functions with their derivatives, and broadcasting
// binary arithmetic, with the formulas of kernels/pointwise.h. The op is chosen outside each loop
// (visit_unary), so every loop body holds one formula and vectorises.
#include "autograd/kernels/elementwise.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "autograd/kernels/cpu/avx512_clone.h"
#include "autograd/kernels/cpu/fast_math.h"
#include "autograd/kernels/pointwise.h"

namespace lmlab::cpu {

static constexpr int64_t kParallelMin = 1 << 14;

// Elementwise loops run as OpenMP chunks with a `simd` inner loop (a combined `parallel for simd`
// with an `if` clause left GCC's loop body unvectorised).
static constexpr int64_t kChunk = 4096;

// The math of kernels/pointwise.h on the CPU: fast_math's branch-free exp and tanh, which
// `omp simd` vectorises (libm for float64).
struct CpuMath {
  template <class T>
  static T exp(T v) {
    return fast_exp_full(v);
  }
  template <class T>
  static T exp_clamped(T v) {
    return fast_exp(v);
  }
  template <class T>
  static T tanh(T v) {
    return fast_tanh(v);
  }
  template <class T>
  static T log(T v) {
    return std::log(v);
  }
  template <class T>
  static T sqrt(T v) {
    return std::sqrt(v);
  }
  template <class T>
  static T pow(T v, T p) {
    return std::pow(v, p);
  }
};

// The chunk loops also get an AVX-512 clone (avx512_clone.h): GELU's forward and backward loops
// ran 2x faster. tests/autograd/ops/test_unary.cpp checks every op's lanes against scalar
// evaluation.
template <class T, class F>
LMLAB_AVX512_CLONE static void map_chunk(const T* x, T* y, int64_t lo, int64_t hi, F f) {
#pragma omp simd
  for (int64_t i = lo; i < hi; ++i) y[i] = f(x[i]);
}

template <class T, class F>
static void map(const T* x, T* y, int64_t n, F f) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t c = 0; c < chunks; ++c)
    map_chunk(x, y, c * kChunk, std::min(n, (c + 1) * kChunk), f);
}

template <class T>
void unary_forward(UnaryOp op, const T* x, T* y, int64_t n, double p) {
  const T c = T(p);
  kernels::visit_unary(op, [&](auto tag) {
    constexpr UnaryOp kOp = decltype(tag)::value;
    map(x, y, n, [c](T v) { return kernels::unary_value<kOp, CpuMath>(v, c); });
  });
}

template <class T, class F>
LMLAB_AVX512_CLONE static void map_backward_chunk(const T* x, const T* y, const T* dy, T* dx,
                                                  int64_t lo, int64_t hi, F f) {
#pragma omp simd
  for (int64_t i = lo; i < hi; ++i) dx[i] = dy[i] * f(x[i], y[i]);
}

template <class T, class F>
static void map_backward(const T* x, const T* y, const T* dy, T* dx, int64_t n, F f) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t c = 0; c < chunks; ++c)
    map_backward_chunk(x, y, dy, dx, c * kChunk, std::min(n, (c + 1) * kChunk), f);
}

template <class T>
void unary_backward(UnaryOp op, const T* x, const T* y, const T* dy, T* dx, int64_t n, double p) {
  const T c = T(p);
  kernels::visit_unary(op, [&](auto tag) {
    constexpr UnaryOp kOp = decltype(tag)::value;
    map_backward(x, y, dy, dx, n,
                 [c](T v, T fv) { return kernels::unary_derivative<kOp, CpuMath>(v, fv, c); });
  });
}

// One output row (the last dim) per iteration; rows are independent, so OpenMP splits them.
template <class T, class F>
static void broadcast_map(const T* a, const int64_t* sa, const T* b, const int64_t* sb, T* y,
                          const int64_t* shape, int64_t ndim, F f) {
  if (ndim == 0) {
    y[0] = f(a[0], b[0]);
    return;
  }
  const int64_t inner = shape[ndim - 1];
  const int64_t ia = sa[ndim - 1], ib = sb[ndim - 1];
  int64_t rows = 1;
  for (int64_t d = 0; d < ndim - 1; ++d) rows *= shape[d];
#pragma omp parallel for schedule(static) if (rows * inner >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t oa = 0, ob = 0, rem = r;
    for (int64_t d = ndim - 2; d >= 0; --d) {
      const int64_t i = rem % shape[d];
      rem /= shape[d];
      oa += i * sa[d];
      ob += i * sb[d];
    }
    const T* pa = a + oa;
    const T* pb = b + ob;
    T* py = y + r * inner;
    // The common layouts get their own loops so the compiler vectorises them.
    if (ia == 1 && ib == 1) {
#pragma omp simd
      for (int64_t i = 0; i < inner; ++i) py[i] = f(pa[i], pb[i]);
    } else if (ia == 1 && ib == 0) {
      const T vb = pb[0];
#pragma omp simd
      for (int64_t i = 0; i < inner; ++i) py[i] = f(pa[i], vb);
    } else if (ia == 0 && ib == 1) {
      const T va = pa[0];
#pragma omp simd
      for (int64_t i = 0; i < inner; ++i) py[i] = f(va, pb[i]);
    } else {
      for (int64_t i = 0; i < inner; ++i) py[i] = f(pa[i * ia], pb[i * ib]);
    }
  }
}

template <class T>
void binary_forward(BinaryOp op, const T* a, const int64_t* sa, const T* b, const int64_t* sb, T* y,
                    const int64_t* shape, int64_t ndim) {
  kernels::visit_binary(op, [&](auto tag) {
    constexpr BinaryOp kOp = decltype(tag)::value;
    broadcast_map(a, sa, b, sb, y, shape, ndim,
                  [](T u, T v) { return kernels::binary_value<kOp>(u, v); });
  });
}

template void unary_forward<float>(UnaryOp, const float*, float*, int64_t, double);
template void unary_forward<double>(UnaryOp, const double*, double*, int64_t, double);
template void unary_backward<float>(UnaryOp, const float*, const float*, const float*, float*,
                                    int64_t, double);
template void unary_backward<double>(UnaryOp, const double*, const double*, const double*, double*,
                                     int64_t, double);
template void binary_forward<float>(BinaryOp, const float*, const int64_t*, const float*,
                                    const int64_t*, float*, const int64_t*, int64_t);
template void binary_forward<double>(BinaryOp, const double*, const int64_t*, const double*,
                                     const int64_t*, double*, const int64_t*, int64_t);

}  // namespace lmlab::cpu
