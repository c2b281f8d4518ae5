// Fused LayerNorm and RMSNorm over the last dim of contiguous (rows, C) buffers, forward and
// analytic backward (llm.c style). The derivations the backward kernels cite: docs/layernorm.md.
#pragma once
#include <cstdint>

namespace lmlab::cpu {

// LayerNorm (Ba et al. 2016; PyTorch convention): per row, with biased variance and eps inside
// the sqrt,  y = (x - mean) * rstd * w + b,  rstd = 1 / sqrt(var + eps).
// x, y (rows, C); w, b (C), b may be null (no bias); mean, rstd (rows) are saved for backward.
// One pass per row, accumulating in double around a shift (the row's first element).
template <class T>
void layernorm_forward(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, int64_t rows,
                       int64_t C, double eps);
// With xhat = (x - mean) * rstd and g = dy * w (docs/layernorm.md, section 1):
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat))   (written)
//   dw += sum over rows of dy * xhat,  db += sum over rows of dy   (accumulated; db may be null)
// dw and db are summed in a fixed order that does not depend on the thread count.
template <class T>
void layernorm_backward(const T* dy, const T* x, const T* w, const T* mean, const T* rstd, T* dx,
                        T* dw, T* db, int64_t rows, int64_t C);

// RMSNorm (Zhang & Sennrich 2019; LLaMA convention, eps inside the rsqrt):
//   y = x * rstd * w,  rstd = 1 / sqrt(mean(x^2) + eps).  x, y (rows, C); w (C); rstd (rows).
// One reduction per row (the sum of squares), accumulated in double.
template <class T>
void rmsnorm_forward(const T* x, const T* w, T* y, T* rstd, int64_t rows, int64_t C, double eps);
// With xhat = x * rstd and g = dy * w (docs/layernorm.md, section 2):
//   dx = rstd * (g - xhat * mean(g * xhat))   (written);   dw += sum over rows of dy * xhat
template <class T>
void rmsnorm_backward(const T* dy, const T* x, const T* w, const T* rstd, T* dx, T* dw,
                      int64_t rows, int64_t C);

}  // namespace lmlab::cpu

namespace lmlab::cuda {

void layernorm_forward(const float* x, const float* w, const float* b, float* y, float* mean,
                       float* rstd, int64_t rows, int64_t C, double eps);
void layernorm_backward(const float* dy, const float* x, const float* w, const float* mean,
                        const float* rstd, float* dx, float* dw, float* db, int64_t rows,
                        int64_t C);
void rmsnorm_forward(const float* x, const float* w, float* y, float* rstd, int64_t rows, int64_t C,
                     double eps);
void rmsnorm_backward(const float* dy, const float* x, const float* w, const float* rstd, float* dx,
                      float* dw, int64_t rows, int64_t C);

}  // namespace lmlab::cuda
