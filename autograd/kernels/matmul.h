// GEMM: C = alpha * op(A) @ op(B) + beta * C on row-major buffers, op = transpose when the flag is
// set (BLAS semantics; lda/ldb/ldc are row strides). The CPU side calls oneDNN's dnnl_sgemm or
// OpenBLAS's cblas_sgemm / cblas_dgemm (kernels/cpu/matmul.cpp).
#pragma once
#include <cstdint>
#include <string>

#include "autograd/types.h"

namespace lmlab::cpu {

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

// The library that runs float32 GEMMs in this process, e.g. "oneDNN 2.6.3" or "OpenBLAS"
// (float64 always goes to OpenBLAS). oneDNN when lmlab was built with it, unless the environment
// sets LMLAB_GEMM=openblas.
std::string sgemm_backend();

}  // namespace lmlab::cpu

namespace lmlab::cuda {

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
// bfloat16 operands and result, fp32 accumulation (CUBLAS_COMPUTE_32F on bf16 tensor cores);
// C rounded to bf16 once (mixed precision, autograd/autocast.h).
void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const bf16* A, int64_t lda, const bf16* B, int64_t ldb, float beta, bf16* C,
               int64_t ldc);
// bfloat16 operands, float32 result (not rounded to bf16; beta reads float32 C): the fused LM
// head's GEMMs under autocast (linear_cross_entropy).
void gemm_bf16_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                   const bf16* A, int64_t lda, const bf16* B, int64_t ldb, float beta, float* C,
                   int64_t ldc);

}  // namespace lmlab::cuda
