// Elementwise kernels on the GPU: unary functions and their derivatives (one thread per element,
// one kernel per op) and broadcasting binary arithmetic through strides, with the formulas of
// kernels/pointwise.h.
#include <vector>

#include "autograd/kernels/cuda/common.cuh"
#include "autograd/kernels/elementwise.h"
#include "autograd/kernels/pointwise.h"

namespace lmlab::cuda {

// The math of kernels/pointwise.h on the GPU: CUDA's own functions (exp over the whole range on
// both paths; expf does not need fast_exp's clamp).
struct CudaMath {
  static LMLAB_HOST_DEVICE float exp(float v) { return expf(v); }
  static LMLAB_HOST_DEVICE float exp_clamped(float v) { return expf(v); }
  static LMLAB_HOST_DEVICE float tanh(float v) { return tanhf(v); }
  static LMLAB_HOST_DEVICE float log(float v) { return logf(v); }
  static LMLAB_HOST_DEVICE float sqrt(float v) { return sqrtf(v); }
  static LMLAB_HOST_DEVICE float pow(float v, float p) { return powf(v, p); }
};

template <UnaryOp op>
__global__ void unary_forward_kernel(const float* x, float* y, int64_t n, float c) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = kernels::unary_value<op, CudaMath>(x[i], c);
}

template <UnaryOp op>
__global__ void unary_backward_kernel(const float* x, const float* y, const float* dy, float* dx,
                                      int64_t n, float c) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dx[i] = dy[i] * kernels::unary_derivative<op, CudaMath>(x[i], y[i], c);
}

// y (contiguous) = a op b; l.strides[0] / [1] address a and b, l.strides[2] the output.
template <BinaryOp op>
__global__ void binary_forward_kernel(const float* a, const float* b, float* y, Layout<3> l,
                                      int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[3];
    layout_offsets(l, i, off);
    y[off[2]] = kernels::binary_value<op>(a[off[0]], b[off[1]]);
  }
}

// y[i] = f(x[i]; p) over contiguous buffers (p rounded to float once, as on the CPU).
void unary_forward(UnaryOp op, const float* x, float* y, int64_t n, double p) {
  if (n == 0) return;
  kernels::visit_unary(op, [&](auto tag) {
    unary_forward_kernel<decltype(tag)::value>
        <<<grid_for(n), kThreads, 0, stream()>>>(x, y, n, float(p));
  });
  CUDA_CHECK_LAUNCH("unary_forward_kernel");
}

// dx[i] = dy[i] * f'(x[i]; p) (written, not accumulated).
void unary_backward(UnaryOp op, const float* x, const float* y, const float* dy, float* dx,
                    int64_t n, double p) {
  if (n == 0) return;
  kernels::visit_unary(op, [&](auto tag) {
    unary_backward_kernel<decltype(tag)::value>
        <<<grid_for(n), kThreads, 0, stream()>>>(x, y, dy, dx, n, float(p));
  });
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
  kernels::visit_binary(op, [&](auto tag) {
    binary_forward_kernel<decltype(tag)::value>
        <<<grid_for(n), kThreads, 0, stream()>>>(a, b, y, l, n);
  });
  CUDA_CHECK_LAUNCH("binary_forward_kernel");
}

}  // namespace lmlab::cuda
