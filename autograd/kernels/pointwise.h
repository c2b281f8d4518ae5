// The pointwise functions of the elementwise ops and their derivatives, in one place for the CPU
// kernels (kernels/cpu/elementwise.cpp) and the CUDA ones (kernels/cuda/elementwise.cu), so the
// two cannot drift apart (kernels/max_nan.h does the same for max). Each backend passes its Math:
// the CPU its vectorisable fast_math (libm for float64), the GPU CUDA's expf, tanhf, ...
// The op is a template parameter, so a CPU loop body holds one formula and vectorises, and the GPU
// gets one kernel per op; visit_unary / visit_binary turn the run-time op into that parameter.
#pragma once
#include <type_traits>

#include "autograd/kernels/elementwise.h"
#include "autograd/kernels/host_device.h"

namespace lmlab::kernels {

inline constexpr double kGeluK = 0.7978845608028654;  // sqrt(2 / pi)
inline constexpr double kGeluA = 0.044715;            // GPT-2's tanh approximation

// y = f(x; c). Math supplies exp (the whole float range), exp_clamped (for sigmoid and SiLU, whose
// results saturate long before exp under- or overflows), tanh, log, sqrt and pow.
template <UnaryOp op, class Math, class T>
LMLAB_HOST_DEVICE inline T unary_value(T v, T c) {
  if constexpr (op == UnaryOp::Neg)
    return -v;
  else if constexpr (op == UnaryOp::Exp)
    return Math::exp(v);
  else if constexpr (op == UnaryOp::Log)
    return Math::log(v);
  else if constexpr (op == UnaryOp::Sqrt)
    return Math::sqrt(v);
  else if constexpr (op == UnaryOp::Rsqrt)
    return T(1) / Math::sqrt(v);
  else if constexpr (op == UnaryOp::Tanh)
    return Math::tanh(v);
  else if constexpr (op == UnaryOp::Sigmoid)
    return T(1) / (T(1) + Math::exp_clamped(-v));
  else if constexpr (op == UnaryOp::Relu)
    return v > T(0) ? v : T(0);
  // GELU, tanh approximation: 0.5 x (1 + tanh(k (x + a x^3)))
  else if constexpr (op == UnaryOp::Gelu)
    return T(0.5) * v * (T(1) + Math::tanh(T(kGeluK) * (v + T(kGeluA) * v * v * v)));
  else if constexpr (op == UnaryOp::Silu)
    return v / (T(1) + Math::exp_clamped(-v));
  else if constexpr (op == UnaryOp::Pow)
    return Math::pow(v, c);
  else if constexpr (op == UnaryOp::AddScalar)
    return v + c;
  else if constexpr (op == UnaryOp::MulScalar)
    return v * c;
  else if constexpr (op == UnaryOp::RSubScalar)
    return c - v;
  else
    return c / v;  // RDivScalar
}

// dy/dx at x, with y = f(x; c) given too (several derivatives are cheaper from y).
template <UnaryOp op, class Math, class T>
LMLAB_HOST_DEVICE inline T unary_derivative(T v, T y, T c) {
  if constexpr (op == UnaryOp::Neg)
    return T(-1);
  else if constexpr (op == UnaryOp::Exp)
    return y;
  else if constexpr (op == UnaryOp::Log)
    return T(1) / v;
  else if constexpr (op == UnaryOp::Sqrt)
    return T(0.5) / y;
  else if constexpr (op == UnaryOp::Rsqrt)
    return T(-0.5) * y * y * y;  // -1/2 x^(-3/2) = -1/2 y^3
  else if constexpr (op == UnaryOp::Tanh)
    return T(1) - y * y;
  else if constexpr (op == UnaryOp::Sigmoid)
    return y * (T(1) - y);
  else if constexpr (op == UnaryOp::Relu)
    return v > T(0) ? T(1) : T(0);
  else if constexpr (op == UnaryOp::Gelu) {
    // y = 0.5 x (1 + t), t = tanh(u), u = k (x + a x^3):
    // term 1: 0.5 (1 + t)   term 2: 0.5 x (1 - t^2) k (1 + 3 a x^2)
    const T t = Math::tanh(T(kGeluK) * (v + T(kGeluA) * v * v * v));
    const T du = T(kGeluK) * (T(1) + T(3 * kGeluA) * v * v);
    return T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * du;
  } else if constexpr (op == UnaryOp::Silu) {
    // y = x s, s = sigmoid(x): dy/dx = s + x s (1 - s) = s (1 + x (1 - s))
    const T s = T(1) / (T(1) + Math::exp_clamped(-v));
    return s * (T(1) + v * (T(1) - s));
  } else if constexpr (op == UnaryOp::Pow)
    return c * Math::pow(v, c - T(1));
  else if constexpr (op == UnaryOp::AddScalar)
    return T(1);
  else if constexpr (op == UnaryOp::MulScalar)
    return c;
  else if constexpr (op == UnaryOp::RSubScalar)
    return T(-1);
  else
    return -y / v;  // RDivScalar: d/dx c / x = -c / x^2 = -y / x
}

template <BinaryOp op, class T>
LMLAB_HOST_DEVICE inline T binary_value(T u, T v) {
  if constexpr (op == BinaryOp::Add)
    return u + v;
  else if constexpr (op == BinaryOp::Sub)
    return u - v;
  else if constexpr (op == BinaryOp::Mul)
    return u * v;
  else
    return u / v;  // Div
}

template <UnaryOp op>
using UnaryTag = std::integral_constant<UnaryOp, op>;
template <BinaryOp op>
using BinaryTag = std::integral_constant<BinaryOp, op>;

// Calls f(UnaryTag<op>{}) for the run-time op: f's body is compiled once per op.
template <class F>
inline void visit_unary(UnaryOp op, F&& f) {
  using U = UnaryOp;
  switch (op) {
    case U::Neg: return f(UnaryTag<U::Neg>{});
    case U::Exp: return f(UnaryTag<U::Exp>{});
    case U::Log: return f(UnaryTag<U::Log>{});
    case U::Sqrt: return f(UnaryTag<U::Sqrt>{});
    case U::Rsqrt: return f(UnaryTag<U::Rsqrt>{});
    case U::Tanh: return f(UnaryTag<U::Tanh>{});
    case U::Sigmoid: return f(UnaryTag<U::Sigmoid>{});
    case U::Relu: return f(UnaryTag<U::Relu>{});
    case U::Gelu: return f(UnaryTag<U::Gelu>{});
    case U::Silu: return f(UnaryTag<U::Silu>{});
    case U::Pow: return f(UnaryTag<U::Pow>{});
    case U::AddScalar: return f(UnaryTag<U::AddScalar>{});
    case U::MulScalar: return f(UnaryTag<U::MulScalar>{});
    case U::RSubScalar: return f(UnaryTag<U::RSubScalar>{});
    case U::RDivScalar: return f(UnaryTag<U::RDivScalar>{});
  }
}

template <class F>
inline void visit_binary(BinaryOp op, F&& f) {
  switch (op) {
    case BinaryOp::Add: return f(BinaryTag<BinaryOp::Add>{});
    case BinaryOp::Sub: return f(BinaryTag<BinaryOp::Sub>{});
    case BinaryOp::Mul: return f(BinaryTag<BinaryOp::Mul>{});
    case BinaryOp::Div: return f(BinaryTag<BinaryOp::Div>{});
  }
}

}  // namespace lmlab::kernels
