// Optimizer: the base of SGD and AdamW. It holds named parameters (as
// nn::Module::named_parameters() returns them), counts steps, and keeps the optimizer's state as
// named tensors for checkpoints.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "autograd/tensor.h"

namespace lmlab::optim {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// Decoupled weight decay applies to matrices and embeddings only (dim >= 2), never to biases and
// norm gains (nanoGPT's two parameter groups).
inline bool decays(const Tensor& param) { return param.dim() >= 2; }

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // Updates every parameter that has a gradient, in place and without recording, at learning rate
  // `lr` (finite, >= 0). Parameters whose grad is undefined are skipped and their state is left
  // as it is (PyTorch). Then counts the step.
  void step(double lr);
  // Drops every parameter's gradient (the next backward writes fresh ones).
  void zero_grad();
  // Number of step() calls so far (restored by load_state).
  int64_t steps_taken() const;
  const std::string& name() const { return name_; }
  const NamedTensors& named_parameters() const { return params_; }

  // The state, for checkpoints: "<name>.steps" (int32, shape (1)) and the optimizer's buffers, e.g.
  // "adamw.m.<param>". These are the live tensors, not copies: write them out before the next step,
  // or clone them to keep a snapshot.
  NamedTensors state() const;
  // Copies a state saved by an optimizer of the same kind over the same parameters. Every key must
  // be present with its exact shape and no unknown key may appear; every check runs before the
  // first copy, so a failed load leaves the optimizer untouched. Float buffers may come in either
  // float dtype and from either device (they are converted).
  void load_state(const NamedTensors& state);
  void load_state(const std::map<std::string, Tensor>& state);

 protected:
  // `name` prefixes the state keys and error messages ("adamw" -> "[adamw] ...", "adamw.steps").
  // Parameters must be defined, floating point, contiguous, uniquely named and not share storage.
  Optimizer(std::string name, NamedTensors params);
  // Registers a zero buffer shaped like parameter i (same dtype and device) under `key`.
  Tensor add_buffer(const std::string& key, size_t i);
  // Registers an int32 counter of shape (1) on the CPU, starting at 0, under `key`.
  Tensor add_counter(const std::string& key);
  // Parameter i's gradient, contiguous and checked against the parameter and `state` (its dtype and
  // device), or an undefined tensor when it has none.
  Tensor grad_for_step(size_t i, const Tensor& state) const;
  // Adds one to a counter from add_counter and returns the new value.
  int64_t increment(const Tensor& counter) const;
  // The update of one step, run under NoGradGuard; lr is already checked.
  virtual void update(double lr) = 0;

  std::string name_;
  NamedTensors params_;

 private:
  NamedTensors state_;  // registration order: "<name>.steps" first, then the subclass's entries
  Tensor steps_;
};

}  // namespace lmlab::optim
