// Fused causal attention with grouped KV heads (MHA / GQA / MQA) on contiguous buffers:
// q (B, NH, Tq, HS), k and v (B, KVH, Tk, HS), out (B, NH, Tq, HS), att (B, NH, Tq, Tk).
// Query row i sits at position Tk - Tq + i and sees keys j <= it; query head h reads kv head
// h / (NH / KVH). The forward saves the softmax probabilities att (zero above the causal edge).
#pragma once
#include <cstdint>

namespace lmlab::cpu {

// att = softmax(mask(q k^T / sqrt(HS))) row by row (row max subtracted), out = att v.
template <class T>
void attention_forward(const T* q, const T* k, const T* v, T* out, T* att, int64_t B, int64_t NH,
                       int64_t KVH, int64_t Tq, int64_t Tk, int64_t HS);
// dq, dk, dv are overwritten. dscores (B, NH, Tq, Tk) is scratch space for the score gradients.
//   datt = dout v^T;  dscores = att * (datt - sum_j(datt * att));  dq = dscores k / sqrt(HS);
//   dk = sum over the group's query heads of dscores^T q / sqrt(HS);  dv = same of att^T dout.
template <class T>
void attention_backward(const T* q, const T* k, const T* v, const T* att, const T* dout, T* dq,
                        T* dk, T* dv, T* dscores, int64_t B, int64_t NH, int64_t KVH, int64_t Tq,
                        int64_t Tk, int64_t HS);

}  // namespace lmlab::cpu

namespace lmlab::cuda {

void attention_forward(const float* q, const float* k, const float* v, float* out, float* att,
                       int64_t B, int64_t NH, int64_t KVH, int64_t Tq, int64_t Tk, int64_t HS);
void attention_backward(const float* q, const float* k, const float* v, const float* att,
                        const float* dout, float* dq, float* dk, float* dv, float* dscores,
                        int64_t B, int64_t NH, int64_t KVH, int64_t Tq, int64_t Tk, int64_t HS);

}  // namespace lmlab::cuda
