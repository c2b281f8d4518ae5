// Elementwise kernels on the CPU: unary functions with their derivatives, and broadcasting
// binary arithmetic. Each switch sits outside its loop so every loop body vectorises.
#include "autograd/kernels/elementwise.h"

#include "autograd/kernels/cpu/fast_math.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

namespace lmlab::cpu {

static constexpr int64_t kParallelMin = 1 << 14;
static constexpr double kGeluK = 0.7978845608028654;  // sqrt(2 / pi)

// Elementwise loops run as OpenMP chunks with a `simd` inner loop (a combined `parallel for simd`
// with an `if` clause left GCC's loop body unvectorised).
static constexpr int64_t kChunk = 4096;

template <class T, class F> static void map(const T* x, T* y, int64_t n, F f) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t hi = std::min(n, (c + 1) * kChunk);
#pragma omp simd
    for (int64_t i = c * kChunk; i < hi; ++i) y[i] = f(x[i]);
  }
}

template <class T> void unary_forward(UnaryOp op, const T* x, T* y, int64_t n, double p) {
  const T c = T(p);
  switch (op) {
    case UnaryOp::Neg: return map(x, y, n, [](T v) { return -v; });
    case UnaryOp::Exp: return map(x, y, n, [](T v) { return fast_exp_full(v); });
    case UnaryOp::Log: return map(x, y, n, [](T v) { return std::log(v); });
    case UnaryOp::Sqrt: return map(x, y, n, [](T v) { return std::sqrt(v); });
    case UnaryOp::Rsqrt: return map(x, y, n, [](T v) { return T(1) / std::sqrt(v); });
    case UnaryOp::Tanh: return map(x, y, n, [](T v) { return fast_tanh(v); });
    case UnaryOp::Sigmoid: return map(x, y, n, [](T v) { return T(1) / (T(1) + fast_exp(-v)); });
    case UnaryOp::Relu: return map(x, y, n, [](T v) { return v > T(0) ? v : T(0); });
    case UnaryOp::Gelu:
      return map(x, y, n, [](T v) {
        return T(0.5) * v * (T(1) + fast_tanh(T(kGeluK) * (v + T(0.044715) * v * v * v)));
      });
    case UnaryOp::Silu: return map(x, y, n, [](T v) { return v / (T(1) + fast_exp(-v)); });
    case UnaryOp::Pow: return map(x, y, n, [c](T v) { return std::pow(v, c); });
    case UnaryOp::AddScalar: return map(x, y, n, [c](T v) { return v + c; });
    case UnaryOp::MulScalar: return map(x, y, n, [c](T v) { return v * c; });
    case UnaryOp::RSubScalar: return map(x, y, n, [c](T v) { return c - v; });
    case UnaryOp::RDivScalar: return map(x, y, n, [c](T v) { return c / v; });
  }
}

template <class T, class F>
static void map_backward(const T* x, const T* y, const T* dy, T* dx, int64_t n, F f) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t hi = std::min(n, (c + 1) * kChunk);
#pragma omp simd
    for (int64_t i = c * kChunk; i < hi; ++i) dx[i] = dy[i] * f(x[i], y[i]);
  }
}

template <class T>
void unary_backward(UnaryOp op, const T* x, const T* y, const T* dy, T* dx, int64_t n, double p) {
  const T c = T(p);
  switch (op) {
    case UnaryOp::Neg: return map_backward(x, y, dy, dx, n, [](T, T) { return T(-1); });
    case UnaryOp::Exp: return map_backward(x, y, dy, dx, n, [](T, T e) { return e; });
    case UnaryOp::Log: return map_backward(x, y, dy, dx, n, [](T v, T) { return T(1) / v; });
    case UnaryOp::Sqrt: return map_backward(x, y, dy, dx, n, [](T, T s) { return T(0.5) / s; });
    // d/dx x^(-1/2) = -1/2 x^(-3/2) = -1/2 y^3
    case UnaryOp::Rsqrt:
      return map_backward(x, y, dy, dx, n, [](T, T r) { return T(-0.5) * r * r * r; });
    case UnaryOp::Tanh: return map_backward(x, y, dy, dx, n, [](T, T t) { return T(1) - t * t; });
    case UnaryOp::Sigmoid:
      return map_backward(x, y, dy, dx, n, [](T, T s) { return s * (T(1) - s); });
    case UnaryOp::Relu:
      return map_backward(x, y, dy, dx, n, [](T v, T) { return v > T(0) ? T(1) : T(0); });
    case UnaryOp::Gelu:
      // y = 0.5 x (1 + t), t = tanh(u), u = k (x + 0.044715 x^3):
      // term 1: 0.5 (1 + t)   term 2: 0.5 x (1 - t^2) k (1 + 3 * 0.044715 x^2)
      return map_backward(x, y, dy, dx, n, [](T v, T) {
        const T u = T(kGeluK) * (v + T(0.044715) * v * v * v);
        const T t = fast_tanh(u);
        const T du = T(kGeluK) * (T(1) + T(3 * 0.044715) * v * v);
        return T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * du;
      });
    case UnaryOp::Silu:
      // y = x s, s = sigmoid(x): dy/dx = s + x s (1 - s) = s (1 + x (1 - s))
      return map_backward(x, y, dy, dx, n, [](T v, T) {
        const T s = T(1) / (T(1) + fast_exp(-v));
        return s * (T(1) + v * (T(1) - s));
      });
    case UnaryOp::Pow:
      return map_backward(x, y, dy, dx, n, [c](T v, T) { return c * std::pow(v, c - T(1)); });
    case UnaryOp::AddScalar: return map_backward(x, y, dy, dx, n, [](T, T) { return T(1); });
    case UnaryOp::MulScalar: return map_backward(x, y, dy, dx, n, [c](T, T) { return c; });
    case UnaryOp::RSubScalar: return map_backward(x, y, dy, dx, n, [](T, T) { return T(-1); });
    // d/dx c / x = -c / x^2 = -y / x
    case UnaryOp::RDivScalar: return map_backward(x, y, dy, dx, n, [](T v, T r) { return -r / v; });
  }
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
void binary_forward(BinaryOp op, const T* a, const int64_t* sa, const T* b, const int64_t* sb,
                    T* y, const int64_t* shape, int64_t ndim) {
  switch (op) {
    case BinaryOp::Add: return broadcast_map(a, sa, b, sb, y, shape, ndim, [](T u, T v) { return u + v; });
    case BinaryOp::Sub: return broadcast_map(a, sa, b, sb, y, shape, ndim, [](T u, T v) { return u - v; });
    case BinaryOp::Mul: return broadcast_map(a, sa, b, sb, y, shape, ndim, [](T u, T v) { return u * v; });
    case BinaryOp::Div: return broadcast_map(a, sa, b, sb, y, shape, ndim, [](T u, T v) { return u / v; });
  }
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
