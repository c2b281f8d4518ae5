// Causal grouped-KV attention on the CPU. Each head's products are small GEMMs through cpu::gemm
// (oneDNN or OpenBLAS; called inside our OpenMP loop, where they run on the calling thread): scores
// = q k^T over the whole (Tq, Tk) block, then a masked row softmax, then att v. The masked part of
// each score row is computed and discarded (at most half the score FLOPs) in exchange for GEMM
// speed: hand-written per-row loops over a few dozen keys ran at ~7 GFLOP/s. Each (b, h) (forward,
// dq) and each (b, kv head) (dk, dv) is computed by one thread in a fixed order, so results are
// bitwise identical for any thread count. Tensors are addressed through HeadStrides
// (kernels/attention.h): nn's (B, T, heads, HS) layouts are read and written in place.
#include "autograd/kernels/attention.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

#include "autograd/kernels/cpu/fast_math.h"
#include "autograd/kernels/matmul.h"

namespace lmlab::cpu {

static constexpr int64_t kParallelMin = 1 << 15;  // multiply-adds, B * NH * Tq * Tk * HS

// One score row in place: softmax over keys 0..p, zero beyond (the causal mask).
template <class T>
static void masked_softmax_row(T* a, int64_t p, int64_t Tk) {
  T m = -std::numeric_limits<T>::infinity();
  for (int64_t j = 0; j <= p; ++j) m = std::max(m, a[j]);
  T sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j <= p; ++j) {
    a[j] = fast_exp(a[j] - m);
    sum += a[j];
  }
  const T inv = T(1) / sum;
#pragma omp simd
  for (int64_t j = 0; j <= p; ++j) a[j] *= inv;
  std::fill(a + p + 1, a + Tk, T(0));
}

// Element (b, h, 0, 0) of a head-strided tensor.
template <class P>
static P* head(P* base, HeadStrides s, int64_t b, int64_t h) {
  return base + b * s.batch + h * s.head;
}

template <class T>
void attention_forward(const T* q, HeadStrides sq, const T* k, HeadStrides sk, const T* v,
                       HeadStrides sv, T* out, HeadStrides so, T* att, int64_t B, int64_t NH,
                       int64_t KVH, int64_t Tq, int64_t Tk, int64_t HS) {
  assert(KVH > 0 && NH % KVH == 0 && Tq <= Tk);
  const int64_t G = NH / KVH, past = Tk - Tq;
  const T scale = T(1.0 / std::sqrt(double(HS)));
  const int64_t work = B * NH * Tq * Tk * HS;
#pragma omp parallel for schedule(static) if (work >= kParallelMin)
  for (int64_t bh = 0; bh < B * NH; ++bh) {
    const int64_t b = bh / NH, h = bh % NH, kvh = h / G;
    T* ah = att + bh * Tq * Tk;
    // scores (Tq, Tk) = scale * q (Tq, HS) k^T; query i sits at position past + i.
    gemm<T>(false, true, Tq, Tk, HS, scale, head(q, sq, b, h), sq.pos, head(k, sk, b, kvh), sk.pos,
            T(0), ah, Tk);
    for (int64_t i = 0; i < Tq; ++i) masked_softmax_row(ah + i * Tk, past + i, Tk);
    // out (Tq, HS) = att (Tq, Tk) v: masked probabilities are exact zeros.
    gemm<T>(false, false, Tq, HS, Tk, T(1), ah, Tk, head(v, sv, b, kvh), sv.pos, T(0),
            head(out, so, b, h), so.pos);
  }
}

