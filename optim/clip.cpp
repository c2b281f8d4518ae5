// clip_grad_norm: the global gradient norm from per-tensor sums of squares (fixed order, double),
// then one in-place scale of every gradient when it exceeds max_norm.
#include "optim/clip.h"

#include <cmath>
#include <string>

#include "autograd/kernels/optim.h"
#include "autograd/tape.h"

namespace lmlab::optim {

static double sum_squares(const Tensor& g) {
  Tensor c = g.contiguous();
  if (c.device() == Device::CUDA) return cuda::sum_squares(c.data<float>(), c.numel());
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
  double total = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    if (!params[i].defined())
      throw Error("[clip_grad_norm] parameter " + std::to_string(i) + " is undefined");
    Tensor g = params[i].grad();
    if (g.defined()) total += sum_squares(g);
  }
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
