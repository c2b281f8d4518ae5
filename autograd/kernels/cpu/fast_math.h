// Vectorisable float exp and tanh for the hot elementwise loops. glibc's expf/tanhf are scalar
// calls (GELU's tanh was 40% of a training step); these are branch-free arithmetic that
// `#pragma omp simd` turns into AVX-512. float64 keeps std:: (gradient checks want libm accuracy).
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace lmlab::cpu {

// e^x by Cody-Waite range reduction: x = n ln2 + r, |r| <= ln2 / 2, e^r by its degree-7 Taylor
// polynomial (truncation error < 1e-8 relative), then scaled by 2^n built in the exponent bits.
// Inputs are clamped to [-87, 88] (e^x under/overflows float beyond).
inline float fast_exp(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  // n = round(x / ln 2): adding 1.5 * 2^23 rounds to an integer, whose bits then hold n. GCC 12
  // leaves float->int conversions after a clamp unvectorised; this form vectorises.
  const float magic = 12582912.0f;
  const float t = x * 1.44269504088896341f + magic;
  const float n = t - magic;
  const int32_t ni = std::bit_cast<int32_t>(t) - std::bit_cast<int32_t>(magic);
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-6f;  // ln 2 = hi + lo
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  return p * std::bit_cast<float>((ni + 127) << 23);  // 2^n in the exponent bits
}

// e^x over the whole float range, for the exp op (fast_exp's clamp is right inside softmax, GELU
// and sigmoid, but exp(100) must be inf and exp(-100) subnormal, as in libm and PyTorch). Still
// branch-free: the two tails are shifted into fast_exp's range and scaled back.
inline float fast_exp_full(float x) {
  const float mid = fast_exp(x);                                    // [-87, 88]
  const float high = fast_exp(x - 1.0f) * 2.71828182845904524f;     // (88, ln FLT_MAX]
  const float low = fast_exp(x + 25.0f) * 1.3887943864964021e-11f;  // below -87: e^x e^-25
  const float y = x < -87.0f ? low : (x > 88.0f ? high : mid);
  return x > 88.72283935546875f ? std::numeric_limits<float>::infinity() : y;  // ln FLT_MAX
}

// tanh(x) = sign(x) (1 - 2 / (e^{2|x|} + 1)): absolute error ~1e-7, exact +-1 saturation.
inline float fast_tanh(float x) {
  const float a = std::fabs(x);
  const float t = 1.0f - 2.0f / (fast_exp(2.0f * a) + 1.0f);
  return std::copysign(t, x);
}

// The same names for double fall back to libm.
inline double fast_exp(double x) { return std::exp(x); }
inline double fast_exp_full(double x) { return std::exp(x); }
inline double fast_tanh(double x) { return std::tanh(x); }

}  // namespace lmlab::cpu
