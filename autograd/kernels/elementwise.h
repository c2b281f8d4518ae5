// Raw-pointer kernels for elementwise ops: unary functions (with an optional scalar parameter)
// and broadcasting binary arithmetic. Unary kernels take contiguous buffers.
#pragma once
#include <cstdint>

namespace lmlab {

enum class UnaryOp {
  Neg,
  Exp,
  Log,
  Sqrt,
  Rsqrt,
  Tanh,
  Sigmoid,
  Relu,
  Gelu,
  Silu,
  Pow,         // x^p
  AddScalar,   // x + p
  MulScalar,   // x * p
  RSubScalar,  // p - x
  RDivScalar,  // p / x
};
enum class BinaryOp { Add, Sub, Mul, Div };

}  // namespace lmlab

namespace lmlab::cpu {

// y[i] = f(x[i]; p)
template <class T>
void unary_forward(UnaryOp op, const T* x, T* y, int64_t n, double p);
// dx[i] = dy[i] * f'(x[i]; p); y = f(x) is passed because several derivatives are cheaper from it.
template <class T>
void unary_backward(UnaryOp op, const T* x, const T* y, const T* dy, T* dx, int64_t n, double p);
// y (contiguous, `shape`) = a op b, where a and b are read through broadcast strides (0 on
// broadcast dims) that also describe any non-contiguous layout.
template <class T>
void binary_forward(BinaryOp op, const T* a, const int64_t* a_strides, const T* b,
                    const int64_t* b_strides, T* y, const int64_t* shape, int64_t ndim);

}  // namespace lmlab::cpu

namespace lmlab::cuda {

void unary_forward(UnaryOp op, const float* x, float* y, int64_t n, double p);
void unary_backward(UnaryOp op, const float* x, const float* y, const float* dy, float* dx,
                    int64_t n, double p);
void binary_forward(BinaryOp op, const float* a, const int64_t* a_strides, const float* b,
                    const int64_t* b_strides, float* y, const int64_t* shape, int64_t ndim);

}  // namespace lmlab::cuda
