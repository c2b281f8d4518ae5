// Counter-based random numbers: draw i of a generator is a pure function of (seed, offset + i),
// so a tensor filled in parallel is bitwise the same for any thread count, and a generator's
// whole state is two integers (easy to checkpoint). The mixing function is SplitMix64's
// finaliser applied twice (Steele, Lea & Flood 2014), the same on CPU and GPU.
#pragma once
#include <cmath>
#include <cstdint>

namespace lmlab {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) { seed_ = seed, offset_ = offset; }
  // Reserves n consecutive counters and returns the first. Partitioned (below): reserves
  // parts * n counters for all parts together and returns the first of this part's n.
  uint64_t advance(uint64_t n) {
    uint64_t first = offset_ + part_ * n;
    offset_ += parts_ * n;
    return first;
  }
  // Data-parallel ranks: part p of `parts` draws, from each advance(n), the p-th block of n in a
  // draw of parts * n. When every part draws the same n, the parts together draw exactly what one
  // generator drawing parts * n would: rank r's batch rows (or its dropout mask over a batch-major
  // tensor) are rows [r n, (r + 1) n) of the single-process draw. offset() stays the shared total.
  void set_partition(uint64_t part, uint64_t parts) { part_ = part, parts_ = parts; }
  uint64_t parts() const { return parts_; }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
  uint64_t part_ = 0, parts_ = 1;
};

// The process-wide generator used where none is passed; manual_seed resets it.
Generator& default_generator();
void manual_seed(uint64_t seed);

inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
inline uint64_t random_bits(uint64_t seed, uint64_t counter) {
  return mix64(mix64(seed + 0x9e3779b97f4a7c15ULL) ^ (counter * 0xd1b54a32d192ed03ULL));
}
// Uniform in [0, 1) with 53 random bits.
inline double uniform01(uint64_t bits) { return double(bits >> 11) * 0x1.0p-53; }
// Standard normal from one 64-bit draw: Box-Muller on its two 32-bit halves (u1 in (0, 1]).
inline double normal01(uint64_t bits) {
  double u1 = (double(bits >> 32) + 1.0) * 0x1.0p-32;
  double u2 = double(bits & 0xffffffffULL) * 0x1.0p-32;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

}  // namespace lmlab
