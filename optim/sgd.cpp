// SGD with momentum: option checks, the momentum buffers, and the step that hands each parameter
// to the fused sgd_step kernel of its device.
#include "optim/sgd.h"

#include <cmath>
#include <sstream>

#include "autograd/kernels/optim.h"

namespace lmlab::optim {

static void check_option(bool ok, const char* what, double value) {
  if (ok) return;
  std::ostringstream os;
  os << "[sgd] " << what << ", got " << value;
  throw Error(os.str());
}

SGD::SGD(NamedTensors params, const SGDOptions& options)
    : Optimizer("sgd", std::move(params)), options_(options) {
  check_option(options_.momentum >= 0 && std::isfinite(options_.momentum),
               "momentum must be finite and >= 0", options_.momentum);
  check_option(options_.weight_decay >= 0 && std::isfinite(options_.weight_decay),
               "weight_decay must be finite and >= 0", options_.weight_decay);
  for (size_t i = 0; i < params_.size(); ++i)
    buf_.push_back(add_buffer("sgd.momentum." + params_[i].first, i));
}

void SGD::update(double lr) {
  // Check every gradient before the first write, so a bad one leaves all parameters as they were.
  std::vector<Tensor> grads;
  for (size_t i = 0; i < params_.size(); ++i) grads.push_back(grad_for_step(i, buf_[i]));
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].second;
    const Tensor& g = grads[i];
    if (!g.defined()) continue;  // no gradient: skipped, its buffer unchanged (PyTorch)
    const double wd = decays(p) ? options_.weight_decay : 0.0;
    const double mu = options_.momentum;
    switch (p.device()) {
      case Device::CPU:
        if (p.dtype() == DType::F64)
          cpu::sgd_step(p.data<double>(), g.data<double>(), buf_[i].data<double>(), p.numel(), lr,
                        mu, wd);
        else
          cpu::sgd_step(p.data<float>(), g.data<float>(), buf_[i].data<float>(), p.numel(), lr, mu,
                        wd);
        break;
      case Device::CUDA:
        cuda::sgd_step(p.data<float>(), g.data<float>(), buf_[i].data<float>(), p.numel(), lr, mu,
                       wd);
        break;
    }
    // The kernel wrote through data<T>(): tell saved-for-backward checks that these changed.
    p.storage()->bump_version();
    buf_[i].storage()->bump_version();
  }
}

}  // namespace lmlab::optim
