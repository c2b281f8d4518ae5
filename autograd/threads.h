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

}  // namespace lmlab
