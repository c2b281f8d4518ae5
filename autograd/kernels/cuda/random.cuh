// The counter-based generator of autograd/random.h as __device__ functions: the same SplitMix64
// mixing, the same bit-to-float mappings, so a (seed, offset) draws the same numbers on the GPU
// as on the CPU (tests/cuda/test_cuda_random.cpp holds the dropout masks bitwise equal).
#pragma once
#include <cstdint>

namespace lmlab::cuda {

__device__ inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
__device__ inline uint64_t random_bits(uint64_t seed, uint64_t counter) {
  return mix64(mix64(seed + 0x9e3779b97f4a7c15ULL) ^ (counter * 0xd1b54a32d192ed03ULL));
}
// Uniform in [0, 1) with 53 random bits (exact: the same double as on the CPU).
__device__ inline double uniform01(uint64_t bits) { return double(bits >> 11) * 0x1.0p-53; }
// Box-Muller on the two 32-bit halves; CUDA's double log/cos are within 2 ulp of glibc's.
__device__ inline double normal01(uint64_t bits) {
  const double u1 = (double(bits >> 32) + 1.0) * 0x1.0p-32;
  const double u2 = double(bits & 0xffffffffULL) * 0x1.0p-32;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

}  // namespace lmlab::cuda
