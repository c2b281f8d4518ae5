// LayerNorm and RMSNorm kernels on the CPU (llm.c style forward/backward pairs). Rows are split
// across OpenMP threads; weight gradients are summed per fixed chunk of rows and the chunks are
// combined in index order, so every result is bitwise identical for any thread count.
#include "autograd/kernels/norm.h"

#include <omp.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <vector>

namespace lmlab::cpu {

static constexpr int64_t kParallelMin = 1 << 14;  // elements; below this a thread team costs more
static constexpr int64_t kMinChunkRows = 8;
static constexpr int64_t kMaxChunks = 64;

// The number of row chunks for the dw/db partial sums. It depends on `rows` only (never on the
// thread count), which is what makes dw and db reproducible.
static int64_t chunk_count(int64_t rows) {
  return std::clamp<int64_t>((rows + kMinChunkRows - 1) / kMinChunkRows, 1, kMaxChunks);
}

// part holds `chunks` rows of C partial sums; adds their total, chunk 0 first, into out.
template <class T>
static void add_partials(std::vector<double>& part, int64_t chunks, int64_t C, T* out) {
  for (int64_t k = 1; k < chunks; ++k) {
    const double* p = part.data() + k * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) part[c] += p[c];
  }
  for (int64_t c = 0; c < C; ++c) out[c] += T(part[c]);
}

template <class T>
void layernorm_forward(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, int64_t rows,
                       int64_t C, double eps) {
  assert(C > 0 && eps > 0);
#pragma omp parallel for schedule(static) if (rows * C >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * C;
    T* yr = y + r * C;
    // Sums of (x - k) with k = x[0]: since (mean - k)^2 <= C var, sum((x-k)^2)/C - (mean-k)^2
    // loses at most log2(C) bits to cancellation, and an all-equal row gets var = 0 exactly.
    const double k = double(xr[0]);
    double s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
    for (int64_t c = 0; c < C; ++c) {
      const double d = double(xr[c]) - k;
      s1 += d;
      s2 += d * d;
    }
    const double dm = s1 / double(C);
    const double var = std::max(s2 / double(C) - dm * dm, 0.0);
    const double m = k + dm;
    const double rs = 1.0 / std::sqrt(var + eps);
    mean[r] = T(m);
    rstd[r] = T(rs);
    if (b) {
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) yr[c] = T((double(xr[c]) - m) * rs) * w[c] + b[c];
    } else {
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) yr[c] = T((double(xr[c]) - m) * rs) * w[c];
    }
  }
}

template <class T>
void layernorm_backward(const T* dy, const T* x, const T* w, const T* mean, const T* rstd, T* dx,
                        T* dw, T* db, int64_t rows, int64_t C) {
  const int64_t chunks = chunk_count(rows);
  std::vector<double> dw_part(size_t(chunks * C), 0.0);
  std::vector<double> db_part(db ? size_t(chunks * C) : 0, 0.0);
#pragma omp parallel for schedule(static) if (chunks > 1 && rows * C >= kParallelMin)
  for (int64_t kc = 0; kc < chunks; ++kc) {
    double* dwp = dw_part.data() + kc * C;
    double* dbp = db ? db_part.data() + kc * C : nullptr;
    for (int64_t r = rows * kc / chunks; r < rows * (kc + 1) / chunks; ++r) {
      const T* dyr = dy + r * C;
      const T* xr = x + r * C;
      T* dxr = dx + r * C;
      const double m = double(mean[r]), rs = double(rstd[r]);
      // xhat is re-centred by its row mean mu, which is 0 but for the rounding of a float `mean`
      // (that rounding would bias every xhat of a row whose |mean| >> std).
      double sum_g = 0, sum_gx = 0, sum_x = 0;
#pragma omp simd reduction(+ : sum_g, sum_gx, sum_x)
      for (int64_t c = 0; c < C; ++c) {
        const double xh = (double(xr[c]) - m) * rs;
        const double g = double(dyr[c]) * double(w[c]);
        sum_g += g;
        sum_gx += g * xh;
        sum_x += xh;
      }
      const double mu = sum_x / double(C);
      const double mean_g = sum_g / double(C);
      const double mean_gx = sum_gx / double(C) - mu * mean_g;  // mean(g * (xh - mu))
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const double xh = (double(xr[c]) - m) * rs - mu;
        const double g = double(dyr[c]) * double(w[c]);
        // term 1: g (through xhat's numerator); term 2: -mean(g) (through the mean);
        // term 3: -xhat * mean(g * xhat) (through rstd). docs/layernorm.md, section 1.
        dxr[c] = T(rs * (g - mean_g - xh * mean_gx));
        dwp[c] += double(dyr[c]) * xh;
      }
      if (dbp) {
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) dbp[c] += double(dyr[c]);
      }
    }
  }
  add_partials(dw_part, chunks, C, dw);
  if (db) add_partials(db_part, chunks, C, db);
}

