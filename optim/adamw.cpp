// AdamW: option checks, its state (per-parameter step count, first and second moments), and the
// step that hands each CPU parameter to the fused adamw_step kernel and all GPU parameters to one
// multi-tensor launch.
#include "optim/adamw.h"

#include <cmath>
#include <sstream>

#include "autograd/kernels/optim.h"

namespace lmlab::optim {

static void check_option(bool ok, const char* what, double value) {
  if (ok) return;
  std::ostringstream os;
  os << "[adamw] " << what << ", got " << value;
  throw Error(os.str());
}

AdamW::AdamW(NamedTensors params, const AdamWOptions& options)
    : Optimizer("adamw", std::move(params)), options_(options) {
  const AdamWOptions& o = options_;
  check_option(o.beta1 >= 0 && o.beta1 < 1, "beta1 must be in [0, 1)", o.beta1);
  check_option(o.beta2 >= 0 && o.beta2 < 1, "beta2 must be in [0, 1)", o.beta2);
  check_option(o.eps >= 0 && std::isfinite(o.eps), "eps must be finite and >= 0", o.eps);
  check_option(o.weight_decay >= 0 && std::isfinite(o.weight_decay),
               "weight_decay must be finite and >= 0", o.weight_decay);
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string& pname = params_[i].first;
    t_.push_back(add_counter("adamw.step." + pname));
    m_.push_back(add_buffer("adamw.m." + pname, i));
    v_.push_back(add_buffer("adamw.v." + pname, i));
  }
}

void AdamW::update(double lr) {
  // Check every gradient before the first write, so a bad one leaves all parameters as they were.
  std::vector<Tensor> grads;
  for (size_t i = 0; i < params_.size(); ++i) grads.push_back(grad_for_step(i, m_[i]));
  const AdamWOptions& o = options_;
  std::vector<cuda::AdamWTensor> on_gpu;  // updated together by one multi-tensor launch per 48
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].second;
    const Tensor& g = grads[i];
    if (!g.defined()) continue;  // no gradient: skipped, its step count unchanged (PyTorch)
    const int64_t t = *t_[i].data<int32_t>() + 1;
    const double wd = decays(p) ? o.weight_decay : 0.0;
    switch (p.device()) {
      case Device::CPU:
        if (p.dtype() == DType::F64)
          cpu::adamw_step(p.data<double>(), g.data<double>(), m_[i].data<double>(),
                          v_[i].data<double>(), p.numel(), lr, o.beta1, o.beta2, o.eps, wd, t);
        else
          cpu::adamw_step(p.data<float>(), g.data<float>(), m_[i].data<float>(),
                          v_[i].data<float>(), p.numel(), lr, o.beta1, o.beta2, o.eps, wd, t);
        break;
      case Device::CUDA:
        on_gpu.push_back({p.data<float>(), g.data<float>(), m_[i].data<float>(),
                          v_[i].data<float>(), p.numel(), t, wd});
        break;
    }
    increment(t_[i]);
    // The kernel writes through data<T>(): tell saved-for-backward checks that these changed.
    p.storage()->bump_version();
    m_[i].storage()->bump_version();
    v_[i].storage()->bump_version();
  }
  // `grads` keeps the gradients alive until the launches are queued (the stream orders the rest).
  if (!on_gpu.empty()) cuda::adamw_step(on_gpu, lr, o.beta1, o.beta2, o.eps);
}

}  // namespace lmlab::optim
