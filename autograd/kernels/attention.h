// Fused causal attention with grouped KV heads (MHA / GQA / MQA) on contiguous buffers:
// q (B, NH, Tq, HS), k and v (B, KVH, Tk, HS), out (B, NH, Tq, HS), att (B, NH, Tq, Tk).
// Query row i sits at position Tk - Tq + i and sees keys j <= it; query head h reads kv head
// h / (NH / KVH). The forward saves the softmax probabilities att (zero above the causal edge).
#pragma once
#include <cstdint>

namespace lmlab::cpu {

// The CPU kernels take q, k, v, out and their gradients in any layout whose head-size dim is
// contiguous: element (b, h, t, c) of a tensor sits at b * batch + h * head + t * pos + c. So the
// (B, T, heads, HS) memory behind nn's transposed head views, and the KV cache's narrowed
// buffers, are read and written without copies. att and dscores are contiguous (B, NH, Tq, Tk).
struct HeadStrides {
  int64_t batch, head, pos;
};
inline HeadStrides contiguous_heads(int64_t heads, int64_t T, int64_t HS) {
  return {heads * T * HS, T * HS, HS};
}

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

void attention_forward(const float* q, const float* k, const float* v, float* out, float* att,
                       int64_t B, int64_t NH, int64_t KVH, int64_t Tq, int64_t Tk, int64_t HS);
void attention_backward(const float* q, const float* k, const float* v, const float* att,
                        const float* dout, float* dq, float* dk, float* dv, float* dscores,
                        int64_t B, int64_t NH, int64_t KVH, int64_t Tq, int64_t Tk, int64_t HS);

}  // namespace lmlab::cuda
