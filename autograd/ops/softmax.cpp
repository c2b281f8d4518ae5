// softmax and log_softmax along any dim. The row kernels work on the last dim of a contiguous
// buffer; any other dim is moved last with permute + contiguous and moved back with a permute view,
// so the view ops carry the gradient across the layout change.
#include "autograd/kernels/softmax.h"

#include "autograd/ops.h"
#include "autograd/ops/dispatch.h"

namespace lmlab {

namespace {

enum class Kind { Softmax, LogSoftmax };

const char* name_of(Kind kind) { return kind == Kind::Softmax ? "softmax" : "log_softmax"; }

void forward_kernel(Kind kind, const Tensor& x, const Tensor& y, int64_t rows, int64_t C) {
  dispatch_float(x, name_of(kind), [&]<class T, Device D>(Backend<T, D> be) {
    const auto kernel = kind == Kind::Softmax
                            ? be.pick(cpu::softmax_forward<T>, cuda::softmax_forward)
                            : be.pick(cpu::log_softmax_forward<T>, cuda::log_softmax_forward);
    kernel(x.data<T>(), y.data<T>(), rows, C);
  });
}

// softmax:     dx = y (dy - sum(dy y))
// log_softmax: dx = dy - exp(y) sum(dy)
Tensor backward_kernel(Kind kind, const Tensor& y, const Tensor& dy_in, int64_t rows, int64_t C) {
  Tensor dy = dy_in.contiguous();
  Tensor dx = Tensor::empty_like(y);
  if (y.numel() == 0) return dx;
  dispatch_float(y, name_of(kind), [&]<class T, Device D>(Backend<T, D> be) {
    const auto kernel = kind == Kind::Softmax
                            ? be.pick(cpu::softmax_backward<T>, cuda::softmax_backward)
                            : be.pick(cpu::log_softmax_backward<T>, cuda::log_softmax_backward);
    kernel(y.data<T>(), dy.data<T>(), dx.data<T>(), rows, C);
  });
  return dx;
}

// The op along the last dim: x viewed as (rows, C). Saves only y (both backward rules need only y).
Tensor along_last(Kind kind, const char* name, const Tensor& x_in) {
  Tensor x = x_in.contiguous();  // records a copy node if x_in was a strided view
  Tensor y = Tensor::empty_like(x);
  const int64_t C = x.shape().back();
  const int64_t rows = C > 0 ? x.numel() / C : 0;
  if (x.numel() > 0) forward_kernel(kind, x, y, rows, C);
  if (tape::needs_grad({x})) {
    Saved sy(y);
    tape::record(name, {x}, y, [kind, name, sy, rows, C](const Tensor& dy) {
      return Grads{backward_kernel(kind, sy.get(name), dy, rows, C)};
    });
  }
  return y;
}

Tensor along(Kind kind, const char* name, const Tensor& x, int64_t dim) {
  check_float(x, name, "x");
  const int64_t n = x.dim();
  const int64_t d = normalize_dim(dim, n, name, x.shape());  // a 0-d x has no dim: this throws
  if (d == n - 1) return along_last(kind, name, x);
  // perm moves d last; inverse puts it back. The result is a permuted (strided) view.
  std::vector<int64_t> perm, inverse(n);
  for (int64_t i = 0; i < n; ++i)
    if (i != d) perm.push_back(i);
  perm.push_back(d);
  for (int64_t i = 0; i < n; ++i) inverse[perm[i]] = i;
  return permute(along_last(kind, name, permute(x, perm)), inverse);
}

}  // namespace

// y_i = exp(x_i - max_j x_j) / sum_k exp(x_k - max_j x_j) along `dim`; x of any shape with at
// least one dim, float32 or float64. Backward: dx = y (dy - sum(dy y)). (PyTorch's torch.softmax.)
Tensor softmax(const Tensor& x, int64_t dim) { return along(Kind::Softmax, "softmax", x, dim); }

// y_i = x_i - logsumexp(x) = (x_i - max) - log(sum_k exp(x_k - max)) along `dim`; shapes as
// softmax. Backward: dx = dy - exp(y) sum(dy). (PyTorch's torch.log_softmax.)
Tensor log_softmax(const Tensor& x, int64_t dim) {
  return along(Kind::LogSoftmax, "log_softmax", x, dim);
}

}  // namespace lmlab
