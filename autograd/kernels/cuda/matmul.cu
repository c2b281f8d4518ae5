// GEMM on the GPU through cuBLAS (cublasGemmStridedBatchedEx: fp32 in and out, or bf16 in and out
// with fp32 accumulation). cuBLAS is
// column-major: a row-major C (M, N) is the column-major C^T (N, M) = op(B)^T op(A)^T, so every
// call swaps the operands and passes N, M for M, N. No extra kernel, no copies.
#include <climits>

#include "autograd/kernels/cuda/common.cuh"
#include "autograd/kernels/cuda/gemm.cuh"
#include "autograd/kernels/cuda_runtime.h"
#include "autograd/kernels/matmul.h"

namespace lmlab::cuda {

static cublasOperation_t flag(bool trans) { return trans ? CUBLAS_OP_T : CUBLAS_OP_N; }

static int as_int(int64_t v, const char* what) {
  if (v < 0 || v > int64_t(INT_MAX))
    throw Error(std::string("[matmul] ") + what + " = " + std::to_string(v) +
                " does not fit cuBLAS's 32-bit sizes");
  return int(v);
}

namespace {

// Element types of a GEMM's operands (A and B alike) and of its result C.
struct Types {
  cudaDataType ab, c;
};

// One cublasGemmStridedBatchedEx on row-major buffers, fp32 scale factors and accumulation.
void gemm_ex(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
             const void* A, int64_t lda, int64_t stride_a, const void* B, int64_t ldb,
             int64_t stride_b, float beta, void* C, int64_t ldc, int64_t stride_c, int64_t batch,
             Types type, cublasComputeType_t compute, const char* what) {
  if (M == 0 || N == 0 || batch == 0) return;
  // K == 0 is a product of empty sums: C = beta C. cuBLAS does that for us when k = 0.
  CUBLAS_CHECK(cublas().gemm_strided_batched_ex(
      cublas_handle(), flag(trans_b), flag(trans_a), as_int(N, "N"), as_int(M, "M"), as_int(K, "K"),
      &alpha, B, type.ab, as_int(ldb, "ldb"), stride_b, A, type.ab, as_int(lda, "lda"), stride_a,
      &beta, C, type.c, as_int(ldc, "ldc"), stride_c, as_int(batch, "batch"), compute,
      CUBLAS_GEMM_DEFAULT));
  profile_mark(what);
}

}  // namespace

void gemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                          const float* A, int64_t lda, int64_t stride_a, const float* B,
                          int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc,
                          int64_t stride_c, int64_t batch) {
  const cublasComputeType_t compute =
      tf32_enabled() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  gemm_ex(trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc,
          stride_c, batch, {CUDA_R_32F, CUDA_R_32F}, compute,
          batch > 1 ? "cublasGemmStridedBatchedEx (batched)" : "cublasGemmStridedBatchedEx");
}

// C (M, N) = alpha * op(A) (M, K) @ op(B) (K, N) + beta * C, row-major (cpu::gemm's contract).
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_strided_batched(trans_a, trans_b, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const bf16* A, int64_t lda, const bf16* B, int64_t ldb, float beta, bf16* C,
               int64_t ldc) {
  gemm_ex(trans_a, trans_b, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1,
          {CUDA_R_16BF, CUDA_R_16BF}, CUBLAS_COMPUTE_32F, "cublasGemmStridedBatchedEx (bf16)");
}

void gemm_bf16_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                   const bf16* A, int64_t lda, const bf16* B, int64_t ldb, float beta, float* C,
                   int64_t ldc) {
  gemm_ex(trans_a, trans_b, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1,
          {CUDA_R_16BF, CUDA_R_32F}, CUBLAS_COMPUTE_32F,
          "cublasGemmStridedBatchedEx (bf16 -> fp32)");
}

}  // namespace lmlab::cuda
