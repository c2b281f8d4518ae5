// Strided copies, fills, random fills and dtype conversion on the CPU.
#include "autograd/kernels/copy.h"

#include <omp.h>

#include <type_traits>
#include <vector>

#include "autograd/random.h"

namespace lmlab::cpu {

// Below this many elements a parallel region costs more than it saves.
static constexpr int64_t kParallelMin = 1 << 15;

template <class T>
void copy_strided(const T* src, const int64_t* src_strides, T* dst, const int64_t* dst_strides,
                  const int64_t* shape, int64_t ndim) {
  if (ndim == 0) {
    dst[0] = src[0];
    return;
  }
  // Outer loop over all dims but the last ("rows"); inner loop over the last dim.
  const int64_t inner = shape[ndim - 1];
  const int64_t s_in = src_strides[ndim - 1], d_in = dst_strides[ndim - 1];
  int64_t rows = 1;
  for (int64_t d = 0; d < ndim - 1; ++d) rows *= shape[d];
#pragma omp parallel for schedule(static) if (rows * inner >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t so = 0, dof = 0, rem = r;
    for (int64_t d = ndim - 2; d >= 0; --d) {
      int64_t i = rem % shape[d];
      rem /= shape[d];
      so += i * src_strides[d];
      dof += i * dst_strides[d];
    }
    const T* s = src + so;
    T* o = dst + dof;
    if (s_in == 1 && d_in == 1) {
      for (int64_t i = 0; i < inner; ++i) o[i] = s[i];
    } else {
      for (int64_t i = 0; i < inner; ++i) o[i * d_in] = s[i * s_in];
    }
  }
}

template <class T>
void fill(T* y, int64_t n, T value) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = value;
}

template <class T>
void fill_normal(T* y, int64_t n, uint64_t seed, uint64_t offset, double mean, double std) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = T(mean + std * normal01(random_bits(seed, offset + i)));
}

template <class T>
void fill_uniform(T* y, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    T v = T(lo + (hi - lo) * uniform01(random_bits(seed, offset + i)));
    y[i] = v < T(hi) ? v : T(lo);  // rounding to float can reach hi; keep the interval half-open
  }
}

template <class From, class To>
void convert(const From* x, To* y, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    if constexpr (std::is_same_v<From, bf16>)
      y[i] = static_cast<To>(float(x[i]));  // exact; then to To
    else if constexpr (std::is_same_v<To, bf16>)
      y[i] = bf16(float(x[i]));  // double rounds through float first, as PyTorch's BFloat16
    else
      y[i] = static_cast<To>(x[i]);
  }
}

template void copy_strided<float>(const float*, const int64_t*, float*, const int64_t*,
                                  const int64_t*, int64_t);
template void fill<float>(float*, int64_t, float);
template void copy_strided<double>(const double*, const int64_t*, double*, const int64_t*,
                                   const int64_t*, int64_t);
template void fill<double>(double*, int64_t, double);
template void copy_strided<int32_t>(const int32_t*, const int64_t*, int32_t*, const int64_t*,
                                    const int64_t*, int64_t);
template void fill<int32_t>(int32_t*, int64_t, int32_t);
template void fill_normal<float>(float*, int64_t, uint64_t, uint64_t, double, double);
template void fill_normal<double>(double*, int64_t, uint64_t, uint64_t, double, double);
template void fill_uniform<float>(float*, int64_t, uint64_t, uint64_t, double, double);
template void fill_uniform<double>(double*, int64_t, uint64_t, uint64_t, double, double);
template void convert<float, double>(const float*, double*, int64_t);
template void convert<double, float>(const double*, float*, int64_t);
template void convert<int32_t, float>(const int32_t*, float*, int64_t);
template void convert<int32_t, double>(const int32_t*, double*, int64_t);
template void convert<float, int32_t>(const float*, int32_t*, int64_t);
template void convert<double, int32_t>(const double*, int32_t*, int64_t);
template void copy_strided<bf16>(const bf16*, const int64_t*, bf16*, const int64_t*, const int64_t*,
                                 int64_t);
template void fill<bf16>(bf16*, int64_t, bf16);
template void convert<float, bf16>(const float*, bf16*, int64_t);
template void convert<bf16, float>(const bf16*, float*, int64_t);
template void convert<double, bf16>(const double*, bf16*, int64_t);
template void convert<bf16, double>(const bf16*, double*, int64_t);

}  // namespace lmlab::cpu
