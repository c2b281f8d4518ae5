// Fused causal attention with grouped KV heads (MHA / GQA / MQA): q (B, NH, Tq, HS), k and v
// (B, KVH, Tk, HS), out (B, NH, Tq, HS), att (B, NH, Tq, Tk). Query row i sits at position
// Tk - Tq + i and sees keys j <= it; query head h reads kv head h / (NH / KVH). The forward saves
// the softmax probabilities att (zero above the causal edge); the flash kernels (cuda::flash_*)
// save the per-row log-sum-exp instead (docs/attention.md).
#pragma once
#include <cstdint>

#include "autograd/types.h"

namespace lmlab::kernels {

// The attention kernels take q, k, v, out and their gradients in any layout whose head-size dim is
// contiguous: element (b, h, t, c) of a tensor sits at b * batch + h * head + t * pos + c. So the
// (B, T, heads, HS) memory behind nn's transposed head views, and the KV cache's narrowed
// buffers, are read and written without copies. att and dscores are contiguous (B, NH, Tq, Tk).
// Shared by both backends (cpu::HeadStrides and cuda::HeadStrides name this one struct).
struct HeadStrides {
  int64_t batch, head, pos;
};
inline HeadStrides contiguous_heads(int64_t heads, int64_t T, int64_t HS) {
  return {heads * T * HS, T * HS, HS};
}

}  // namespace lmlab::kernels

namespace lmlab::cpu {

using kernels::contiguous_heads;
using kernels::HeadStrides;

// att = softmax(mask(q k^T / sqrt(HS))) row by row (row max subtracted), out = att v.
template <class T>
void attention_forward(const T* q, HeadStrides sq, const T* k, HeadStrides sk, const T* v,
                       HeadStrides sv, T* out, HeadStrides so, T* att, int64_t B, int64_t NH,
                       int64_t KVH, int64_t Tq, int64_t Tk, int64_t HS);
// dq, dk, dv are overwritten (dq in q's layout, dk / dv in sdk's). dscores is scratch space.
//   datt = dout v^T;  dscores = att * (datt - sum_j(datt * att));  dq = dscores k / sqrt(HS);
//   dk = sum over the group's query heads of dscores^T q / sqrt(HS);  dv = same of att^T dout.
template <class T>
void attention_backward(const T* q, HeadStrides sq, const T* k, HeadStrides sk, const T* v,
                        HeadStrides sv, const T* att, const T* dout, HeadStrides sdo, T* dq,
                        HeadStrides sdq, T* dk, T* dv, HeadStrides sdkv, T* dscores, int64_t B,
                        int64_t NH, int64_t KVH, int64_t Tq, int64_t Tk, int64_t HS);

}  // namespace lmlab::cpu

namespace lmlab::cuda {

using kernels::contiguous_heads;
using kernels::HeadStrides;

// The cuBLAS path, on contiguous buffers: att = softmax(mask(q k^T / sqrt(HS))), out = att v, and
// the backward of cpu::attention_backward's contract (dscores is scratch).
void attention_forward(const float* q, const float* k, const float* v, float* out, float* att,
                       int64_t B, int64_t NH, int64_t KVH, int64_t Tq, int64_t Tk, int64_t HS);
void attention_backward(const float* q, const float* k, const float* v, const float* att,
                        const float* dout, float* dq, float* dk, float* dv, float* dscores,
                        int64_t B, int64_t NH, int64_t KVH, int64_t Tq, int64_t Tk, int64_t HS);

// Flash attention (FlashAttention-2, Dao 2023; docs/attention.md, "Flash kernels"): the same
// function without att. Q, K, V tiles of 64 rows go through shared memory with an online softmax,
// so no (Tq, Tk) matrix is ever in global memory; the forward saves lse (B, NH, Tq), contiguous:
//   lse_i = log sum_{j <= p(i)} exp(s_ij),   s_ij = q_i . k_j / sqrt(HS),
// and the backward recomputes a_ij = exp(s_ij - lse_i) from it. Inputs and outputs are addressed
// through HeadStrides (the head-size dim contiguous), as the CPU kernels are. With set_tf32(true)
// the products run on tensor cores (WMMA TF32 m16n16k8, fp32 accumulation: ~1e-3 relative, as
// cuBLAS's TF32); otherwise as fp32 FMAs on the CUDA cores (exact to fp32 rounding, several times
// slower: a reference and fallback). Served head sizes: 1..128 (padded with zeros to 16, 32, 64 or
// 128 in shared memory); the entry points throw lmlab::Error for any other.
inline bool flash_attention_supported(int64_t HS) { return HS >= 1 && HS <= 128; }

// out (so's layout) and lse (B, NH, Tq) are overwritten.
void flash_attention_forward(const float* q, HeadStrides sq, const float* k, HeadStrides sk,
                             const float* v, HeadStrides sv, float* out, HeadStrides so, float* lse,
                             int64_t B, int64_t NH, int64_t KVH, int64_t Tq, int64_t Tk,
                             int64_t HS);
// dq (sdq's layout), dk and dv (sdkv's) are overwritten, no zero fill needed; out and lse are the
// forward's. With a_ij = exp(s_ij - lse_i) and D_i = dout_i . out_i (= sum_j a_ij datt_ij):
//   dscores_ij = a_ij (dout_i . v_j - D_i);  dq_i = scale sum_j dscores_ij k_j;
//   dk_j = scale sum over the group's heads and rows i of dscores_ij q_i;  dv_j = same of a_ij
//   dout_i.
// Deterministic: every output element is summed by one thread in a fixed order (no atomics).
void flash_attention_backward(const float* q, HeadStrides sq, const float* k, HeadStrides sk,
                              const float* v, HeadStrides sv, const float* out, HeadStrides so,
                              const float* lse, const float* dout, HeadStrides sdo, float* dq,
                              HeadStrides sdq, float* dk, float* dv, HeadStrides sdkv, int64_t B,
                              int64_t NH, int64_t KVH, int64_t Tq, int64_t Tk, int64_t HS);

// bfloat16 in and out (mixed precision, autograd/autocast.h; lse stays float): the same kernels and
// contracts, with bf16 tiles widened into the fp32 shared-memory tiles as they load (exact: a bf16
// value is a TF32 value), the products always on tensor cores (WMMA TF32, fp32 accumulation: so
// bf16 x bf16 products are exact and only P and dS are rounded, to TF32), softmax statistics in
// fp32, and out, dq, dk, dv rounded to bf16 once, as they are stored.
void flash_attention_forward(const bf16* q, HeadStrides sq, const bf16* k, HeadStrides sk,
                             const bf16* v, HeadStrides sv, bf16* out, HeadStrides so, float* lse,
                             int64_t B, int64_t NH, int64_t KVH, int64_t Tq, int64_t Tk,
                             int64_t HS);
void flash_attention_backward(const bf16* q, HeadStrides sq, const bf16* k, HeadStrides sk,
                              const bf16* v, HeadStrides sv, const bf16* out, HeadStrides so,
                              const float* lse, const bf16* dout, HeadStrides sdo, bf16* dq,
                              HeadStrides sdq, bf16* dk, bf16* dv, HeadStrides sdkv, int64_t B,
                              int64_t NH, int64_t KVH, int64_t Tq, int64_t Tk, int64_t HS);

}  // namespace lmlab::cuda
