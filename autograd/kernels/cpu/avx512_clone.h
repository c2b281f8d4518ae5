// LMLAB_AVX512_CLONE: an AVX-512 (x86-64-v4) clone of a hot loop beside the build's x86-64-v3
// code, which the loader picks on CPUs that have AVX-512 (GCC's target_clones). lmlab itself is
// built for x86-64-v3 because GCC 12's AVX-512 SLP vectoriser miscompiled a test (CMakeLists.txt);
// the clones hold plain `omp simd` loops. A clone has to be its own function, outside any OpenMP
// region (a region's outlined body is not cloned), so each kernel's parallel loop calls a cloned
// chunk function. Elementwise loops give the same bits either way (one formula per lane, no FMA
// contraction: -ffp-contract=off); a loop that sums keeps fixed accumulators where its result
// must not depend on the vector width.
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__AVX512F__)
#define LMLAB_AVX512_CLONE __attribute__((target_clones("arch=x86-64-v4", "default")))
#else
#define LMLAB_AVX512_CLONE
#endif
