// Elementwise unary functions (and scalar arithmetic): one forward kernel and one backward kernel
// per device, selected by UnaryOp. Each op saves x and y; the kernel uses whichever it needs.
#include "autograd/kernels/elementwise.h"
#include "autograd/ops.h"
#include "autograd/ops/dispatch.h"

namespace lmlab {

static void unary_kernel(UnaryOp op, const char* name, const Tensor& x, Tensor& y, double p) {
  dispatch_float(x, name, [&]<class T, Device D>(Backend<T, D> be) {
    be.pick(cpu::unary_forward<T>, cuda::unary_forward)(op, x.data<T>(), y.data<T>(), x.numel(), p);
  });
}

static Tensor unary_backward_kernel(UnaryOp op, const char* name, const Tensor& x, const Tensor& y,
                                    const Tensor& dy_in, double p) {
  Tensor dy = dy_in.contiguous();
  Tensor dx = Tensor::empty_like(x);
  dispatch_float(x, name, [&]<class T, Device D>(Backend<T, D> be) {
    be.pick(cpu::unary_backward<T>, cuda::unary_backward)(op, x.data<T>(), y.data<T>(),
                                                          dy.data<T>(), dx.data<T>(), x.numel(), p);
  });
  return dx;
}

static Tensor unary(UnaryOp op, const char* name, const Tensor& x_in, double p = 0) {
  check_float(x_in, name, "x");
  Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty_like(x);
  if (x.numel() > 0) unary_kernel(op, name, x, y, p);
  if (tape::needs_grad({x})) {
    Saved sx(x), sy(y);
    tape::record(name, {x}, y, [op, name, sx, sy, p](const Tensor& dy) {
      return Grads{unary_backward_kernel(op, name, sx.get(name), sy.get(name), dy, p)};
    });
  }
  return y;
}

Tensor neg(const Tensor& x) { return unary(UnaryOp::Neg, "neg", x); }
Tensor add(const Tensor& x, double s) { return unary(UnaryOp::AddScalar, "add", x, s); }
Tensor mul(const Tensor& x, double s) { return unary(UnaryOp::MulScalar, "mul", x, s); }
Tensor rsub(const Tensor& x, double s) { return unary(UnaryOp::RSubScalar, "rsub", x, s); }
Tensor rdiv(const Tensor& x, double s) { return unary(UnaryOp::RDivScalar, "rdiv", x, s); }
Tensor exp(const Tensor& x) { return unary(UnaryOp::Exp, "exp", x); }
Tensor log(const Tensor& x) { return unary(UnaryOp::Log, "log", x); }
Tensor sqrt(const Tensor& x) { return unary(UnaryOp::Sqrt, "sqrt", x); }
Tensor rsqrt(const Tensor& x) { return unary(UnaryOp::Rsqrt, "rsqrt", x); }
Tensor pow(const Tensor& x, double p) { return unary(UnaryOp::Pow, "pow", x, p); }
Tensor tanh(const Tensor& x) { return unary(UnaryOp::Tanh, "tanh", x); }
Tensor sigmoid(const Tensor& x) { return unary(UnaryOp::Sigmoid, "sigmoid", x); }
Tensor relu(const Tensor& x) { return unary(UnaryOp::Relu, "relu", x); }
Tensor gelu(const Tensor& x) { return unary(UnaryOp::Gelu, "gelu", x); }
Tensor silu(const Tensor& x) { return unary(UnaryOp::Silu, "silu", x); }

}  // namespace lmlab
