// Raw-pointer reductions over the middle axis of a contiguous (outer, R, inner) block: every
// reduction over one dim, or over several adjacent dims, is this shape. Each output is summed by
// one thread in a fixed order, so results do not depend on the thread count.
#pragma once
#include <cstdint>

namespace lmlab::cpu {

// y[o, i] = scale * sum_r x[o, r, i]   (float accumulates in double)
template <class T>
void sum_dim(const T* x, T* y, int64_t outer, int64_t R, int64_t inner, double scale);
// y[o, i] = max_r x[o, r, i]
template <class T>
void max_dim(const T* x, T* y, int64_t outer, int64_t R, int64_t inner);
// dx[o, r, i] = dy[o, i] / count[o, i] where x[o, r, i] == y[o, i] (count = number of ties), else 0
template <class T>
void max_dim_backward(const T* x, const T* y, const T* dy, T* dx, int64_t outer, int64_t R,
                      int64_t inner);

}  // namespace lmlab::cpu

namespace lmlab::cuda {

void sum_dim(const float* x, float* y, int64_t outer, int64_t R, int64_t inner, double scale);
void max_dim(const float* x, float* y, int64_t outer, int64_t R, int64_t inner);
void max_dim_backward(const float* x, const float* y, const float* dy, float* dx, int64_t outer,
                      int64_t R, int64_t inner);

}  // namespace lmlab::cuda
