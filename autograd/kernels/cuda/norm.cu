// LayerNorm and RMSNorm on the GPU (the formulas of cpu/norm.cpp; derivations in
// docs/layernorm.md). Forward and the dx part of backward, sums in double: one warp per row for
// rows of up to kWarpRowMaxC values (8 rows per block: a head of 24-128 values for QK-norm, or a
// residual stream of 768), one block per row above that. The weight gradients: each fixed chunk of
// rows sums its columns into a double partial, and the partials are added in chunk order, so dw
// and db are reproducible run to run.
#include "autograd/kernels/cuda/common.cuh"
#include "autograd/kernels/norm.h"

namespace lmlab::cuda {

constexpr int kColTile = 32;  // columns per block of the weight-gradient kernel
constexpr int kRowLanes = 8;  // threads splitting a chunk's rows for each column
constexpr int64_t kChunkRows = 64;
constexpr int64_t kMaxChunks = 128;

constexpr int64_t kWarpRowMaxC = 1024;  // rows up to this long: one warp each
constexpr int kWarpsPerBlock = 8;

// Who owns a row: a whole block (long rows) or one warp (short rows). Each gives the row, this
// thread's first column and stride, a sum over the row's threads (a fixed shuffle tree, so the
// result does not depend on timing) and whether the thread writes the row's statistics.
struct BlockRow {
  __device__ static int64_t row() { return blockIdx.x; }
  __device__ static int first() { return threadIdx.x; }
  __device__ static int stride() { return blockDim.x; }
  __device__ static double sum(double v) { return block_sum(v); }
  __device__ static bool leader() { return threadIdx.x == 0; }
};
struct WarpRow {
  __device__ static int64_t row() {
    return int64_t(blockIdx.x) * kWarpsPerBlock + int64_t(threadIdx.x / 32);
  }
  __device__ static int first() { return threadIdx.x % 32; }
  __device__ static int stride() { return 32; }
  __device__ static double sum(double v) { return warp_reduce(v, SumOp()); }
  __device__ static bool leader() { return threadIdx.x % 32 == 0; }
};

// Runs `warp` (one warp per row) when rows hold at most kWarpRowMaxC values, else `block` (one
// block per row): the two instances of one row kernel.
template <class... P, class... A>
static void launch_rows(void (*warp)(P...), void (*block)(P...), const char* name, int64_t rows,
                        int64_t C, A... args) {
  if (C <= kWarpRowMaxC) {
    const int64_t blocks = (rows + kWarpsPerBlock - 1) / kWarpsPerBlock;
    warp<<<row_blocks(blocks), kWarpsPerBlock * 32, 0, stream()>>>(args...);
  } else {
    block<<<row_blocks(rows), row_threads(C), 0, stream()>>>(args...);
  }
  CUDA_CHECK_LAUNCH(name);
}

// The number of row chunks of the dw/db partial sums: a function of rows only.
static int64_t chunk_count(int64_t rows) {
  const int64_t c = (rows + kChunkRows - 1) / kChunkRows;
  return c < 1 ? 1 : c > kMaxChunks ? kMaxChunks : c;
}

// One pass around a shift k = x[0] (see cpu::layernorm_forward for why), then y.
template <class Owner>
__global__ void layernorm_forward_kernel(const float* x, const float* w, const float* b, float* y,
                                         float* mean, float* rstd, int64_t rows, int64_t C,
                                         double eps) {
  const int64_t r = Owner::row();
  if (r >= rows) return;  // a warp past the last row (WarpRow only)
  const float* xr = x + r * C;
  float* yr = y + r * C;
  const double k = double(xr[0]);
  double s1 = 0, s2 = 0;
  for (int64_t c = Owner::first(); c < C; c += Owner::stride()) {
    const double d = double(xr[c]) - k;
    s1 += d;
    s2 += d * d;
  }
  s1 = Owner::sum(s1);
  s2 = Owner::sum(s2);
  const double dm = s1 / double(C);
  const double var = fmax(s2 / double(C) - dm * dm, 0.0);
  const double m = k + dm;
  const double rs = 1.0 / sqrt(var + eps);
  if (Owner::leader()) {
    mean[r] = float(m);
    rstd[r] = float(rs);
  }
  for (int64_t c = Owner::first(); c < C; c += Owner::stride()) {
    const float xh = float((double(xr[c]) - m) * rs);
    yr[c] = b ? xh * w[c] + b[c] : xh * w[c];
  }
}

// dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy w, xhat re-centred by its row mean mu
// (saved for the dw kernel).
template <class Owner>
__global__ void layernorm_dx_kernel(const float* dy, const float* x, const float* w,
                                    const float* mean, const float* rstd, float* dx, double* mu_out,
                                    int64_t rows, int64_t C) {
  const int64_t r = Owner::row(), off = r * C;
  if (r >= rows) return;
  const double m = double(mean[r]), rs = double(rstd[r]);
  double sum_g = 0, sum_gx = 0, sum_x = 0;
  for (int64_t c = Owner::first(); c < C; c += Owner::stride()) {
    const double xh = (double(x[off + c]) - m) * rs;
    const double g = double(dy[off + c]) * double(w[c]);
    sum_g += g;
    sum_gx += g * xh;
    sum_x += xh;
  }
  sum_g = Owner::sum(sum_g);
  sum_gx = Owner::sum(sum_gx);
  sum_x = Owner::sum(sum_x);
  const double mu = sum_x / double(C);
  const double mean_g = sum_g / double(C);
  const double mean_gx = sum_gx / double(C) - mu * mean_g;  // mean(g * (xh - mu))
  if (Owner::leader()) mu_out[r] = mu;
  for (int64_t c = Owner::first(); c < C; c += Owner::stride()) {
    const double xh = (double(x[off + c]) - m) * rs - mu;
    const double g = double(dy[off + c]) * double(w[c]);
    // term 1: g; term 2: -mean(g) (through the mean); term 3: -xhat mean(g xhat) (through rstd)
    dx[off + c] = float(rs * (g - mean_g - xh * mean_gx));
  }
}

// dx = rstd (g - xhat mean(g xhat)), xhat = x rstd, g = dy w.
template <class Owner>
__global__ void rmsnorm_dx_kernel(const float* dy, const float* x, const float* w,
                                  const float* rstd, float* dx, int64_t rows, int64_t C) {
  const int64_t r = Owner::row(), off = r * C;
  if (r >= rows) return;
  const double rs = double(rstd[r]);
  double sum_gx = 0;  // sum(g * x); times rstd it is sum(g * xhat)
  for (int64_t c = Owner::first(); c < C; c += Owner::stride())
    sum_gx += double(dy[off + c]) * double(w[c]) * double(x[off + c]);
  const double mean_gx = Owner::sum(sum_gx) * rs / double(C);
  for (int64_t c = Owner::first(); c < C; c += Owner::stride()) {
    const double xh = double(x[off + c]) * rs;
    const double g = double(dy[off + c]) * double(w[c]);
    // term 1: g (through x); term 2: -xhat mean(g xhat) (through rstd)
    dx[off + c] = float(rs * (g - xh * mean_gx));
  }
}

// Chunk kc of the rows, 32 columns per block: part_w[kc, c] = sum_r dy xhat, part_b[kc, c] =
// sum_r dy, with xhat = (x - mean) rstd - mu (mean and mu null for RMSNorm: xhat = x rstd).
__global__ void norm_dw_partial_kernel(const float* dy, const float* x, const float* mean,
                                       const float* rstd, const double* mu, double* part_w,
                                       double* part_b, int64_t rows, int64_t C, int64_t chunks) {
  __shared__ double sw[kRowLanes][kColTile];
  __shared__ double sb[kRowLanes][kColTile];
  const int64_t c = blockIdx.x * int64_t(kColTile) + threadIdx.x;
  const int64_t kc = blockIdx.y;
  const int64_t r0 = rows * kc / chunks, r1 = rows * (kc + 1) / chunks;
  double acc_w = 0, acc_b = 0;
  if (c < C) {
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kRowLanes) {
      const double m = mean ? double(mean[r]) : 0.0;
      const double xh = (double(x[r * C + c]) - m) * double(rstd[r]) - (mu ? mu[r] : 0.0);
      const double d = double(dy[r * C + c]);
      acc_w += d * xh;
      acc_b += d;
    }
  }
  sw[threadIdx.y][threadIdx.x] = acc_w;
  sb[threadIdx.y][threadIdx.x] = acc_b;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    double tw = 0, tb = 0;
    for (int k = 0; k < kRowLanes; ++k) {
      tw += sw[k][threadIdx.x];
      tb += sb[k][threadIdx.x];
    }
    part_w[kc * C + c] = tw;
    if (part_b) part_b[kc * C + c] = tb;
  }
}