template <class T>
void attention_backward(const T* q, HeadStrides sq, const T* k, HeadStrides sk, const T* v,
                        HeadStrides sv, const T* att, const T* dout, HeadStrides sdo, T* dq,
                        HeadStrides sdq, T* dk, T* dv, HeadStrides sdkv, T* dscores, int64_t B,
                        int64_t NH, int64_t KVH, int64_t Tq, int64_t Tk, int64_t HS) {
  assert(KVH > 0 && NH % KVH == 0 && Tq <= Tk);
  const int64_t G = NH / KVH, past = Tk - Tq;
  const T scale = T(1.0 / std::sqrt(double(HS)));
  const int64_t work = B * NH * Tq * Tk * HS;

  // Pass 1, per (b, h): score gradients and dq. With s = scaled scores and a = softmax(s),
  //   term 1: datt = dout v^T
  //   term 2: dscores_ij = a_ij (datt_ij - sum_l a_il datt_il)   (the softmax Jacobian; zero
  //           where a is masked)
  //   term 3: dq = scale * dscores k
#pragma omp parallel for schedule(static) if (work >= kParallelMin)
  for (int64_t bh = 0; bh < B * NH; ++bh) {
    const int64_t b = bh / NH, h = bh % NH, kvh = h / G;
    const T* ah = att + bh * Tq * Tk;
    T* dsh = dscores + bh * Tq * Tk;
    gemm<T>(false, true, Tq, Tk, HS, T(1), head(dout, sdo, b, h), sdo.pos, head(v, sv, b, kvh),
            sv.pos, T(0), dsh, Tk);
    for (int64_t i = 0; i < Tq; ++i) {
      const int64_t p = past + i;
      const T* ai = ah + i * Tk;
      T* dsi = dsh + i * Tk;
      T weighted = 0;
#pragma omp simd reduction(+ : weighted)
      for (int64_t j = 0; j <= p; ++j) weighted += ai[j] * dsi[j];
#pragma omp simd
      for (int64_t j = 0; j <= p; ++j) dsi[j] = ai[j] * (dsi[j] - weighted);
      std::fill(dsi + p + 1, dsi + Tk, T(0));
    }
    gemm<T>(false, false, Tq, HS, Tk, scale, dsh, Tk, head(k, sk, b, kvh), sk.pos, T(0),
            head(dq, sdq, b, h), sdq.pos);
  }

  // Pass 2, per (b, kv head): the group's query heads in head order add into one dk / dv.
  //   term 4: dk = scale * sum_g dscores_g^T q_g      term 5: dv = sum_g att_g^T dout_g
#pragma omp parallel for schedule(static) if (work >= kParallelMin)
  for (int64_t bk = 0; bk < B * KVH; ++bk) {
    const int64_t b = bk / KVH, kvh = bk % KVH;
    T* dkh = head(dk, sdkv, b, kvh);
    T* dvh = head(dv, sdkv, b, kvh);
    for (int64_t g = 0; g < G; ++g) {
      const int64_t h = kvh * G + g, bh = b * NH + h;
      const T beta = g == 0 ? T(0) : T(1);
      gemm<T>(true, false, Tk, HS, Tq, scale, dscores + bh * Tq * Tk, Tk, head(q, sq, b, h), sq.pos,
              beta, dkh, sdkv.pos);
      gemm<T>(true, false, Tk, HS, Tq, T(1), att + bh * Tq * Tk, Tk, head(dout, sdo, b, h), sdo.pos,
              beta, dvh, sdkv.pos);
    }
  }
}

#define LMLAB_ATTENTION(T)                                                                        \
  template void attention_forward<T>(const T*, HeadStrides, const T*, HeadStrides, const T*,      \
                                     HeadStrides, T*, HeadStrides, T*, int64_t, int64_t, int64_t, \
                                     int64_t, int64_t, int64_t);                                  \
  template void attention_backward<T>(const T*, HeadStrides, const T*, HeadStrides, const T*,     \
                                      HeadStrides, const T*, const T*, HeadStrides, T*,           \
                                      HeadStrides, T*, T*, HeadStrides, T*, int64_t, int64_t,     \
                                      int64_t, int64_t, int64_t, int64_t);
LMLAB_ATTENTION(float)
LMLAB_ATTENTION(double)
#undef LMLAB_ATTENTION

}  // namespace lmlab::cpu
