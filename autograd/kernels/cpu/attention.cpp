// Causal grouped-KV attention on the CPU: plain loops that vectorise. Scores of one query row
// against all its keys are computed from a transposed copy of the head's K (HS x Tk), so the inner
// loop runs over keys (no horizontal sums); weighted sums of V rows run over HS. Each (b, h)
// (forward, dq) and each (b, kv head) (dk, dv) is computed by one thread in a fixed order, so
// results are bitwise identical for any thread count.
#include "autograd/kernels/attention.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <vector>

#include "autograd/kernels/cpu/fast_math.h"

namespace lmlab::cpu {

static constexpr int64_t kParallelMin = 1 << 15;  // multiply-adds, B * NH * Tq * Tk * HS

// out[j] = sum_c x[c] * mt[c * ld + j] for j < n: a row vector times a transposed matrix (HS x n,
// row stride ld), vectorised over j.
template <class T>
static void row_times(const T* x, const T* mt, int64_t ld, int64_t HS, T* out, int64_t n) {
  std::fill(out, out + n, T(0));
  for (int64_t c = 0; c < HS; ++c) {
    const T xc = x[c];
    const T* m = mt + c * ld;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) out[j] += xc * m[j];
  }
}

// mt (HS x n) = transpose of m (n x HS).
template <class T>
static void transpose_into(const T* m, int64_t n, int64_t HS, T* mt) {
  for (int64_t j = 0; j < n; ++j)
    for (int64_t c = 0; c < HS; ++c) mt[c * n + j] = m[j * HS + c];
}

// y += alpha * x
template <class T>
static void axpy(T alpha, const T* x, T* y, int64_t n) {
#pragma omp simd
  for (int64_t c = 0; c < n; ++c) y[c] += alpha * x[c];
}

template <class T>
void attention_forward(const T* q, const T* k, const T* v, T* out, T* att, int64_t B, int64_t NH,
                       int64_t KVH, int64_t Tq, int64_t Tk, int64_t HS) {
  assert(KVH > 0 && NH % KVH == 0 && Tq <= Tk);
  const int64_t G = NH / KVH, past = Tk - Tq;
  const T scale = T(1.0 / std::sqrt(double(HS)));
  const int64_t work = B * NH * Tq * Tk * HS;
#pragma omp parallel if (work >= kParallelMin)
  {
    std::vector<T> kt(size_t(HS * Tk));
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < B * NH; ++bh) {
      const int64_t b = bh / NH, kvh = (bh % NH) / G;
      const T* kh = k + (b * KVH + kvh) * Tk * HS;
      const T* vh = v + (b * KVH + kvh) * Tk * HS;
      transpose_into(kh, Tk, HS, kt.data());
      for (int64_t i = 0; i < Tq; ++i) {
        const int64_t p = past + i;  // absolute position of this query: keys 0..p are visible
        const T* qi = q + (bh * Tq + i) * HS;
        T* ai = att + (bh * Tq + i) * Tk;
        T* oi = out + (bh * Tq + i) * HS;
        row_times(qi, kt.data(), Tk, HS, ai, p + 1);
        T m = -std::numeric_limits<T>::infinity();
        for (int64_t j = 0; j <= p; ++j) {
          ai[j] *= scale;
          m = std::max(m, ai[j]);
        }
        T sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j <= p; ++j) {
          ai[j] = fast_exp(ai[j] - m);
          sum += ai[j];
        }
        const T inv = T(1) / sum;
#pragma omp simd
        for (int64_t j = 0; j <= p; ++j) ai[j] *= inv;
        std::fill(ai + p + 1, ai + Tk, T(0));
        std::fill(oi, oi + HS, T(0));
        for (int64_t j = 0; j <= p; ++j) axpy(ai[j], vh + j * HS, oi, HS);
      }
    }
  }
}

