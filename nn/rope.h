// Rotary position embedding (Su et al. 2021), HF-LLaMA half-split convention: dimension i of the
// first half pairs with i + HS/2; theta_i = base^(-2i / HS); position m rotates a pair by m
// theta_i:
//   out = x * cos(m theta) + rotate_half(x) * sin(m theta),  rotate_half(x) = concat(-x2, x1).
// Composed from ops (narrow, mul, concat), so autograd derives its backward.
#pragma once
#include "autograd/ops.h"

namespace lmlab::nn {

class Rope {
 public:
  Rope(int64_t head_size, int64_t max_positions, double base);
  // x (B, H, T, HS) at absolute positions pos0 .. pos0 + T - 1.
  Tensor apply(const Tensor& x, int64_t pos0) const;

 private:
  int64_t half_, max_positions_;
  Tensor cos64_, sin64_, cos32_, sin32_;  // (max_positions, HS / 2), computed in float64
  // The float32 tables on the GPU, copied there once on first use (not at every apply: that was
  // four host-to-device copies per layer and forward).
  mutable Tensor cos32_gpu_, sin32_gpu_;
};

}  // namespace lmlab::nn
