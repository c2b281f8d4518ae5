// clip_grad_norm: the global gradient norm from per-tensor sums of squares (fixed order, double),
// then one in-place scale of every gradient when it exceeds max_norm.
#include "optim/clip.h"

#include <cmath>
#include <string>

#include "autograd/kernels/optim.h"
#include "autograd/tape.h"

namespace lmlab::optim {

static double sum_squares(const Tensor& g) {
  Tensor c = g.contiguous();  // CPU; GPU gradients go through cuda::sum_squares_each
  if (c.dtype() == DType::F64) return cpu::sum_squares(c.data<double>(), c.numel());
  return cpu::sum_squares(c.data<float>(), c.numel());
}

static void scale_grad(const Tensor& g, double s) {
  if (!g.is_contiguous()) {
    NoGradGuard guard;
    Tensor(g).mul_(s);  // rare: a strided gradient goes through the generic (slower) path
    return;
  }
  if (g.device() == Device::CUDA)
    cuda::scale(g.data<float>(), g.numel(), s);
  else if (g.dtype() == DType::F64)
    cpu::scale(g.data<double>(), g.numel(), s);
  else
    cpu::scale(g.data<float>(), g.numel(), s);
  g.storage()->bump_version();
}

double grad_norm(const std::vector<Tensor>& params) {
  // Per-tensor sums of squares added in parameter order. GPU gradients are summed on the device
  // and come back in one copy (a wait per tensor was one host sync per parameter and step).
  std::vector<double> sums(params.size(), 0.0);
  std::vector<size_t> on_gpu;
  std::vector<Tensor> gpu_grads;  // contiguous, alive until summed
  std::vector<std::pair<const float*, int64_t>> gpu_spans;
  for (size_t i = 0; i < params.size(); ++i) {
    if (!params[i].defined())
      throw Error("[clip_grad_norm] parameter " + std::to_string(i) + " is undefined");
    Tensor g = params[i].grad();
    if (!g.defined()) continue;
    if (g.device() == Device::CUDA) {
      gpu_grads.push_back(g.contiguous());
      gpu_spans.emplace_back(gpu_grads.back().data<float>(), gpu_grads.back().numel());
      on_gpu.push_back(i);
    } else {
      sums[i] = sum_squares(g);
    }
  }
  if (!gpu_spans.empty()) {
    const std::vector<double> s = cuda::sum_squares_each(gpu_spans);
    for (size_t k = 0; k < on_gpu.size(); ++k) sums[on_gpu[k]] = s[k];
  }
  double total = 0;
  for (double s : sums) total += s;
  return std::sqrt(total);
}

ClipResult clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  if (std::isnan(max_norm)) throw Error("[clip_grad_norm] max_norm is NaN");
  ClipResult r;
  r.norm = grad_norm(params);
  if (!(max_norm > 0 && std::isfinite(r.norm) && r.norm > max_norm)) return r;
  const double coeff = max_norm / (r.norm + 1e-6);
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (g.defined()) scale_grad(g, coeff);
  }
  r.clipped = true;
  return r;
}

}  // namespace lmlab::optim