template <class T>
void attention_backward(const T* q, const T* k, const T* v, const T* att, const T* dout, T* dq,
                        T* dk, T* dv, T* dscores, int64_t B, int64_t NH, int64_t KVH, int64_t Tq,
                        int64_t Tk, int64_t HS) {
  assert(KVH > 0 && NH % KVH == 0 && Tq <= Tk);
  const int64_t G = NH / KVH, past = Tk - Tq;
  const T scale = T(1.0 / std::sqrt(double(HS)));
  const int64_t work = B * NH * Tq * Tk * HS;

  // Pass 1, per (b, h): score gradients and dq. With s = scaled scores and a = softmax(s),
  //   term 1: datt_j = dout_i . v_j
  //   term 2: dscores_j = a_j (datt_j - sum_l a_l datt_l)   (the softmax Jacobian)
  //   term 3: dq_i = scale * sum_j dscores_j k_j
#pragma omp parallel if (work >= kParallelMin)
  {
    std::vector<T> vt(size_t(HS * Tk));
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < B * NH; ++bh) {
      const int64_t b = bh / NH, kvh = (bh % NH) / G;
      const T* kh = k + (b * KVH + kvh) * Tk * HS;
      const T* vh = v + (b * KVH + kvh) * Tk * HS;
      transpose_into(vh, Tk, HS, vt.data());
      for (int64_t i = 0; i < Tq; ++i) {
        const int64_t p = past + i;
        const T* ai = att + (bh * Tq + i) * Tk;
        const T* doi = dout + (bh * Tq + i) * HS;
        T* dsi = dscores + (bh * Tq + i) * Tk;
        T* dqi = dq + (bh * Tq + i) * HS;
        row_times(doi, vt.data(), Tk, HS, dsi, p + 1);
        T weighted = 0;
#pragma omp simd reduction(+ : weighted)
        for (int64_t j = 0; j <= p; ++j) weighted += ai[j] * dsi[j];
#pragma omp simd
        for (int64_t j = 0; j <= p; ++j) dsi[j] = ai[j] * (dsi[j] - weighted);
        std::fill(dsi + p + 1, dsi + Tk, T(0));
        std::fill(dqi, dqi + HS, T(0));
        for (int64_t j = 0; j <= p; ++j) axpy(dsi[j], kh + j * HS, dqi, HS);
        for (int64_t c = 0; c < HS; ++c) dqi[c] *= scale;
      }
    }
  }

  // Pass 2, per (b, kv head): each key row j collects from every query head of its group (in
  // head order, then query order) and every query i that sees it (position past + i >= j):
  //   term 4: dk_j = scale * sum dscores_ij q_i
  //   term 5: dv_j = sum a_ij dout_i
#pragma omp parallel for schedule(static) if (work >= kParallelMin)
  for (int64_t bk = 0; bk < B * KVH; ++bk) {
    const int64_t b = bk / KVH, kvh = bk % KVH;
    for (int64_t j = 0; j < Tk; ++j) {
      T* dkj = dk + (bk * Tk + j) * HS;
      T* dvj = dv + (bk * Tk + j) * HS;
      std::fill(dkj, dkj + HS, T(0));
      std::fill(dvj, dvj + HS, T(0));
      for (int64_t g = 0; g < G; ++g) {
        const int64_t bh = b * NH + kvh * G + g;
        for (int64_t i = std::max<int64_t>(0, j - past); i < Tq; ++i) {
          const int64_t row = bh * Tq + i;
          axpy(dscores[row * Tk + j], q + row * HS, dkj, HS);
          axpy(att[row * Tk + j], dout + row * HS, dvj, HS);
        }
      }
      for (int64_t c = 0; c < HS; ++c) dkj[c] *= scale;
    }
  }
}

template void attention_forward<float>(const float*, const float*, const float*, float*, float*,
                                       int64_t, int64_t, int64_t, int64_t, int64_t, int64_t);
template void attention_forward<double>(const double*, const double*, const double*, double*,
                                        double*, int64_t, int64_t, int64_t, int64_t, int64_t,
                                        int64_t);
template void attention_backward<float>(const float*, const float*, const float*, const float*,
                                        const float*, float*, float*, float*, float*, int64_t,
                                        int64_t, int64_t, int64_t, int64_t, int64_t);
template void attention_backward<double>(const double*, const double*, const double*, const double*,
                                         const double*, double*, double*, double*, double*, int64_t,
                                         int64_t, int64_t, int64_t, int64_t, int64_t);

}  // namespace lmlab::cpu
