// Gradient clipping by global L2 norm (PyTorch's clip_grad_norm_), deterministic and honest about
// non-finite norms.
#pragma once
#include <vector>

#include "autograd/tensor.h"

namespace lmlab::optim {

struct ClipResult {
  double norm = 0;  // the global gradient norm BEFORE clipping (NaN / Inf reported as they are)
  bool clipped = false;  // whether the gradients were scaled
};

// norm = sqrt(sum over params with a defined grad of sum(grad^2)), accumulated in double in the
// order of `params` (bitwise reproducible for any thread count). If max_norm > 0 and
// max_norm < norm < inf, every grad is scaled in place by max_norm / (norm + 1e-6) (PyTorch's
// clip coefficient). A non-finite norm leaves the grads untouched so the caller sees the fault
// (skip the step or stop) instead of a silently zeroed or NaN-scaled update.
ClipResult clip_grad_norm(const std::vector<Tensor>& params, double max_norm);
// The same global norm without clipping (for logging when clipping is off).
double grad_norm(const std::vector<Tensor>& params);

}  // namespace lmlab::optim
