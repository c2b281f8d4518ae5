// Optimizer base: parameter checks, the step counter, gradient checks shared by every update, and
// the named state with its all-or-nothing load.
#include "optim/optimizer.h"

#include <cmath>
#include <limits>
#include <set>
#include <sstream>

#include "autograd/tape.h"

namespace lmlab::optim {

static std::string format(double x) {
  std::ostringstream os;
  os << x;
  return os.str();
}

Optimizer::Optimizer(std::string name, NamedTensors params)
    : name_(std::move(name)), params_(std::move(params)) {
  const std::string op = "[" + name_ + "] ";
  if (params_.empty()) throw Error(op + "got an empty parameter list");
  std::set<std::string> names;
  std::map<const Storage*, std::string> owners;
  for (const auto& [pname, p] : params_) {
    if (!p.defined()) throw Error(op + "parameter '" + pname + "' is undefined");
    if (!names.insert(pname).second)
      throw Error(op + "parameter name '" + pname + "' appears twice");
    if (!is_float(p.dtype()))
      throw Error(op + "parameter '" + pname + "' must be a floating-point tensor, got " +
                  to_string(p.dtype()));
    if (!p.is_contiguous())
      throw Error(op + "parameter '" + pname + "' of shape " + to_string(p.shape()) +
                  " must be contiguous (the update writes it as one flat buffer)");
    auto [it, fresh] = owners.emplace(p.storage().get(), pname);
    if (!fresh)
      throw Error(op + "parameters '" + it->second + "' and '" + pname +
                  "' share storage (a tied weight must be listed once)");
  }
  steps_ = add_counter(name_ + ".steps");
}

Tensor Optimizer::add_buffer(const std::string& key, size_t i) {
  const Tensor& p = params_.at(i).second;
  Tensor t = Tensor::zeros(p.shape(), p.dtype(), p.device());
  state_.emplace_back(key, t);
  return t;
}

Tensor Optimizer::add_counter(const std::string& key) {
  Tensor t = Tensor::zeros({1}, DType::I32);
  state_.emplace_back(key, t);
  return t;
}

int64_t Optimizer::increment(const Tensor& counter) const {
  int32_t* c = counter.data<int32_t>();
  if (*c == std::numeric_limits<int32_t>::max())
    throw Error("[" + name_ + "] step counter overflow (2^31 - 1 steps)");
  ++*c;
  counter.storage()->bump_version();
  return *c;
}

int64_t Optimizer::steps_taken() const { return *steps_.data<int32_t>(); }

void Optimizer::step(double lr) {
  if (!std::isfinite(lr) || lr < 0)
    throw Error("[" + name_ + "] lr must be finite and >= 0, got " + format(lr));
  NoGradGuard guard;
  update(lr);
  increment(steps_);
}

void Optimizer::zero_grad() {
  for (const auto& [pname, p] : params_) p.zero_grad();
}

Tensor Optimizer::grad_for_step(size_t i, const Tensor& state) const {
  const auto& [pname, p] = params_.at(i);
  Tensor g = p.grad();
  if (!g.defined()) return g;
  const std::string op = "[" + name_ + "] ";
  // Module::to swaps a parameter's storage in place; the state stays where it was made (the
  // kernels would then read host memory on the GPU, or the reverse).
  if (state.dtype() != p.dtype() || state.device() != p.device() || !p.is_contiguous())
    throw Error(op + "parameter '" + pname + "' is now " + to_string(p.dtype()) + " on " +
                to_string(p.device()) + (p.is_contiguous() ? "" : " and non-contiguous") +
                " but its state is " + to_string(state.dtype()) + " on " +
                to_string(state.device()) + ": build the optimizer after converting the model");
  if (g.dtype() != p.dtype())
    throw Error(op + "gradient of '" + pname + "' is " + to_string(g.dtype()) +
                " but the parameter is " + to_string(p.dtype()));
  if (g.device() != p.device())
    throw Error(op + "gradient of '" + pname + "' is on " + to_string(g.device()) +
                " but the parameter is on " + to_string(p.device()));
  if (g.shape() != p.shape())
    throw Error(op + "gradient of '" + pname + "' has shape " + to_string(g.shape()) +
                " but the parameter has shape " + to_string(p.shape()));
  return g.contiguous();
}

NamedTensors Optimizer::state() const { return state_; }

void Optimizer::load_state(const NamedTensors& state) {
  std::map<std::string, Tensor> by_key;
  for (const auto& [key, t] : state)
    if (!by_key.emplace(key, t).second)
      throw Error("[" + name_ + "] load_state: key '" + key + "' appears twice");
  load_state(by_key);
}

void Optimizer::load_state(const std::map<std::string, Tensor>& state) {
  const std::string op = "[" + name_ + "] load_state: ";
  // Every check runs before the first copy.
  std::vector<Tensor> sources;
  std::set<std::string> known;
  for (const auto& [key, mine] : state_) {
    known.insert(key);
    auto it = state.find(key);
    if (it == state.end())
      throw Error(op + "missing '" + key + "' of shape " + to_string(mine.shape()));
    const Tensor& src = it->second;
    if (!src.defined()) throw Error(op + "'" + key + "' is undefined");
    if (src.shape() != mine.shape())
      throw Error(op + "'" + key + "' has shape " + to_string(src.shape()) + " in the state but " +
                  to_string(mine.shape()) + " in the optimizer");
    if (mine.dtype() == DType::I32) {
      const double c = src.item();
      if (!(c >= 0 && c <= std::numeric_limits<int32_t>::max() && c == std::floor(c)))
        throw Error(op + "counter '" + key + "' must be a whole number in [0, 2^31), got " +
                    format(c));
    } else if (!is_float(src.dtype())) {
      throw Error(op + "'" + key + "' is " + to_string(src.dtype()) + ", expected a float tensor");
    }
    sources.push_back(src);
  }
  for (const auto& [key, t] : state)
    if (!known.count(key))
      throw Error(op + "unexpected key '" + key + "' of shape " + to_string(t.shape()) +
                  " (not part of this " + name_ + " optimizer's state)");
  NoGradGuard guard;
  for (size_t k = 0; k < state_.size(); ++k) {
    Tensor& mine = state_[k].second;
    const Tensor& src = sources[k];
    if (mine.dtype() == DType::I32) {
      *mine.data<int32_t>() = int32_t(src.item());
      mine.storage()->bump_version();
    } else {
      mine.copy_(src.dtype() == mine.dtype() ? src : src.to(mine.dtype()));
    }
  }
}

}  // namespace lmlab::optim
