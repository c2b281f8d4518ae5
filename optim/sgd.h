// SGD with momentum (PyTorch semantics, dampening 0), with optional decoupled weight decay on
// tensors with dim >= 2, like AdamW's.
#pragma once
#include "optim/optimizer.h"

namespace lmlab::optim {

struct SGDOptions {
  double momentum = 0;      // >= 0; 0 is plain SGD
  double weight_decay = 0;  // >= 0; applied as p *= 1 - lr * weight_decay (decoupled, not L2)
};

// Per parameter p with gradient g:
//   if dim(p) >= 2: p *= 1 - lr * weight_decay
//   buf = momentum buf + g;  p -= lr buf      (buf starts at 0, so the first step uses buf = g)
// State: "sgd.steps" and per parameter "sgd.momentum.<name>" (shaped like the parameter).
class SGD : public Optimizer {
 public:
  explicit SGD(NamedTensors params, const SGDOptions& options = {});
  const SGDOptions& options() const { return options_; }

 private:
  void update(double lr) override;
  SGDOptions options_;
  std::vector<Tensor> buf_;  // one per parameter, in params_ order
};

}  // namespace lmlab::optim
