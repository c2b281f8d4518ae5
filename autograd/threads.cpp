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

}  // namespace lmlab