template <class T>
void rmsnorm_forward(const T* x, const T* w, T* y, T* rstd, int64_t rows, int64_t C, double eps) {
  assert(C > 0 && eps > 0);
#pragma omp parallel for schedule(static) if (rows * C >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * C;
    T* yr = y + r * C;
    double ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int64_t c = 0; c < C; ++c) ss += double(xr[c]) * double(xr[c]);
    // y uses the rstd it saves, so forward and backward see the same xhat.
    const T rs = T(1.0 / std::sqrt(ss / double(C) + eps));
    rstd[r] = rs;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) yr[c] = xr[c] * rs * w[c];
  }
}

template <class T>
void rmsnorm_backward(const T* dy, const T* x, const T* w, const T* rstd, T* dx, T* dw,
                      int64_t rows, int64_t C) {
  const int64_t chunks = chunk_count(rows);
  std::vector<double> dw_part(size_t(chunks * C), 0.0);
#pragma omp parallel for schedule(static) if (chunks > 1 && rows * C >= kParallelMin)
  for (int64_t kc = 0; kc < chunks; ++kc) {
    double* dwp = dw_part.data() + kc * C;
    for (int64_t r = rows * kc / chunks; r < rows * (kc + 1) / chunks; ++r) {
      const T* dyr = dy + r * C;
      const T* xr = x + r * C;
      T* dxr = dx + r * C;
      const double rs = double(rstd[r]);
      double sum_gx = 0;  // sum(g * x); times rstd it is sum(g * xhat)
#pragma omp simd reduction(+ : sum_gx)
      for (int64_t c = 0; c < C; ++c) sum_gx += double(dyr[c]) * double(w[c]) * double(xr[c]);
      const double mean_gx = sum_gx * rs / double(C);
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const double xh = double(xr[c]) * rs;
        const double g = double(dyr[c]) * double(w[c]);
        // term 1: g (through x); term 2: -xhat * mean(g * xhat) (through rstd).
        // docs/layernorm.md, section 2.
        dxr[c] = T(rs * (g - xh * mean_gx));
        dwp[c] += double(dyr[c]) * xh;
      }
    }
  }
  add_partials(dw_part, chunks, C, dw);
}

template void layernorm_forward<float>(const float*, const float*, const float*, float*, float*,
                                       float*, int64_t, int64_t, double);
template void layernorm_forward<double>(const double*, const double*, const double*, double*,
                                        double*, double*, int64_t, int64_t, double);
template void layernorm_backward<float>(const float*, const float*, const float*, const float*,
                                        const float*, float*, float*, float*, int64_t, int64_t);
template void layernorm_backward<double>(const double*, const double*, const double*, const double*,
                                         const double*, double*, double*, double*, int64_t,
                                         int64_t);
template void rmsnorm_forward<float>(const float*, const float*, float*, float*, int64_t, int64_t,
                                     double);
template void rmsnorm_forward<double>(const double*, const double*, double*, double*, int64_t,
                                      int64_t, double);
template void rmsnorm_backward<float>(const float*, const float*, const float*, const float*,
                                      float*, float*, int64_t, int64_t);
template void rmsnorm_backward<double>(const double*, const double*, const double*, const double*,
                                       double*, double*, int64_t, int64_t);

}  // namespace lmlab::cpu
