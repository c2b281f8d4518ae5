#include "autograd/threads.h"

#include <omp.h>

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

std::string suggest_blas_core(const std::string& core, bool avx512, bool avx2_fma) {
  // OpenBLAS's names for its pre-AVX2 x86 kernel families: what it picks for a CPU it does not
  // recognise (DYNAMIC_ARCH falls back to Prescott), plus its explicit generic one.
  static const char* generic[] = {"Prescott", "Core2",  "Penryn",   "Dunnington", "Nehalem", "Atom",
                                  "Katmai",   "Coppermine", "Northwood", "Banias", "Generic", "unknown"};
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
