// GEMM on the CPU: a row-major wrapper over oneDNN's dnnl_sgemm (float32, when lmlab is built
// with oneDNN) and OpenBLAS's cblas_sgemm / cblas_dgemm.
//
// Threads: a product is cut into slabs of C (rows, or columns when C is wider than tall) that our
// OpenMP threads share, each slab a one-thread GEMM over the full K (both libraries run
// single-threaded inside an OpenMP region). OpenBLAS's own multi-threaded GEMM on the small
// products of a tiny model spent a large part of each step synchronising its threads
// (sched_yield between packed panels); the slabs need one barrier. The slab boundaries follow
// from the shape alone and every GEMM runs on one thread, so results do not depend on the thread
// count (tests/autograd/ops/test_matmul.cpp). With OpenBLAS's pthread build (its own pool) and no
// oneDNN, OpenBLAS threads each call itself.
//
// Backend: oneDNN's sgemm beat OpenBLAS's (Cooperlake kernels) on every one-thread slab of the
// small and medium models' forward and backward GEMMs but one (bench/bench_gemm_backends.cpp:
// 0.98-1.18x, no zero-fill of C before a beta = 0 product, lighter packing), and made the small
// step ~7% faster and the medium one ~6% (docs/PERFORMANCE.md, log row 12). LMLAB_GEMM=openblas
// in the environment picks OpenBLAS instead (A/B runs, or OpenBLAS's rounding).
#include "autograd/kernels/matmul.h"

#include <cblas.h>
#include <omp.h>
#ifdef LMLAB_WITH_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

#include <algorithm>
#include <cassert>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <type_traits>

extern "C" int openblas_get_parallel(void);  // 0: sequential, 1: pthreads, 2: OpenMP

namespace lmlab::cpu {

template <class T>
constexpr bool is_float = std::is_same_v<T, float>;

static CBLAS_TRANSPOSE flag(bool trans) { return trans ? CblasTrans : CblasNoTrans; }

static bool use_dnnl() {
#ifdef LMLAB_WITH_DNNL
  static const bool on = [] {
    const char* v = std::getenv("LMLAB_GEMM");
    return v == nullptr || std::strcmp(v, "openblas") != 0;
  }();
  return on;
#else
  return false;
#endif
}

std::string sgemm_backend() {
#ifdef LMLAB_WITH_DNNL
  if (use_dnnl()) {
    const dnnl_version_t* v = dnnl_version();
    return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
           std::to_string(v->patch);
  }
#endif
  return "OpenBLAS";
}

static void blas_gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda,
                      const float* B, int ldb, float beta, float* C, int ldc) {
#ifdef LMLAB_WITH_DNNL
  if (use_dnnl()) {
    dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
#endif
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
  // oneDNN runs on lmlab's OpenMP pool whatever OpenBLAS build is linked.
  static const bool openmp_pool = openblas_get_parallel() == 2 || (is_float<T> && use_dnnl());
  // Small products (below ~64k multiply-adds, or narrow) run whole, on one thread. OpenBLAS keeps
  // a small one on one thread itself, but its own threading of a narrow product with a long K
  // (M, N < 64) follows the thread count and, with some kernel families (Haswell), so do its
  // results; oneDNN may thread any product. Those are pinned: inside a one-thread region
  // omp_set_num_threads(1) sets only that region's thread count, which both libraries read.
  const int64_t dim = std::max(M, N);
  const bool small = double(M) * double(N) * double(K) < 65536.0;
  if (!openmp_pool || small || dim < 64) {
    const bool pin = dim < 64 || (is_float<T> && use_dnnl());
    if (!openmp_pool || !pin || omp_in_parallel() || omp_get_max_threads() == 1) {
      blas_gemm(trans_a, trans_b, int(M), int(N), int(K), alpha, A, int(lda), B, int(ldb), beta, C,
                int(ldc));
      return;
    }
#pragma omp parallel num_threads(1)
    {
      omp_set_num_threads(1);
      blas_gemm(trans_a, trans_b, int(M), int(N), int(K), alpha, A, int(lda), B, int(ldb), beta, C,
                int(ldc));
    }
    return;
  }
  // Slabs along C's longer side: one per 1024 rows (or columns), at least 2 and at most 16, an
  // even number, each a multiple of 16 (OpenBLAS's register blocking). Their boundaries follow
  // from the shape alone, never from the thread count, so neither do the results. (On 2 cores 2
  // slabs beat 4 and 8 by 3-10%: every slab packs op(B) again and runs at a smaller size.)
  const bool by_rows = M >= N;
  int64_t want = std::clamp<int64_t>(dim / 1024, 2, 16);
  want += want % 2;
  const int64_t slab = std::max<int64_t>(32, ((dim + want - 1) / want + 15) / 16 * 16);
  const int64_t slabs = (dim + slab - 1) / slab;
  auto run_slab = [&](int64_t s) {
    const int64_t lo = s * slab, n = std::min(dim, lo + slab) - lo;
    if (by_rows) {  // rows lo .. lo + n of C and of op(A)
      const T* a = trans_a ? A + lo : A + lo * lda;
      blas_gemm(trans_a, trans_b, int(n), int(N), int(K), alpha, a, int(lda), B, int(ldb), beta,
                C + lo * ldc, int(ldc));
    } else {  // columns lo .. lo + n of C and of op(B)
      const T* b = trans_b ? B + lo * ldb : B + lo;
      blas_gemm(trans_a, trans_b, int(M), int(n), int(K), alpha, A, int(lda), b, int(ldb), beta,
                C + lo, int(ldc));
    }
  };
  // Inside a parallel region (attention's per-head GEMMs: over a thousand a step) the slabs run
  // in a plain loop: even a one-thread nested region costs a team set-up per call.
  const int threads = omp_in_parallel() ? 1 : int(std::min<int64_t>(omp_get_max_threads(), slabs));
  if (threads <= 1) {
    for (int64_t s = 0; s < slabs; ++s) run_slab(s);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t s = 0; s < slabs; ++s) run_slab(s);
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                           const double*, int64_t, double, double*, int64_t);

}  // namespace lmlab::cpu
