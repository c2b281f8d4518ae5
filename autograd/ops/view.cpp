// Views and shape ops: reshape, transpose, permute, narrow/slice, (un)squeeze, concat, split.
// Views share storage; their backward maps dy back to the input's shape.
#include <numeric>

#include "autograd/ops.h"

namespace lmlab {

static Shape infer_shape(const Shape& shape, int64_t n, const Shape& from) {
  Shape out = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      if (infer >= 0) throw Error("[reshape] only one dim can be -1, got " + to_string(shape));
      infer = int64_t(i);
    } else if (out[i] < 0) {
      throw Error("[reshape] invalid size in " + to_string(shape));
    } else {
      known *= out[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || n % known != 0)
      throw Error("[reshape] cannot reshape " + to_string(from) + " into " + to_string(shape));
    out[infer] = n / known;
  }
  if (numel(out) != n)
    throw Error("[reshape] cannot reshape " + to_string(from) + " (" + std::to_string(n) +
                " elements) into " + to_string(shape));
  return out;
}

Tensor reshape(const Tensor& x, const Shape& shape) {
  check_defined(x, "reshape");
  Shape out = infer_shape(shape, x.numel(), x.shape());
  Tensor c = x.contiguous();  // records a copy node if x was not contiguous
  Tensor y = make_view(c, out, contiguous_strides(out), c.offset());
  const Shape in = x.shape();
  tape::record("reshape", {c}, y, [in](const Tensor& dy) { return Grads{reshape(dy, in)}; });
  return y;
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  check_defined(x, "permute");
  const int64_t n = x.dim();
  if (int64_t(dims.size()) != n)
    throw Error("[permute] " + std::to_string(dims.size()) + " dims given for shape " +
                to_string(x.shape()));
  std::vector<int64_t> p(n), inverse(n, -1);
  Shape shape(n);
  Strides strides(n);
  for (int64_t i = 0; i < n; ++i) {
    p[i] = normalize_dim(dims[i], n, "permute", x.shape());
    if (inverse[p[i]] != -1)
      throw Error("[permute] dim " + std::to_string(dims[i]) + " repeated in " + to_string(dims) +
                  " for shape " + to_string(x.shape()));
    inverse[p[i]] = i;
    shape[i] = x.shape()[p[i]];
    strides[i] = x.strides()[p[i]];
  }
  Tensor y = make_view(x, shape, strides, x.offset());
  tape::record("permute", {x}, y,
               [inverse](const Tensor& dy) { return Grads{permute(dy, inverse)}; });
  return y;
}

Tensor transpose(const Tensor& x, int64_t d0, int64_t d1) {
  check_defined(x, "transpose");
  const int64_t n = x.dim();
  std::vector<int64_t> p(n);
  std::iota(p.begin(), p.end(), 0);
  std::swap(p[normalize_dim(d0, n, "transpose", x.shape())],
            p[normalize_dim(d1, n, "transpose", x.shape())]);
  return permute(x, p);
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  check_defined(x, "narrow");
  const int64_t d = normalize_dim(dim, x.dim(), "narrow", x.shape());
  const int64_t n = x.shape()[d];
  if (start < 0) start += n;
  if (start < 0 || length < 0 || start + length > n)
    throw Error("[narrow] range [" + std::to_string(start) + ", " + std::to_string(start + length) +
                ") out of bounds for dim " + std::to_string(dim) + " of shape " +
                to_string(x.shape()));
  Shape shape = x.shape();
  shape[d] = length;
  Tensor y = make_view(x, shape, x.strides(), x.offset() + start * x.strides()[d]);
  const Shape in = x.shape();
  const DType dt = x.dtype();
  const Device dev = x.device();
  tape::record("narrow", {x}, y, [in, dt, dev, d, start, length](const Tensor& dy) {
    Tensor dx = Tensor::zeros(in, dt, dev);
    dx.narrow(d, start, length).copy_(dy);
    return Grads{dx};
  });
  return y;
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end) {
  check_defined(x, "slice");
  const int64_t n = x.shape()[normalize_dim(dim, x.dim(), "slice", x.shape())];
  if (start < 0) start += n;
  if (end < 0) end += n;
  if (start < 0 || end > n || start > end)
    throw Error("[slice] range [" + std::to_string(start) + ", " + std::to_string(end) +
                ") out of bounds for dim " + std::to_string(dim) + " of shape " +
                to_string(x.shape()));
  return narrow(x, dim, start, end - start);
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  check_defined(x, "unsqueeze");
  Shape s = x.shape();
  s.insert(s.begin() + normalize_dim(dim, x.dim() + 1, "unsqueeze", x.shape()), 1);
  return reshape(x, s);
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  check_defined(x, "squeeze");
  const int64_t d = normalize_dim(dim, x.dim(), "squeeze", x.shape());
  if (x.shape()[d] != 1)
    throw Error("[squeeze] dim " + std::to_string(dim) + " of shape " + to_string(x.shape()) +
                " is not 1");
  Shape s = x.shape();
  s.erase(s.begin() + d);
  return reshape(x, s);
}

