#include "nn/module.h"

#include <set>

namespace lmlab::nn {

void Module::collect(const std::string& prefix, NamedTensors& out) const {
  for (const auto& [name, t] : params_) out.emplace_back(prefix + name, t);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors all, unique;
  collect("", all);
  // A tensor registered twice (tied weights) is listed once, under its first name.
  std::set<const TensorImpl*> seen;
  for (auto& [name, t] : all)
    if (seen.insert(t.impl_ptr()).second) unique.emplace_back(name, t);
  return unique;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::zero_grad() const {
  for (auto& [name, t] : named_parameters()) t.zero_grad();
}

void Module::to(DType dtype) {
  NoGradGuard guard;
  for (auto& [name, t] : named_parameters()) {
    if (t.dtype() == dtype) continue;
    Tensor c = t.to(dtype);
    TensorImpl& impl = *t.impl_ptr();
    impl.storage = c.storage();
    impl.strides = c.strides();
    impl.offset = c.offset();
    impl.dtype = dtype;
    t.zero_grad();
  }
}

void Module::to(Device device) {
  NoGradGuard guard;
  for (auto& [name, t] : named_parameters()) {
    if (t.device() == device) continue;
    Tensor c = t.to(device);  // a contiguous copy on the new device
    TensorImpl& impl = *t.impl_ptr();
    impl.storage = c.storage();
    impl.strides = c.strides();
    impl.offset = c.offset();
    t.zero_grad();
  }
}

StateDict Module::state_dict() const {
  StateDict out;
  for (auto& [name, t] : named_parameters()) out[name] = t;
  return out;
}

void Module::load_state_dict(const StateDict& state, bool strict) {
  // Every check runs before the first copy, so a failed load leaves the model untouched.
  NamedTensors mine = named_parameters();
  std::set<std::string> known;
  for (auto& [name, t] : mine) {
    known.insert(name);
    auto it = state.find(name);
    if (it == state.end())
      throw Error("[load_state_dict] missing parameter '" + name + "' of shape " +
                  to_string(t.shape()));
    const Tensor& src = it->second;
    if (src.shape() != t.shape())
      throw Error("[load_state_dict] parameter '" + name + "' has shape " + to_string(src.shape()) +
                  " in the state dict but " + to_string(t.shape()) + " in the model");
  }
  if (strict)
    for (auto& [name, t] : state)
      if (!known.count(name))
        throw Error("[load_state_dict] unexpected parameter '" + name + "' of shape " +
                    to_string(t.shape()) + " (not in this model)");
  NoGradGuard guard;
  for (auto& [name, t] : mine) {
    const Tensor& src = state.at(name);
    Tensor dst = t;
    dst.copy_(src.dtype() == t.dtype() ? src : src.to(t.dtype()));
  }
}

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  if (t.is_leaf() && !t.requires_grad()) t.requires_grad_();
  params_.emplace_back(name, t);
  return t;
}

}  // namespace lmlab::nn