// dw[c] += sum over chunks (in order) of part_w[., c]; the same for db when it is not null.
__global__ void norm_dw_finish_kernel(const double* part_w, const double* part_b, float* dw,
                                      float* db, int64_t C, int64_t chunks) {
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < C;
       c += int64_t(gridDim.x) * blockDim.x) {
    double tw = 0, tb = 0;
    for (int64_t k = 0; k < chunks; ++k) {
      tw += part_w[k * C + c];
      if (db) tb += part_b[k * C + c];
    }
    dw[c] += float(tw);
    if (db) db[c] += float(tb);
  }
}

// The dw (and db) accumulation shared by both norms.
static void accumulate_weight_grads(const float* dy, const float* x, const float* mean,
                                    const float* rstd, const double* mu, float* dw, float* db,
                                    int64_t rows, int64_t C) {
  const int64_t chunks = chunk_count(rows);
  Scratch part_w(size_t(chunks * C) * sizeof(double));
  Scratch part_b(db ? size_t(chunks * C) * sizeof(double) : 0);
  const dim3 grid(unsigned((C + kColTile - 1) / kColTile), unsigned(chunks));
  norm_dw_partial_kernel<<<grid, dim3(kColTile, kRowLanes), 0, stream()>>>(
      dy, x, mean, rstd, mu, part_w.as<double>(), db ? part_b.as<double>() : nullptr, rows, C,
      chunks);
  CUDA_CHECK_LAUNCH("norm_dw_partial_kernel");
  norm_dw_finish_kernel<<<grid_for(C), kThreads, 0, stream()>>>(
      part_w.as<double>(), db ? part_b.as<double>() : nullptr, dw, db, C, chunks);
  CUDA_CHECK_LAUNCH("norm_dw_finish_kernel");
}

