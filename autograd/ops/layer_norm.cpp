// LayerNorm over the last dim: the fused op (one forward kernel, one analytic backward kernel,
// one tape node) and its composed twin built from primitive ops; tests hold the two equal.
#include <sstream>
#include <string>

#include "autograd/kernels/norm.h"
#include "autograd/ops.h"
#include "autograd/ops/dispatch.h"

namespace lmlab {

namespace {

// weight or bias: 1-D of shape (C), with x's dtype and device.
void check_param(const std::string& o, const Tensor& x, const Tensor& t, const char* name) {
  const std::string xs = " (x is " + to_string(x.shape()) + ")";
  const int64_t C = x.size(-1);
  if (t.dim() != 1)
    throw Error(o + name + " must be 1-D of shape (" + std::to_string(C) + "), got shape " +
                to_string(t.shape()) + xs);
  if (t.size(0) != C)
    throw Error(o + name + " has shape " + to_string(t.shape()) + " but x's last dim is " +
                std::to_string(C) + xs);
  if (t.dtype() != x.dtype())
    throw Error(o + name + " is " + to_string(t.dtype()) + " but x is " + to_string(x.dtype()) +
                xs);
  if (t.device() != x.device())
    throw Error(o + name + " is on " + to_string(t.device()) + " but x is on " +
                to_string(x.device()) + xs);
}

// The checks both twins share: x (..., C) float with C > 0, weight (C), bias (C) or undefined,
// and eps > 0.
void check_args(const char* op, const Tensor& x, const Tensor& w, const Tensor& b, double eps) {
  const std::string o = std::string("[") + op + "] ";
  check_float(x, op, "x");
  if (x.dim() == 0) throw Error(o + "x must have at least one dim to normalize, got a scalar");
  if (x.size(-1) == 0)
    throw Error(o + "cannot normalize over an empty last dim (x is " + to_string(x.shape()) + ")");
  check_float(w, op, "weight");
  check_param(o, x, w, "weight");
  if (b.defined()) {
    check_float(b, op, "bias");
    check_param(o, x, b, "bias");
  }
  if (!(eps > 0)) {
    std::ostringstream got;
    got << eps;
    throw Error(o + "eps must be > 0, got " + got.str());
  }
}

void forward_kernel(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y, Tensor& mean,
                    Tensor& rstd, int64_t rows, int64_t C, double eps) {
  dispatch_float(x, "layer_norm", [&]<class T, Device D>(Backend<T, D> be) {
    be.pick(cpu::layernorm_forward<T>, cuda::layernorm_forward)(
        x.data<T>(), w.data<T>(), b.defined() ? b.data<T>() : nullptr, y.data<T>(), mean.data<T>(),
        rstd.data<T>(), rows, C, eps);
  });
}

// Returns {dx, dw} or {dx, dw, db}: dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy w.
Grads backward_kernel(const Tensor& dy_in, const Tensor& x, const Tensor& w, const Tensor& mean,
                      const Tensor& rstd, bool has_bias) {
  const Tensor dy = dy_in.contiguous();
  const int64_t C = x.size(-1), rows = x.numel() / C;
  Tensor dx = Tensor::empty_like(x), dw = Tensor::zeros_like(w);
  Tensor db = has_bias ? Tensor::zeros_like(w) : Tensor();
  dispatch_float(x, "layer_norm", [&]<class T, Device D>(Backend<T, D> be) {
    be.pick(cpu::layernorm_backward<T>, cuda::layernorm_backward)(
        dy.data<T>(), x.data<T>(), w.data<T>(), mean.data<T>(), rstd.data<T>(), dx.data<T>(),
        dw.data<T>(), has_bias ? db.data<T>() : nullptr, rows, C);
  });
  if (has_bias) return Grads{dx, dw, db};
  return Grads{dx, dw};
}

}  // namespace

Tensor layer_norm(const Tensor& x_in, const Tensor& weight, const Tensor& bias, double eps) {
  check_args("layer_norm", x_in, weight, bias, eps);
  const Tensor x = x_in.contiguous(), w = weight.contiguous();
  const Tensor b = bias.defined() ? bias.contiguous() : Tensor();
  const int64_t C = x.size(-1), rows = x.numel() / C;
  Tensor y = Tensor::empty_like(x);
  Tensor mean = Tensor::empty({rows}, x.dtype(), x.device());
  Tensor rstd = Tensor::empty({rows}, x.dtype(), x.device());
  forward_kernel(x, w, b, y, mean, rstd, rows, C, eps);
  std::vector<Tensor> inputs{x, w};
  if (b.defined()) inputs.push_back(b);
  if (tape::needs_grad(inputs)) {
    Saved sx(x), sw(w);
    const bool has_bias = b.defined();
    tape::record("layer_norm", inputs, y, [sx, sw, mean, rstd, has_bias](const Tensor& dy) {
      return backward_kernel(dy, sx.get("layer_norm"), sw.get("layer_norm"), mean, rstd, has_bias);
    });
  }
  return y;
}

Tensor layer_norm_composed(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  check_args("layer_norm_composed", x, weight, bias, eps);
  const Tensor mu = mean(x, {-1}, /*keepdim=*/true);
  const Tensor v = var(x, {-1}, /*keepdim=*/true, /*correction=*/0);
  const Tensor y = mul(mul(sub(x, mu), rsqrt(add(v, eps))), weight);
  return bias.defined() ? add(y, bias) : y;
}

}  // namespace lmlab