Tensor concat(const std::vector<Tensor>& xs, int64_t dim) {
  if (xs.empty()) throw Error("[concat] needs at least one tensor");
  for (const Tensor& t : xs) check_defined(t, "concat");
  const Tensor& first = xs[0];
  const int64_t d = normalize_dim(dim, first.dim(), "concat", first.shape());
  Shape out = first.shape();
  out[d] = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& t = xs[i];
    check_same_dtype(first, t, "concat");
    check_same_device(first, t, "concat");
    bool ok = t.dim() == first.dim();
    for (int64_t k = 0; ok && k < t.dim(); ++k) ok = k == d || t.shape()[k] == first.shape()[k];
    if (!ok)
      throw Error("[concat] tensor " + std::to_string(i) + " has shape " + to_string(t.shape()) +
                  ", tensor 0 has " + to_string(first.shape()) + "; all dims but " +
                  std::to_string(dim) + " must match");
    out[d] += t.shape()[d];
  }
  Tensor y = Tensor::empty(out, first.dtype(), first.device());
  std::vector<int64_t> sizes;
  {
    NoGradGuard guard;
    int64_t at = 0;
    for (const Tensor& t : xs) {
      y.narrow(d, at, t.shape()[d]).copy_(t);
      at += t.shape()[d];
      sizes.push_back(t.shape()[d]);
    }
  }
  tape::record("concat", xs, y, [sizes, d](const Tensor& dy) {
    Grads g;
    int64_t at = 0;
    for (int64_t s : sizes) {
      g.push_back(dy.narrow(d, at, s));
      at += s;
    }
    return g;
  });
  return y;
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  check_defined(x, "split");
  const int64_t d = normalize_dim(dim, x.dim(), "split", x.shape());
  int64_t total = 0;
  for (int64_t s : sizes) {
    if (s < 0) throw Error("[split] negative size " + std::to_string(s));
    total += s;
  }
  if (total != x.shape()[d])
    throw Error("[split] sizes add up to " + std::to_string(total) + " but dim " +
                std::to_string(dim) + " of shape " + to_string(x.shape()) + " is " +
                std::to_string(x.shape()[d]));
  std::vector<Tensor> out;
  int64_t at = 0;
  for (int64_t s : sizes) {
    out.push_back(narrow(x, d, at, s));
    at += s;
  }
  return out;
}

std::vector<Tensor> split(const Tensor& x, int64_t size, int64_t dim) {
  check_defined(x, "split");
  if (size <= 0) throw Error("[split] size must be positive, got " + std::to_string(size));
  const int64_t n = x.shape()[normalize_dim(dim, x.dim(), "split", x.shape())];
  std::vector<int64_t> sizes;
  for (int64_t at = 0; at < n; at += size) sizes.push_back(std::min(size, n - at));
  return split(x, sizes, dim);
}

}  // namespace lmlab
