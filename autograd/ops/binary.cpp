// Broadcasting binary arithmetic: add, sub, mul, div. The forward is one strided kernel; the
// backward is composed from ops (sum_to undoes broadcasting).
#include "autograd/kernels/elementwise.h"
#include "autograd/ops.h"
#include "autograd/ops/dispatch.h"

namespace lmlab {

static const char* name_of(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add: return "add";
    case BinaryOp::Sub: return "sub";
    case BinaryOp::Mul: return "mul";
    case BinaryOp::Div: return "div";
  }
  return "?";
}

// y = a op b over the broadcast shape; inputs are read in place through their strides.
static Tensor binary_forward(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = name_of(op);
  check_float(a, name, "a");
  check_float(b, name, "b");
  check_same_dtype(a, b, name);
  check_same_device(a, b, name);
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor y = Tensor::empty(shape, a.dtype(), a.device());
  if (y.numel() == 0) return y;
  const Strides sa = broadcast_strides(a.shape(), a.strides(), shape);
  const Strides sb = broadcast_strides(b.shape(), b.strides(), shape);
  const int64_t nd = int64_t(shape.size());
  dispatch_float(a, name, [&]<class T, Device D>(Backend<T, D> be) {
    be.pick(cpu::binary_forward<T>, cuda::binary_forward)(op, a.data<T>(), sa.data(), b.data<T>(),
                                                          sb.data(), y.data<T>(), shape.data(), nd);
  });
  return y;
}

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward(BinaryOp::Add, a, b);
  tape::record("add", {a, b}, y, [sa = a.shape(), sb = b.shape()](const Tensor& dy) {
    return Grads{sum_to(dy, sa), sum_to(dy, sb)};
  });
  return y;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward(BinaryOp::Sub, a, b);
  tape::record("sub", {a, b}, y, [sa = a.shape(), sb = b.shape()](const Tensor& dy) {
    return Grads{sum_to(dy, sa), sum_to(neg(dy), sb)};
  });
  return y;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward(BinaryOp::Mul, a, b);
  if (!tape::needs_grad({a, b})) return y;
  // Save an input only if the *other* input needs its gradient.
  Saved sa(b.requires_grad() ? a : Tensor()), sb(a.requires_grad() ? b : Tensor());
  tape::record("mul", {a, b}, y,
               [sa, sb, shape_a = a.shape(), shape_b = b.shape()](const Tensor& dy) {
                 Grads g(2);
                 if (sb.get("mul").defined()) g[0] = sum_to(mul(dy, sb.get("mul")), shape_a);
                 if (sa.get("mul").defined()) g[1] = sum_to(mul(dy, sa.get("mul")), shape_b);
                 return g;
               });
  return y;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward(BinaryOp::Div, a, b);
  if (!tape::needs_grad({a, b})) return y;
  // da = dy / b;  db = -dy * a / b^2 = -dy * y / b
  Saved sb(b), sy(b.requires_grad() ? y : Tensor());
  tape::record("div", {a, b}, y,
               [sb, sy, need_a = a.requires_grad(), shape_a = a.shape(),
                shape_b = b.shape()](const Tensor& dy) {
                 const Tensor& bv = sb.get("div");
                 Grads g(2);
                 if (need_a) g[0] = sum_to(div(dy, bv), shape_a);
                 if (sy.get("div").defined())
                   g[1] = sum_to(neg(div(mul(dy, sy.get("div")), bv)), shape_b);
                 return g;
               });
  return y;
}

}  // namespace lmlab
