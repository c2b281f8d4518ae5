// Reductions over the middle axis of (outer, R, inner) on the GPU. Every output is combined in a
// fixed order (per-thread strided sums, then a fixed tree), so results are reproducible run to run;
// sums accumulate in double like the CPU kernels.
#include "autograd/kernels/cuda/common.cuh"
#include "autograd/kernels/reduce.h"

namespace lmlab::cuda {

constexpr int kColTile = 32;  // columns per block in the (inner > 1) kernels
constexpr int kRowLanes = 8;  // threads that split R for each column

// inner == 1: one block per output; y[o] = scale * sum_r x[o, r].
__global__ void sum_rows_kernel(const float* x, float* y, int64_t R, double scale) {
  const float* row = x + blockIdx.x * R;
  double acc = 0;
  for (int64_t r = threadIdx.x; r < R; r += blockDim.x) acc += double(row[r]);
  acc = block_sum(acc);
  if (threadIdx.x == 0) y[blockIdx.x] = float(acc * scale);
}

// inner > 1: a block owns 32 columns of one or more o; 8 lanes split R, then lane 0 adds the 8
// partial sums in lane order.
__global__ void sum_cols_kernel(const float* x, float* y, int64_t outer, int64_t R, int64_t inner,
                                double scale) {
  __shared__ double part[kRowLanes][kColTile];
  const int64_t i = blockIdx.x * int64_t(kColTile) + threadIdx.x;
  for (int64_t o = blockIdx.y; o < outer; o += gridDim.y) {
    double acc = 0;
    if (i < inner)
      for (int64_t r = threadIdx.y; r < R; r += kRowLanes)
        acc += double(x[(o * R + r) * inner + i]);
    part[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && i < inner) {
      double total = 0;
      for (int k = 0; k < kRowLanes; ++k) total += part[k][threadIdx.x];
      y[o * inner + i] = float(total * scale);
    }
    __syncthreads();  // part is rewritten for the next o
  }
}

__global__ void max_rows_kernel(const float* x, float* y, int64_t R) {
  const float* row = x + blockIdx.x * R;
  float m = -INFINITY;
  for (int64_t r = threadIdx.x; r < R; r += blockDim.x) m = MaxOp()(m, row[r]);
  m = block_max(m);
  if (threadIdx.x == 0) y[blockIdx.x] = m;
}

// One thread per output (o, i), walking r in order; neighbouring threads read neighbouring i.
__global__ void max_cols_kernel(const float* x, float* y, int64_t outer, int64_t R, int64_t inner) {
  const int64_t n = outer * inner;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n;
       k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = k / inner, i = k % inner;
    const float* col = x + o * R * inner + i;
    float m = col[0];
    for (int64_t r = 1; r < R; ++r) m = MaxOp()(m, col[r * inner]);
    y[k] = m;
  }
}

// dx[o, r, i] = dy[o, i] / ties where x == max, else 0 (every dx element is written).
__global__ void max_backward_kernel(const float* x, const float* y, const float* dy, float* dx,
                                    int64_t outer, int64_t R, int64_t inner) {
  const int64_t n = outer * inner;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n;
       k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = k / inner, i = k % inner;
    const float m = y[k];
    const int64_t base = o * R * inner + i;
    int64_t ties = 0;
    for (int64_t r = 0; r < R; ++r) ties += kernels::is_max(x[base + r * inner], m);
    const float g = dy[k] / float(ties);
    for (int64_t r = 0; r < R; ++r)
      dx[base + r * inner] = kernels::is_max(x[base + r * inner], m) ? g : 0.0f;
  }
}

static dim3 col_grid(int64_t outer, int64_t inner) {
  const int64_t tiles = (inner + kColTile - 1) / kColTile;
  return dim3(unsigned(tiles), unsigned(outer < 65535 ? outer : 65535));
}

// y[o, i] = scale * sum_r x[o, r, i]
void sum_dim(const float* x, float* y, int64_t outer, int64_t R, int64_t inner, double scale) {
  if (outer * inner == 0) return;
  if (inner == 1) {
    sum_rows_kernel<<<row_blocks(outer), row_threads(R), 0, stream()>>>(x, y, R, scale);
    CUDA_CHECK_LAUNCH("sum_rows_kernel");
  } else {
    sum_cols_kernel<<<col_grid(outer, inner), dim3(kColTile, kRowLanes), 0, stream()>>>(
        x, y, outer, R, inner, scale);
    CUDA_CHECK_LAUNCH("sum_cols_kernel");
  }
}

// y[o, i] = max_r x[o, r, i]   (R >= 1: the op refuses empty maxima)
void max_dim(const float* x, float* y, int64_t outer, int64_t R, int64_t inner) {
  if (outer * inner == 0) return;
  if (inner == 1) {
    max_rows_kernel<<<row_blocks(outer), row_threads(R), 0, stream()>>>(x, y, R);
    CUDA_CHECK_LAUNCH("max_rows_kernel");
  } else {
    max_cols_kernel<<<grid_for(outer * inner), kThreads, 0, stream()>>>(x, y, outer, R, inner);
    CUDA_CHECK_LAUNCH("max_cols_kernel");
  }
}

// dx = dy / (number of ties) at every maximum, 0 elsewhere.
void max_dim_backward(const float* x, const float* y, const float* dy, float* dx, int64_t outer,
                      int64_t R, int64_t inner) {
  if (outer * inner == 0) return;
  max_backward_kernel<<<grid_for(outer * inner), kThreads, 0, stream()>>>(x, y, dy, dx, outer, R,
                                                                          inner);
  CUDA_CHECK_LAUNCH("max_backward_kernel");
}

}  // namespace lmlab::cuda
