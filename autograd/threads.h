// Thread control for the CPU backend: OpenMP's pool and OpenBLAS's own pool are set together, so a
// run's `threads` setting governs every kernel.
#pragma once
#include <string>

namespace lmlab {

// Sets the OpenMP and OpenBLAS thread counts; n <= 0 leaves the defaults (all cores).
void set_num_threads(int n);
int num_threads();
// OpenBLAS's kernel family for this CPU ("Haswell", "SkylakeX", "Prescott", ...).
std::string blas_core_name();
// The OpenBLAS shared library this process loaded (its OpenMP or pthread build), or "unknown".
std::string blas_library_path();
// GFLOP/s of a square n x n float GEMM with the current thread count: the fastest of `reps` calls
// through OpenBLAS's own threading and `reps` through lmlab's GEMM (after two warm-up calls): the
// machine's practical peak, against which `lmlab bench` states MFU.
double blas_sgemm_gflops(long n = 2048, int reps = 5);

// The OPENBLAS_CORETYPE to force when OpenBLAS fell back to a generic kernel family (it does not
// know every new CPU model and then runs sgemm ~5x slower, docs/PERFORMANCE.md): "SkylakeX" with
// AVX-512, "Haswell" with AVX2 + FMA, "" when `core` is already specific or the CPU has neither.
std::string suggest_blas_core(const std::string& core, bool avx512, bool avx2_fma);
// The same for this process's OpenBLAS and CPU. OpenBLAS reads OPENBLAS_CORETYPE only when it
// loads, so the CLI sets it and re-executes itself (train/cli/main.cpp); a value the user set wins.
std::string suggest_blas_core();

}  // namespace lmlab
