// GEMM: C = alpha * op(A) @ op(B) + beta * C on row-major buffers, op = transpose when the flag is
// set (BLAS semantics; lda/ldb/ldc are row strides). The CPU side calls cblas_sgemm/dgemm.
#pragma once
#include <cstdint>

namespace lmlab::cpu {

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

}  // namespace lmlab::cpu

namespace lmlab::cuda {

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace lmlab::cuda
