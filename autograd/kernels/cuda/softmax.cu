// Row-wise softmax, log-softmax and fused softmax-cross-entropy on the GPU: one block per row of
// C elements, the row max subtracted before exponentiating, sums accumulated in double through a
// fixed reduction tree (the formulas and roundings of cpu/softmax.cpp).
#include "autograd/kernels/cuda/common.cuh"
#include "autograd/kernels/softmax.h"

namespace lmlab::cuda {

__device__ inline float row_max(const float* x, int64_t C) {
  float m = -INFINITY;
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) m = x[i] > m ? x[i] : m;
  return block_max(m);
}

// y_i = exp(x_i - max) / sum_j exp(x_j - max)
__global__ void softmax_forward_kernel(const float* x, float* y, int64_t C) {
  const float* xr = x + blockIdx.x * C;
  float* yr = y + blockIdx.x * C;
  const float m = row_max(xr, C);
  double s = 0;
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) {
    const float e = expf(xr[i] - m);
    yr[i] = e;
    s += double(e);
  }
  const float inv = float(1.0 / block_sum(s));
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) yr[i] *= inv;  // each thread its own y_i
}

// dx_i = y_i (dy_i - sum_j dy_j y_j)   (term 1: y_i dy_i, term 2: -y_i sum_j dy_j y_j)
__global__ void softmax_backward_kernel(const float* y, const float* dy, float* dx, int64_t C) {
  const int64_t off = blockIdx.x * C;
  double dot = 0;
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x)
    dot += double(dy[off + i]) * double(y[off + i]);
  const float d = float(block_sum(dot));
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x)
    dx[off + i] = y[off + i] * (dy[off + i] - d);
}

// y_i = (x_i - max) - log(sum_j exp(x_j - max))
__global__ void log_softmax_forward_kernel(const float* x, float* y, int64_t C) {
  const float* xr = x + blockIdx.x * C;
  float* yr = y + blockIdx.x * C;
  const float m = row_max(xr, C);
  double s = 0;
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) s += exp(double(xr[i] - m));
  const float log_s = float(log(block_sum(s)));
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) yr[i] = (xr[i] - m) - log_s;
}

// dx_i = dy_i - exp(y_i) sum_j dy_j   (term 1: dy_i, term 2: -softmax_i sum_j dy_j)
__global__ void log_softmax_backward_kernel(const float* y, const float* dy, float* dx, int64_t C) {
  const int64_t off = blockIdx.x * C;
  double s = 0;
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) s += double(dy[off + i]);
  const float st = float(block_sum(s));
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x)
    dx[off + i] = dy[off + i] - expf(y[off + i]) * st;
}

// loss_r = logsumexp(z_r) - z_r[t_r], lse_r = logsumexp(z_r); ignored rows get 0 and 0.
__global__ void cross_entropy_forward_kernel(const float* logits, const int32_t* targets,
                                             float* loss, float* lse, int64_t V,
                                             int32_t ignore_index) {
  const int64_t r = blockIdx.x;
  const int32_t t = targets[r];
  if (t == ignore_index) {  // uniform across the block: nobody reaches a barrier
    if (threadIdx.x == 0) loss[r] = lse[r] = 0.0f;
    return;
  }
  const float* zr = logits + r * V;
  const float m = row_max(zr, V);
  double s = 0;
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x) s += exp(double(zr[i] - m));
  // loss = log(sum_i exp(z_i - m)) - (z_t - m): never forms m + log(sum) first, which at |m| of
  // 1e8 would round log(sum) away (the CPU kernel's formula, kernels/cpu/softmax.cpp).
  const double log_s = log(block_sum(s));
  if (threadIdx.x == 0) {
    lse[r] = float(double(m) + log_s);
    loss[r] = float(log_s - double(zr[t] - m));
  }
}

// dz_ri = scale * exp(z_ri - m_r) / sum_j exp(z_rj - m_r) - scale [i == t_r]  (term 1: softmax,
// term 2: the target), scale = dy / count rounded once to float, one block per row. The softmax
// is recomputed from the row max rather than read as exp(z - lse): at huge |z| the float lse has
// lost log(sum) (as on the CPU). Every element is written, ignored rows with 0.
__global__ void cross_entropy_backward_kernel(const float* logits, const int32_t* targets,
                                              const float* dy, double count, float* dlogits,
                                              int64_t V, int32_t ignore_index) {
  const int64_t r = blockIdx.x;
  const double sc = double(*dy) / count;  // the CPU caller's double scale, then its roundings
  const float scale = float(sc);
  const int32_t t = targets[r];
  const float* zr = logits + r * V;
  float* dr = dlogits + r * V;
  if (t == ignore_index) {  // uniform across the block: nobody reaches a barrier
    for (int64_t i = threadIdx.x; i < V; i += blockDim.x) dr[i] = 0.0f;
    return;
  }
  const float m = row_max(zr, V);
  double s = 0;
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x) s += exp(double(zr[i] - m));
  const float k = float(sc / block_sum(s));
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
    float v = k * expf(zr[i] - m);
    if (i == t) v -= scale;
    dr[i] = v;
  }
}

void softmax_forward(const float* x, float* y, int64_t rows, int64_t C) {
  if (rows == 0) return;
  softmax_forward_kernel<<<row_blocks(rows), row_threads(C), 0, stream()>>>(x, y, C);
  CUDA_CHECK_LAUNCH("softmax_forward_kernel");
}

void softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t C) {
  if (rows == 0) return;
  softmax_backward_kernel<<<row_blocks(rows), row_threads(C), 0, stream()>>>(y, dy, dx, C);
  CUDA_CHECK_LAUNCH("softmax_backward_kernel");
}

void log_softmax_forward(const float* x, float* y, int64_t rows, int64_t C) {
  if (rows == 0) return;
  log_softmax_forward_kernel<<<row_blocks(rows), row_threads(C), 0, stream()>>>(x, y, C);
  CUDA_CHECK_LAUNCH("log_softmax_forward_kernel");
}

void log_softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t C) {
  if (rows == 0) return;
  log_softmax_backward_kernel<<<row_blocks(rows), row_threads(C), 0, stream()>>>(y, dy, dx, C);
  CUDA_CHECK_LAUNCH("log_softmax_backward_kernel");
}

void cross_entropy_forward(const float* logits, const int32_t* targets, float* loss, float* lse,
                           int64_t rows, int64_t V, int32_t ignore_index) {
  if (rows == 0) return;
  cross_entropy_forward_kernel<<<row_blocks(rows), row_threads(V), 0, stream()>>>(
      logits, targets, loss, lse, V, ignore_index);
  CUDA_CHECK_LAUNCH("cross_entropy_forward_kernel");
}

// One block per row (lse is not read: the backward recomputes the row's max and sum).
void cross_entropy_backward(const float* logits, const float* /*lse*/, const int32_t* targets,
                            const float* dy, int64_t count, float* dlogits, int64_t rows, int64_t V,
                            int32_t ignore_index) {
  if (rows == 0 || V == 0) return;
  cross_entropy_backward_kernel<<<row_blocks(rows), row_threads(V), 0, stream()>>>(
      logits, targets, dy, double(count), dlogits, V, ignore_index);
  CUDA_CHECK_LAUNCH("cross_entropy_backward_kernel");
}

}  // namespace lmlab::cuda
