// GEMM on the CPU: a thin row-major wrapper over OpenBLAS's cblas_sgemm / cblas_dgemm.
// OpenBLAS runs its own threads inside each call, so nothing here opens an OpenMP region.
#include "autograd/kernels/matmul.h"

#include <cblas.h>

#include <cassert>
#include <climits>

namespace lmlab::cpu {

static CBLAS_TRANSPOSE flag(bool trans) { return trans ? CblasTrans : CblasNoTrans; }

static void blas_gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda,
                      const float* B, int ldb, float beta, float* C, int ldc) {
  cblas_sgemm(CblasRowMajor, flag(ta), flag(tb), M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static void blas_gemm(bool ta, bool tb, int M, int N, int K, double alpha, const double* A, int lda,
                      const double* B, int ldb, double beta, double* C, int ldc) {
  cblas_dgemm(CblasRowMajor, flag(ta), flag(tb), M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// BLAS takes 32-bit ints (OpenBLAS without INTERFACE64); the op boundary keeps sizes in range.
[[maybe_unused]] static bool fits_int(int64_t v) { return v >= 0 && v <= int64_t(INT_MAX); }

// C (M, N) = alpha * op(A) (M, K) @ op(B) (K, N) + beta * C. op(X) = X^T when its flag is set;
// X is then stored (K, M) or (N, K). Every ld is the row stride of the matrix as stored, so
// BLAS needs ld >= its row length: K or M for A, N or K for B, N for C.
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  assert(fits_int(M) && fits_int(N) && fits_int(K));
  assert(fits_int(lda) && fits_int(ldb) && fits_int(ldc));
  assert(lda >= 1 && lda >= (trans_a ? M : K));
  assert(ldb >= 1 && ldb >= (trans_b ? K : N));
  assert(ldc >= 1 && ldc >= N);
  blas_gemm(trans_a, trans_b, int(M), int(N), int(K), alpha, A, int(lda), B, int(ldb), beta, C,
            int(ldc));
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                           const double*, int64_t, double, double*, int64_t);

}  // namespace lmlab::cpu
