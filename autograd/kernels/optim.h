// Raw-pointer optimizer kernels: the fused AdamW and SGD-momentum updates, and the sum of squares
// and in-place scale used by gradient clipping. Each element is updated by one thread and the sum
// of squares adds fixed-size blocks in a fixed order, so results do not depend on the thread count.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

namespace lmlab::cpu {

// One AdamW step (Loshchilov & Hutter 2019) on n contiguous elements, in torch.optim.AdamW's order
// of operations (t is this parameter's step count, counting this step, t >= 1):
//   p *= 1 - lr * weight_decay                      (decoupled decay; pass 0 to skip it)
//   m  = beta1 m + (1 - beta1) g
//   v  = beta2 v + (1 - beta2) g^2
//   p -= (lr / (1 - beta1^t)) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// The scalar coefficients are formed in double and rounded once to T, as PyTorch does.
template <class T>
void adamw_step(T* p, const T* g, T* m, T* v, int64_t n, double lr, double beta1, double beta2,
                double eps, double weight_decay, int64_t t);
// One SGD-momentum step (PyTorch semantics, dampening 0, plus optional decoupled decay):
//   p *= 1 - lr * weight_decay;  buf = momentum buf + g;  p -= lr buf
template <class T>
void sgd_step(T* p, const T* g, T* buf, int64_t n, double lr, double momentum, double weight_decay);
// sum_i x[i]^2, accumulated in double: blocks of a fixed size are summed in index order, then the
// block sums are added in block order.
template <class T>
double sum_squares(const T* x, int64_t n);
// x[i] *= s (s rounded to T once).
template <class T>
void scale(T* x, int64_t n, double s);

}  // namespace lmlab::cpu

namespace lmlab::cuda {

// One parameter of a multi-tensor AdamW step: its buffers, length, step count t (this step
// included) and weight decay (0 when it does not decay).
struct AdamWTensor {
  float* p;
  const float* g;
  float* m;
  float* v;
  int64_t n;
  int64_t t;
  double weight_decay;
};
// One AdamW step for every tensor listed, cpu::adamw_step's arithmetic element for element, in as
// few launches as the kernel-argument table allows (48 tensors each): GPT-2 small's 148 parameters
// take 4 launches instead of 148.
void adamw_step(const std::vector<AdamWTensor>& tensors, double lr, double beta1, double beta2,
                double eps);
void sgd_step(float* p, const float* g, float* buf, int64_t n, double lr, double momentum,
              double weight_decay);
// sum_i x[i]^2 in double of each tensor (pointer, length): fixed blocks, then the block sums by one
// block, per tensor; one device-to-host copy (one wait) for all of them (clip_grad_norm).
std::vector<double> sum_squares_each(const std::vector<std::pair<const float*, int64_t>>& xs);
void scale(float* x, int64_t n, double s);

}  // namespace lmlab::cuda
