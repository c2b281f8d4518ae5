#include "autograd/threads.h"

#include <cblas.h>
#include <dlfcn.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "autograd/kernels/matmul.h"

extern "C" {
// OpenBLAS's own extensions (declared in its cblas.h; repeated here to keep that header local).
void openblas_set_num_threads(int num_threads);
char* openblas_get_corename(void);
}

namespace lmlab {

void set_num_threads(int n) {
  if (n <= 0) return;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int num_threads() { return omp_get_max_threads(); }

std::string blas_core_name() {
  const char* name = openblas_get_corename();
  return name ? name : "unknown";
}

std::string blas_library_path() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&openblas_get_corename), &info) && info.dli_fname)
    return info.dli_fname;
  return "unknown";
}

double blas_sgemm_gflops(long n, int reps) {
  std::vector<float> a(size_t(n * n)), b(size_t(n * n)), c(size_t(n * n));
  for (size_t i = 0; i < a.size(); ++i) {  // values away from zero and denormals
    a[i] = 0.5f + float(i % 7) * 0.125f;
    b[i] = 0.25f + float(i % 5) * 0.0625f;
  }
  // The best of OpenBLAS threading the call itself and of lmlab's GEMM (one slab per thread,
  // kernels/cpu/matmul.cpp), whichever is faster on this machine right now.
  double best = 1e30;
  for (int r = -2; r < 2 * reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    if (r % 2 == 0)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(n), int(n), int(n), 1.0f, a.data(),
                  int(n), b.data(), int(n), 0.0f, c.data(), int(n));
    else
      cpu::gemm<float>(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r >= 0) best = std::min(best, s);
  }
  return 2.0 * double(n) * double(n) * double(n) / best / 1e9;
}

std::string suggest_blas_core(const std::string& core, bool avx512, bool avx2_fma) {
  // OpenBLAS's names for its pre-AVX2 x86 kernel families: what it picks for a CPU it does not
  // recognise (DYNAMIC_ARCH falls back to Prescott), plus its explicit generic one.
  static const char* generic[] = {"Prescott",  "Core2",  "Penryn",  "Dunnington",
                                  "Nehalem",   "Atom",   "Katmai",  "Coppermine",
                                  "Northwood", "Banias", "Generic", "unknown"};
  bool is_generic = false;
  for (const char* g : generic) is_generic |= core == g;
  if (!is_generic) return "";
  if (avx512) return "SkylakeX";
  if (avx2_fma) return "Haswell";
  return "";
}

std::string suggest_blas_core() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return suggest_blas_core(blas_core_name(), avx512, avx2);
#else
  return "";
#endif
}

}  // namespace lmlab
