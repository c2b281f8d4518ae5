// Indexing kernels on the CPU: embedding gather and its deterministic scatter-add, broadcast masked
// fill, and the counter-based dropout mask. Every result is bitwise the same for any thread count.
#include "autograd/kernels/index.h"

#include <omp.h>

#include <cassert>
#include <cstring>

#include "autograd/random.h"

namespace lmlab::cpu {

static constexpr int64_t kParallelMin = 1 << 14;
// Columns per task in embedding_backward: 64 floats (four cache lines) keeps threads off each
// other's lines of dweight while leaving enough tasks for C = 768.
static constexpr int64_t kColumnBlock = 64;

template <class T>
void embedding_forward(const T* weight, const int32_t* ids, T* out, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (int64_t n = 0; n < N; ++n) {
    assert(ids[n] >= 0);
    std::memcpy(out + n * C, weight + int64_t(ids[n]) * C, size_t(C) * sizeof(T));
  }
}

// dweight[ids[n], c] += dout[n, c]. Repeated ids make rows collide, so rows are never split among
// threads: each task owns a block of columns and walks n = 0..N-1 in order, which keeps every
// column's sum in one fixed order whatever the thread count.
template <class T>
void embedding_backward(const T* dout, const int32_t* ids, T* dweight, int64_t N, int64_t C) {
  const int64_t blocks = (C + kColumnBlock - 1) / kColumnBlock;
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin && blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t c0 = b * kColumnBlock;
    const int64_t c1 = c0 + kColumnBlock < C ? c0 + kColumnBlock : C;
    for (int64_t n = 0; n < N; ++n) {
      T* dw = dweight + int64_t(ids[n]) * C;
      const T* dy = dout + n * C;
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) dw[c] += dy[c];
    }
  }
}

// One row of the last dim per iteration; x and y are contiguous, the mask is read through its
// broadcast strides (0 on the dims it stretches over).
template <class T>
void masked_fill(const T* x, const int32_t* mask, const int64_t* mask_strides, T value, T* y,
                 const int64_t* shape, int64_t ndim) {
  if (ndim == 0) {
    y[0] = mask[0] ? value : x[0];
    return;
  }
  const int64_t inner = shape[ndim - 1];
  const int64_t im = mask_strides[ndim - 1];
  int64_t rows = 1;
  for (int64_t d = 0; d < ndim - 1; ++d) rows *= shape[d];
#pragma omp parallel for schedule(static) if (rows * inner >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t om = 0, rem = r;
    for (int64_t d = ndim - 2; d >= 0; --d) {
      om += (rem % shape[d]) * mask_strides[d];
      rem /= shape[d];
    }
    const int32_t* pm = mask + om;
    const T* px = x + r * inner;
    T* py = y + r * inner;
    if (im == 0) {
      // One mask value for the whole row: a fill or a copy.
      if (pm[0]) {
        for (int64_t i = 0; i < inner; ++i) py[i] = value;
      } else {
        std::memcpy(py, px, size_t(inner) * sizeof(T));
      }
    } else if (im == 1) {
#pragma omp simd
      for (int64_t i = 0; i < inner; ++i) py[i] = pm[i] ? value : px[i];
    } else {
      for (int64_t i = 0; i < inner; ++i) py[i] = pm[i * im] ? value : px[i];
    }
  }
}

template <class T>
void dropout_mask(T* mask, int64_t n, double p, uint64_t seed, uint64_t offset) {
  assert(p >= 0 && p < 1);
  const T scale = T(1.0 / (1.0 - p));
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i)
    mask[i] = uniform01(random_bits(seed, offset + uint64_t(i))) >= p ? scale : T(0);
}

template void embedding_forward<float>(const float*, const int32_t*, float*, int64_t, int64_t);
template void embedding_forward<double>(const double*, const int32_t*, double*, int64_t, int64_t);
template void embedding_backward<float>(const float*, const int32_t*, float*, int64_t, int64_t);
template void embedding_backward<double>(const double*, const int32_t*, double*, int64_t, int64_t);
template void masked_fill<float>(const float*, const int32_t*, const int64_t*, float, float*,
                                 const int64_t*, int64_t);
template void masked_fill<double>(const double*, const int32_t*, const int64_t*, double, double*,
                                  const int64_t*, int64_t);
template void dropout_mask<float>(float*, int64_t, double, uint64_t, uint64_t);
template void dropout_mask<double>(double*, int64_t, double, uint64_t, uint64_t);

}  // namespace lmlab::cpu
