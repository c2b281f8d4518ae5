// Reductions: sum, mean, max, var over any set of dims, and sum_to (the adjoint of broadcasting).
// A reduction over several dims runs as a chain of single-block reductions, each one recorded:
// (outer, R, inner) with R the product of one run of adjacent reduced dims.
#include "autograd/kernels/reduce.h"

#include <algorithm>

#include "autograd/ops.h"
#include "autograd/ops/dispatch.h"

namespace lmlab {

namespace {

enum class Reduce { Sum, Max };

struct Block {
  int64_t outer = 1, R = 1, inner = 1;
};

Block block_of(const Shape& s, int64_t first, int64_t last) {  // reduce dims [first, last]
  Block b;
  for (int64_t d = 0; d < first; ++d) b.outer *= s[d];
  for (int64_t d = first; d <= last; ++d) b.R *= s[d];
  for (int64_t d = last + 1; d < int64_t(s.size()); ++d) b.inner *= s[d];
  return b;
}

// y = scale * sum, or max, over the R dim of each (outer, R, inner) block of x.
void block_kernel(Reduce kind, const Tensor& x, Tensor& y, const Block& b, double scale) {
  const char* op = kind == Reduce::Sum ? "sum" : "max";
  dispatch_float(x, op, [&]<class T, Device D>(Backend<T, D> be) {
    const T* px = x.data<T>();
    if (kind == Reduce::Sum)
      be.pick(cpu::sum_dim<T>, cuda::sum_dim)(px, y.data<T>(), b.outer, b.R, b.inner, scale);
    else
      be.pick(cpu::max_dim<T>, cuda::max_dim)(px, y.data<T>(), b.outer, b.R, b.inner);
  });
}

// Reduces dims [first, last] of x, keeping them as size-1 dims.
Tensor reduce_block(Reduce kind, const Tensor& x_in, int64_t first, int64_t last, double scale) {
  Tensor x = x_in.contiguous();
  const Block b = block_of(x.shape(), first, last);
  Shape out = x.shape();
  for (int64_t d = first; d <= last; ++d) out[d] = 1;
  Tensor y = Tensor::empty(out, x.dtype(), x.device());
  if (b.R == 0 && kind == Reduce::Max && y.numel() > 0)
    throw Error("[max] cannot reduce an empty dim of shape " + to_string(x.shape()));
  if (b.R == 0)
    y.fill_(0);  // an empty sum is 0; it still records below, so backward reaches x
  else
    block_kernel(kind, x, y, b, scale);
  if (kind == Reduce::Sum) {
    // dx = scale * dy broadcast back over the reduced dims
    tape::record("sum", {x}, y, [in = x.shape(), scale](const Tensor& dy) {
      Tensor dx = Tensor::empty(in, dy.dtype(), dy.device());
      dx.copy_(scale == 1 ? dy : mul(dy, scale));
      return Grads{dx};
    });
  } else if (tape::needs_grad({x})) {
    Saved sx(x), sy(y);
    tape::record("max", {x}, y, [sx, sy, b](const Tensor& dy_in) {
      const Tensor& xv = sx.get("max");
      const Tensor& yv = sy.get("max");
      Tensor dy = dy_in.contiguous();
      Tensor dx = Tensor::empty_like(xv);
      dispatch_float(xv, "max", [&]<class T, Device D>(Backend<T, D> be) {
        be.pick(cpu::max_dim_backward<T>, cuda::max_dim_backward)(
            xv.data<T>(), yv.data<T>(), dy.data<T>(), dx.data<T>(), b.outer, b.R, b.inner);
      });
      return Grads{dx};
    });
  }
  return y;
}

// Sorted, unique, non-negative dims; empty means all.
std::vector<int64_t> normalize_dims(const Tensor& x, const std::vector<int64_t>& dims,
                                    const char* op) {
  std::vector<int64_t> out;
  if (dims.empty()) {
    for (int64_t d = 0; d < x.dim(); ++d) out.push_back(d);
    return out;
  }
  for (int64_t d : dims) out.push_back(normalize_dim(d, x.dim(), op, x.shape()));
  std::sort(out.begin(), out.end());
  if (std::adjacent_find(out.begin(), out.end()) != out.end())
    throw Error(std::string("[") + op + "] a dim appears twice in the reduction over shape " +
                to_string(x.shape()));
  return out;
}

// Max over dims that form several runs: the reduced dims are permuted to the end and reduced as
// one block, so dy splits evenly among all tied maxima (a chain of per-run maxes would split it
// per run: 1/2 then 1/2 instead of 1/3 each for three ties).
Tensor max_over_runs(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  std::vector<int64_t> order;  // kept dims, then reduced dims
  Shape kept_shape, keepdim_shape = x.shape();
  for (int64_t d = 0; d < x.dim(); ++d)
    if (!std::binary_search(dims.begin(), dims.end(), d)) {
      order.push_back(d);
      kept_shape.push_back(x.shape()[d]);
    }
  for (int64_t d : dims) {
    order.push_back(d);
    keepdim_shape[d] = 1;
  }
  const int64_t first = x.dim() - int64_t(dims.size());
  Tensor y = reduce_block(Reduce::Max, permute(x, order), first, x.dim() - 1, 1.0);
  return reshape(y, keepdim ? keepdim_shape : kept_shape);
}

Tensor reduce(Reduce kind, const char* op, const Tensor& x, const std::vector<int64_t>& dims_in,
              bool keepdim, bool average) {
  check_float(x, op, "x");
  const std::vector<int64_t> dims = normalize_dims(x, dims_in, op);
  int64_t count = 1;
  for (int64_t d : dims) count *= x.shape()[d];
  const bool one_run = dims.empty() || dims.back() - dims.front() + 1 == int64_t(dims.size());
  if (kind == Reduce::Max && !one_run) return max_over_runs(x, dims, keepdim);
  Tensor y = x;
  // Runs of adjacent dims, last run first, so earlier dim indices stay valid.
  for (int64_t i = int64_t(dims.size()) - 1; i >= 0;) {
    int64_t j = i;
    while (j > 0 && dims[j - 1] == dims[j] - 1) --j;
    const bool last_block = j == 0;
    const double scale = average && last_block && count > 0 ? 1.0 / double(count) : 1.0;
    y = reduce_block(kind, y, dims[j], dims[i], scale);
    i = j - 1;
  }
  if (!keepdim) {
    Shape s;
    for (int64_t d = 0; d < x.dim(); ++d)
      if (!std::binary_search(dims.begin(), dims.end(), d)) s.push_back(x.shape()[d]);
    y = reshape(y, s);
  }
  return y;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return reduce(Reduce::Sum, "sum", x, dims, keepdim, false);
}
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return reduce(Reduce::Sum, "mean", x, dims, keepdim, true);
}
Tensor max(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return reduce(Reduce::Max, "max", x, dims, keepdim, false);
}

Tensor var(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, int64_t correction) {
  check_float(x, "var", "x");
  const std::vector<int64_t> d = normalize_dims(x, dims, "var");
  int64_t n = 1;
  for (int64_t k : d) n *= x.shape()[k];
  if (n - correction <= 0)
    throw Error("[var] " + std::to_string(n) + " elements with correction " +
                std::to_string(correction) + " leave no degrees of freedom (shape " +
                to_string(x.shape()) + ")");
  Tensor centered = sub(x, mean(x, d, true));
  return mul(sum(mul(centered, centered), d, keepdim), 1.0 / double(n - correction));
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  // bfloat16 (a bf16 matmul's gradient over broadcast batch dims): summed in float32, rounded once.
  if (x.dtype() == DType::BF16)
    return to_dtype(sum_to(to_dtype(x, DType::F32), shape), DType::BF16);
  const int64_t lead = x.dim() - int64_t(shape.size());
  if (lead < 0)
    throw Error("[sum_to] cannot reduce shape " + to_string(x.shape()) + " to " + to_string(shape));
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (d < lead) {
      dims.push_back(d);
    } else if (shape[d - lead] == 1 && x.shape()[d] != 1) {
      dims.push_back(d);
    } else if (shape[d - lead] != x.shape()[d]) {
      throw Error("[sum_to] cannot reduce shape " + to_string(x.shape()) + " to " +
                  to_string(shape));
    }
  }
  return reshape(sum(x, dims, true), shape);
}

}  // namespace lmlab
