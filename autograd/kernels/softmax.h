// Row-wise softmax, log-softmax and fused softmax-cross-entropy over contiguous (rows, C) buffers.
// Every row subtracts its max before exponentiating, so logits of +-1e4 stay finite.
#pragma once
#include <cstdint>

namespace lmlab::cpu {

template <class T>
void softmax_forward(const T* x, T* y, int64_t rows, int64_t C);
// dx = y * (dy - sum(dy * y))
template <class T>
void softmax_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t C);
template <class T>
void log_softmax_forward(const T* x, T* y, int64_t rows, int64_t C);
// dx = dy - exp(y) * sum(dy)
template <class T>
void log_softmax_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t C);
// loss[r] = logsumexp(z_r) - z_r[t_r] and lse[r] = logsumexp(z_r); rows whose target equals
// ignore_index get loss 0. Targets are checked by the caller.
template <class T>
void cross_entropy_forward(const T* logits, const int32_t* targets, T* loss, T* lse, int64_t rows,
                           int64_t V, int32_t ignore_index);
// dlogits[r] = scale * (softmax(z_r) - onehot(t_r)), zero for ignored rows.
template <class T>
void cross_entropy_backward(const T* logits, const T* lse, const int32_t* targets, double scale,
                            T* dlogits, int64_t rows, int64_t V, int32_t ignore_index);

}  // namespace lmlab::cpu

namespace lmlab::cuda {

void softmax_forward(const float* x, float* y, int64_t rows, int64_t C);
void softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t C);
void log_softmax_forward(const float* x, float* y, int64_t rows, int64_t C);
void log_softmax_backward(const float* y, const float* dy, float* dx, int64_t rows, int64_t C);
void cross_entropy_forward(const float* logits, const int32_t* targets, float* loss, float* lse,
                           int64_t rows, int64_t V, int32_t ignore_index);
// The GPU backward reads the upstream gradient dy (one float) on the device and forms
// scale = dy / count there, in double as the CPU caller does: no wait for the host.
void cross_entropy_backward(const float* logits, const float* lse, const int32_t* targets,
                            const float* dy, int64_t count, float* dlogits, int64_t rows, int64_t V,
                            int32_t ignore_index);

}  // namespace lmlab::cuda
