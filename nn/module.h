// Module: the base of every layer. It owns named parameters and named child modules, so a model's
// parameters get hierarchical names ("blocks.0.attn.wq.weight") for state dicts and checkpoints.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/ops.h"

namespace lmlab::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
using StateDict = std::map<std::string, Tensor>;

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Every parameter of this module and its children, depth first, in registration order.
  NamedTensors named_parameters() const;
  std::vector<Tensor> parameters() const;
  int64_t num_parameters() const;
  // train() enables dropout; eval() disables it. Applies to every child.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad() const;
  // Converts every parameter in place to `dtype` (float64 for gradient checks of whole layers).
  // Every handle to a parameter sees the change; gradients are dropped.
  void to(DType dtype);
  // Moves every parameter in place to `device` (Device::CUDA to train on the GPU, Device::CPU to
  // come back). Every handle to a parameter sees the change; gradients are dropped. An optimizer
  // made before the move keeps its state on the old device: move the model first.
  void to(Device device);

  // name -> parameter (the live tensors, not copies).
  StateDict state_dict() const;
  // Copies values into the parameters. Every parameter must be present with its exact shape; with
  // `strict`, unknown names are errors too. Messages name the key and both shapes.
  void load_state_dict(const StateDict& state, bool strict = true);

 protected:
  // Registers a leaf parameter (requires_grad is set) and returns it.
  Tensor register_parameter(const std::string& name, Tensor t);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }
  // Registers every (name, module) in order and returns the modules.
  template <class M>
  std::vector<std::shared_ptr<M>> register_modules(
      const std::vector<std::pair<std::string, std::shared_ptr<M>>>& named) {
    std::vector<std::shared_ptr<M>> out;
    for (const auto& [name, m] : named) out.push_back(register_module(name, m));
    return out;
  }

 private:
  void collect(const std::string& prefix, NamedTensors& out) const;
  NamedTensors params_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace lmlab::nn