// y = (x - mean) rstd w + b per row (b may be null); mean and rstd saved (cpu:: contract).
void layernorm_forward(const float* x, const float* w, const float* b, float* y, float* mean,
                       float* rstd, int64_t rows, int64_t C, double eps) {
  if (rows == 0) return;
  launch_rows(&layernorm_forward_kernel<WarpRow>, &layernorm_forward_kernel<BlockRow>,
              "layernorm_forward_kernel", rows, C, x, w, b, y, mean, rstd, rows, C, eps);
}

// dx written; dw and db (may be null) accumulated (+=), as cpu::layernorm_backward.
void layernorm_backward(const float* dy, const float* x, const float* w, const float* mean,
                        const float* rstd, float* dx, float* dw, float* db, int64_t rows,
                        int64_t C) {
  if (rows == 0 || C == 0) return;
  Scratch mu(size_t(rows) * sizeof(double));
  launch_rows(&layernorm_dx_kernel<WarpRow>, &layernorm_dx_kernel<BlockRow>, "layernorm_dx_kernel",
              rows, C, dy, x, w, mean, rstd, dx, mu.as<double>(), rows, C);
  accumulate_weight_grads(dy, x, mean, rstd, mu.as<double>(), dw, db, rows, C);
}

template <class Owner>
__global__ void rmsnorm_forward_kernel(const float* x, const float* w, float* y, float* rstd,
                                       int64_t rows, int64_t C, double eps) {
  const int64_t r = Owner::row();
  if (r >= rows) return;
  const float* xr = x + r * C;
  float* yr = y + r * C;
  double ss = 0;
  for (int64_t c = Owner::first(); c < C; c += Owner::stride()) ss += double(xr[c]) * double(xr[c]);
  // y uses the rstd it saves, so forward and backward see the same xhat.
  const float rs = float(1.0 / sqrt(Owner::sum(ss) / double(C) + eps));
  if (Owner::leader()) rstd[r] = rs;
  for (int64_t c = Owner::first(); c < C; c += Owner::stride()) yr[c] = xr[c] * rs * w[c];
}

// y = x rstd w, rstd = 1 / sqrt(mean(x^2) + eps) per row; rstd saved.
void rmsnorm_forward(const float* x, const float* w, float* y, float* rstd, int64_t rows, int64_t C,
                     double eps) {
  if (rows == 0) return;
  launch_rows(&rmsnorm_forward_kernel<WarpRow>, &rmsnorm_forward_kernel<BlockRow>,
              "rmsnorm_forward_kernel", rows, C, x, w, y, rstd, rows, C, eps);
}

// dx written; dw accumulated (+=), as cpu::rmsnorm_backward.
void rmsnorm_backward(const float* dy, const float* x, const float* w, const float* rstd, float* dx,
                      float* dw, int64_t rows, int64_t C) {
  if (rows == 0 || C == 0) return;
  launch_rows(&rmsnorm_dx_kernel<WarpRow>, &rmsnorm_dx_kernel<BlockRow>, "rmsnorm_dx_kernel", rows,
              C, dy, x, w, rstd, dx, rows, C);
  accumulate_weight_grads(dy, x, nullptr, rstd, nullptr, dw, nullptr, rows, C);
}

}  // namespace lmlab::cuda
