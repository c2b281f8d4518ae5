// The strided-batched row-major GEMM behind cuda::gemm and the attention kernels (matmul.cu).
#pragma once
#include <cstdint>

namespace lmlab::cuda {

// For b < batch: C_b (M, N) = alpha * op(A_b) @ op(B_b) + beta * C_b, with X_b = X + b * stride_x,
// row-major buffers and row strides lda / ldb / ldc (cpu::gemm's conventions). One
// cublasGemmStridedBatchedEx call, fp32 compute, TF32 tensor cores when set_tf32(true).
void gemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                          const float* A, int64_t lda, int64_t stride_a, const float* B,
                          int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc,
                          int64_t stride_c, int64_t batch);

}  // namespace lmlab::cuda
