// Elementwise kernels on the GPU: unary functions and their derivatives (one thread per element,
// the op switch is uniform across the grid) and broadcasting binary arithmetic through strides.
#include <vector>

#include "autograd/kernels/cuda/common.cuh"
#include "autograd/kernels/elementwise.h"

namespace lmlab::cuda {

constexpr float kGeluK = 0.7978845608028654f;  // sqrt(2 / pi)

// y = f(x; c), the formulas of cpu::unary_forward.
__device__ inline float unary_value(UnaryOp op, float v, float c) {
  switch (op) {
    case UnaryOp::Neg: return -v;
    case UnaryOp::Exp: return expf(v);
    case UnaryOp::Log: return logf(v);
    case UnaryOp::Sqrt: return sqrtf(v);
    case UnaryOp::Rsqrt: return 1.0f / sqrtf(v);
    case UnaryOp::Tanh: return tanhf(v);
    case UnaryOp::Sigmoid: return 1.0f / (1.0f + expf(-v));
    case UnaryOp::Relu: return v > 0.0f ? v : 0.0f;
    case UnaryOp::Gelu: return 0.5f * v * (1.0f + tanhf(kGeluK * (v + 0.044715f * v * v * v)));
    case UnaryOp::Silu: return v / (1.0f + expf(-v));
    case UnaryOp::Pow: return powf(v, c);
    case UnaryOp::AddScalar: return v + c;
    case UnaryOp::MulScalar: return v * c;
    case UnaryOp::RSubScalar: return c - v;
    case UnaryOp::RDivScalar: return c / v;
  }
  return 0.0f;
}

// dy/dx at x (y = f(x) given too), the formulas of cpu::unary_backward.
__device__ inline float unary_derivative(UnaryOp op, float v, float y, float c) {
  switch (op) {
    case UnaryOp::Neg: return -1.0f;
    case UnaryOp::Exp: return y;
    case UnaryOp::Log: return 1.0f / v;
    case UnaryOp::Sqrt: return 0.5f / y;
    case UnaryOp::Rsqrt: return -0.5f * y * y * y;  // -1/2 x^(-3/2) = -1/2 y^3
    case UnaryOp::Tanh: return 1.0f - y * y;
    case UnaryOp::Sigmoid: return y * (1.0f - y);
    case UnaryOp::Relu: return v > 0.0f ? 1.0f : 0.0f;
    case UnaryOp::Gelu: {
      // term 1: 0.5 (1 + t)   term 2: 0.5 x (1 - t^2) k (1 + 3 * 0.044715 x^2), t = tanh(u)
      const float t = tanhf(kGeluK * (v + 0.044715f * v * v * v));
      const float du = kGeluK * (1.0f + float(3 * 0.044715) * v * v);
      return 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du;
    }
    case UnaryOp::Silu: {
      const float s = 1.0f / (1.0f + expf(-v));  // s (1 + x (1 - s))
      return s * (1.0f + v * (1.0f - s));
    }
    case UnaryOp::Pow: return c * powf(v, c - 1.0f);
    case UnaryOp::AddScalar: return 1.0f;
    case UnaryOp::MulScalar: return c;
    case UnaryOp::RSubScalar: return -1.0f;
    case UnaryOp::RDivScalar: return -y / v;  // d/dx c / x = -c / x^2 = -y / x
  }
  return 0.0f;
}

__global__ void unary_forward_kernel(UnaryOp op, const float* x, float* y, int64_t n, float c) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = unary_value(op, x[i], c);
}

__global__ void unary_backward_kernel(UnaryOp op, const float* x, const float* y, const float* dy,
                                      float* dx, int64_t n, float c) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dx[i] = dy[i] * unary_derivative(op, x[i], y[i], c);
}

// y (contiguous) = a op b; l.strides[0] / [1] address a and b, l.strides[2] the output.
__global__ void binary_forward_kernel(BinaryOp op, const float* a, const float* b, float* y,
                                      Layout<3> l, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[3];
    layout_offsets(l, i, off);
    const float u = a[off[0]], v = b[off[1]];
    float r = 0.0f;
    switch (op) {
      case BinaryOp::Add: r = u + v; break;
      case BinaryOp::Sub: r = u - v; break;
      case BinaryOp::Mul: r = u * v; break;
      case BinaryOp::Div: r = u / v; break;
    }
    y[off[2]] = r;
  }
}

// y[i] = f(x[i]; p) over contiguous buffers (p rounded to float once, as on the CPU).
void unary_forward(UnaryOp op, const float* x, float* y, int64_t n, double p) {
  if (n == 0) return;
  unary_forward_kernel<<<grid_for(n), kThreads, 0, stream()>>>(op, x, y, n, float(p));
  CUDA_CHECK_LAUNCH("unary_forward_kernel");
}

// dx[i] = dy[i] * f'(x[i]; p) (written, not accumulated).
void unary_backward(UnaryOp op, const float* x, const float* y, const float* dy, float* dx,
                    int64_t n, double p) {
  if (n == 0) return;
  unary_backward_kernel<<<grid_for(n), kThreads, 0, stream()>>>(op, x, y, dy, dx, n, float(p));
  CUDA_CHECK_LAUNCH("unary_backward_kernel");
}

// y (contiguous, `shape`) = a op b read through broadcast strides (0 on broadcast dims).
void binary_forward(BinaryOp op, const float* a, const int64_t* a_strides, const float* b,
                    const int64_t* b_strides, float* y, const int64_t* shape, int64_t ndim) {
  int64_t n = 1;
  for (int64_t d = 0; d < ndim; ++d) n *= shape[d];
  if (n == 0) return;
  std::vector<int64_t> y_strides(size_t(ndim) + 1);  // the output is contiguous
  for (int64_t d = ndim - 1, s = 1; d >= 0; --d) {
    y_strides[d] = s;
    s *= shape[d];
  }
  const int64_t* const strides[3] = {a_strides, b_strides, y_strides.data()};
  const Layout<3> l = make_layout(shape, ndim, strides, "binary");
  binary_forward_kernel<<<grid_for(n), kThreads, 0, stream()>>>(op, a, b, y, l, n);
  CUDA_CHECK_LAUNCH("binary_forward_kernel");
}

}  // namespace lmlab::cuda
