// AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization") with the exact update
// of torch.optim.AdamW, decaying only tensors with dim >= 2 (nanoGPT).
#pragma once
#include "optim/optimizer.h"

namespace lmlab::optim {

struct AdamWOptions {
  double beta1 = 0.9;          // in [0, 1)
  double beta2 = 0.999;        // in [0, 1)
  double eps = 1e-8;           // >= 0, added outside the square root
  double weight_decay = 0.01;  // >= 0; applied as p *= 1 - lr * weight_decay
};

// Per parameter p with gradient g, at its own step count t (1 on its first update):
//   if dim(p) >= 2: p *= 1 - lr * weight_decay
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   p -= (lr / (1 - beta1^t)) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// State: "adamw.steps", and per parameter "adamw.step.<name>" (t), "adamw.m.<name>",
// "adamw.v.<name>" (shaped like the parameter).
class AdamW : public Optimizer {
 public:
  explicit AdamW(NamedTensors params, const AdamWOptions& options = {});
  const AdamWOptions& options() const { return options_; }

 private:
  void update(double lr) override;
  AdamWOptions options_;
  std::vector<Tensor> t_, m_, v_;  // one per parameter, in params_ order
};

}  // namespace lmlab::optim
