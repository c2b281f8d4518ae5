// RMSNorm over the last dim (LLaMA convention): the fused op (one forward kernel, one analytic
// backward kernel, one tape node) and its composed twin built from primitive ops.
#include <sstream>
#include <string>

#include "autograd/kernels/norm.h"
#include "autograd/ops.h"
#include "autograd/ops/dispatch.h"

namespace lmlab {

namespace {

// The checks both twins share: x (..., C) float with C > 0, weight (C) of x's dtype and device,
// and eps > 0.
void check_args(const char* op, const Tensor& x, const Tensor& w, double eps) {
  const std::string o = std::string("[") + op + "] ";
  check_float(x, op, "x");
  if (x.dim() == 0) throw Error(o + "x must have at least one dim to normalize, got a scalar");
  const std::string xs = " (x is " + to_string(x.shape()) + ")";
  const int64_t C = x.size(-1);
  if (C == 0) throw Error(o + "cannot normalize over an empty last dim" + xs);
  check_float(w, op, "weight");
  if (w.dim() != 1)
    throw Error(o + "weight must be 1-D of shape (" + std::to_string(C) + "), got shape " +
                to_string(w.shape()) + xs);
  if (w.size(0) != C)
    throw Error(o + "weight has shape " + to_string(w.shape()) + " but x's last dim is " +
                std::to_string(C) + xs);
  if (w.dtype() != x.dtype())
    throw Error(o + "weight is " + to_string(w.dtype()) + " but x is " + to_string(x.dtype()) + xs);
  if (w.device() != x.device())
    throw Error(o + "weight is on " + to_string(w.device()) + " but x is on " +
                to_string(x.device()) + xs);
  if (!(eps > 0)) {
    std::ostringstream got;
    got << eps;
    throw Error(o + "eps must be > 0, got " + got.str());
  }
}

// Returns {dx, dw}: dx = rstd (g - xhat mean(g xhat)), g = dy w, dw = sum over rows of dy xhat.
Grads backward_kernel(const Tensor& dy_in, const Tensor& x, const Tensor& w, const Tensor& rstd) {
  const Tensor dy = dy_in.contiguous();
  const int64_t C = x.size(-1), rows = x.numel() / C;
  Tensor dx = Tensor::empty_like(x), dw = Tensor::zeros_like(w);
  dispatch_float(x, "rms_norm", [&]<class T, Device D>(Backend<T, D> be) {
    be.pick(cpu::rmsnorm_backward<T>, cuda::rmsnorm_backward)(dy.data<T>(), x.data<T>(),
                                                              w.data<T>(), rstd.data<T>(),
                                                              dx.data<T>(), dw.data<T>(), rows, C);
  });
  return Grads{dx, dw};
}

}  // namespace

Tensor rms_norm(const Tensor& x_in, const Tensor& weight, double eps) {
  check_args("rms_norm", x_in, weight, eps);
  const Tensor x = x_in.contiguous(), w = weight.contiguous();
  const int64_t C = x.size(-1), rows = x.numel() / C;
  Tensor y = Tensor::empty_like(x);
  Tensor rstd = Tensor::empty({rows}, x.dtype(), x.device());
  dispatch_float(x, "rms_norm", [&]<class T, Device D>(Backend<T, D> be) {
    be.pick(cpu::rmsnorm_forward<T>, cuda::rmsnorm_forward)(x.data<T>(), w.data<T>(), y.data<T>(),
                                                            rstd.data<T>(), rows, C, eps);
  });
  if (tape::needs_grad({x, w})) {
    Saved sx(x), sw(w);
    tape::record("rms_norm", {x, w}, y, [sx, sw, rstd](const Tensor& dy) {
      return backward_kernel(dy, sx.get("rms_norm"), sw.get("rms_norm"), rstd);
    });
  }
  return y;
}

Tensor rms_norm_composed(const Tensor& x, const Tensor& weight, double eps) {
  check_args("rms_norm_composed", x, weight, eps);
  const Tensor ms = mean(mul(x, x), {-1}, /*keepdim=*/true);
  return mul(mul(x, rsqrt(add(ms, eps))), weight);
}

}  // namespace lmlab
