// Causal grouped-KV attention on the GPU as cuBLAS strided-batched GEMMs plus two row kernels.
// The G = NH / KVH query heads of kv head g are adjacent in q (B, NH, Tq, HS), so for each
// (b, kv head) they form one (G*Tq, HS) matrix: every product below is a single batched GEMM over
// B*KVH, with K and V read in place (never copied per query head), and dk, dv summed over the
// group by the GEMM itself. The forward stores att (B, NH, Tq, Tk), as the CPU kernel does.
#include <cmath>

#include "autograd/kernels/attention.h"
#include "autograd/kernels/cuda/common.cuh"
#include "autograd/kernels/cuda/gemm.cuh"

namespace lmlab::cuda {

// Row `row` of (B*NH*Tq, Tk) holds the scaled scores of query i = row % Tq, at position
// past + i: softmax over keys j <= past + i (row max subtracted), zero beyond, in place.
__global__ void causal_softmax_kernel(float* att, int64_t Tq, int64_t Tk) {
  const int64_t row = blockIdx.x;
  float* a = att + row * Tk;
  const int64_t p = Tk - Tq + row % Tq;  // keys 0..p are visible
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j <= p; j += blockDim.x) m = a[j] > m ? a[j] : m;
  m = block_max(m);
  double s = 0;
  for (int64_t j = threadIdx.x; j <= p; j += blockDim.x) {
    const float e = expf(a[j] - m);
    a[j] = e;
    s += double(e);
  }
  const float inv = float(1.0 / block_sum(s));
  for (int64_t j = threadIdx.x; j < Tk; j += blockDim.x) a[j] = j <= p ? a[j] * inv : 0.0f;
}

// In place on ds, which holds datt = dout v^T on entry:
//   dscores_j = a_j (datt_j - sum_l a_l datt_l) for j <= p (the softmax Jacobian), 0 beyond.
__global__ void attention_dscores_kernel(const float* att, float* ds, int64_t Tq, int64_t Tk) {
  const int64_t row = blockIdx.x;
  const float* a = att + row * Tk;
  float* d = ds + row * Tk;
  const int64_t p = Tk - Tq + row % Tq;
  double weighted = 0;
  for (int64_t j = threadIdx.x; j <= p; j += blockDim.x) weighted += double(a[j]) * double(d[j]);
  const float w = float(block_sum(weighted));
  for (int64_t j = threadIdx.x; j < Tk; j += blockDim.x) d[j] = j <= p ? a[j] * (d[j] - w) : 0.0f;
}

// att = softmax(mask(q k^T / sqrt(HS))), out = att v; cpu::attention_forward's contract.
void attention_forward(const float* q, const float* k, const float* v, float* out, float* att,
                       int64_t B, int64_t NH, int64_t KVH, int64_t Tq, int64_t Tk, int64_t HS) {
  if (B * NH * Tq == 0 || Tk == 0 || HS == 0) return;
  const int64_t G = NH / KVH, rows = G * Tq, batch = B * KVH;
  const float scale = float(1.0 / std::sqrt(double(HS)));
  // scores (G*Tq, Tk) = scale * Q (G*Tq, HS) @ K^T (HS, Tk), written into att
  gemm_strided_batched(false, true, rows, Tk, HS, scale, q, HS, rows * HS, k, HS, Tk * HS, 0.0f,
                       att, Tk, rows * Tk, batch);
  causal_softmax_kernel<<<row_blocks(B * NH * Tq), row_threads(Tk), 0, stream()>>>(att, Tq, Tk);
  CUDA_CHECK_LAUNCH("causal_softmax_kernel");
  // out (G*Tq, HS) = att (G*Tq, Tk) @ V (Tk, HS)
  gemm_strided_batched(false, false, rows, HS, Tk, 1.0f, att, Tk, rows * Tk, v, HS, Tk * HS, 0.0f,
                       out, HS, rows * HS, batch);
}

// dq, dk, dv overwritten; dscores (B, NH, Tq, Tk) is scratch. With s the scaled scores, a = att:
//   term 1: datt = dout v^T                          (GEMM into dscores)
//   term 2: dscores = a (datt - sum_j a datt)        (row kernel)
//   term 3: dq = scale dscores k                     (GEMM)
//   term 4: dk = scale dscores^T q, summed over the group's query heads by the GEMM's inner dim
//   term 5: dv = a^T dout, likewise
void attention_backward(const float* q, const float* k, const float* v, const float* att,
                        const float* dout, float* dq, float* dk, float* dv, float* dscores,
                        int64_t B, int64_t NH, int64_t KVH, int64_t Tq, int64_t Tk, int64_t HS) {
  if (B * NH * Tq == 0 || Tk == 0 || HS == 0) return;
  const int64_t G = NH / KVH, rows = G * Tq, batch = B * KVH;
  const float scale = float(1.0 / std::sqrt(double(HS)));
  gemm_strided_batched(false, true, rows, Tk, HS, 1.0f, dout, HS, rows * HS, v, HS, Tk * HS, 0.0f,
                       dscores, Tk, rows * Tk, batch);
  attention_dscores_kernel<<<row_blocks(B * NH * Tq), row_threads(Tk), 0, stream()>>>(att, dscores,
                                                                                      Tq, Tk);
  CUDA_CHECK_LAUNCH("attention_dscores_kernel");
  gemm_strided_batched(false, false, rows, HS, Tk, scale, dscores, Tk, rows * Tk, k, HS, Tk * HS,
                       0.0f, dq, HS, rows * HS, batch);
  gemm_strided_batched(true, false, Tk, HS, rows, scale, dscores, Tk, rows * Tk, q, HS, rows * HS,
                       0.0f, dk, HS, Tk * HS, batch);
  gemm_strided_batched(true, false, Tk, HS, rows, 1.0f, att, Tk, rows * Tk, dout, HS, rows * HS,
                       0.0f, dv, HS, Tk * HS, batch);
}

}  // namespace lmlab::cuda
