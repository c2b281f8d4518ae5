// Masking: masked_fill (y = mask ? value : x, the int32 mask broadcast to x) and causal_mask, the
// (T, T) pattern of positions that causal attention hides.
#include <string>

#include "autograd/kernels/index.h"
#include "autograd/ops.h"
#include "autograd/ops/dispatch.h"

namespace lmlab {

// The mask must broadcast *to* x: no more dims than x, and each trailing dim 1 or equal.
static void check_mask_broadcasts(const Tensor& mask, const Tensor& x) {
  bool ok = mask.dim() <= x.dim();
  for (int64_t i = 1; ok && i <= mask.dim(); ++i) {
    const int64_t m = mask.shape()[size_t(mask.dim() - i)], n = x.shape()[size_t(x.dim() - i)];
    ok = m == 1 || m == n;
  }
  if (!ok)
    throw Error("[masked_fill] mask of shape " + to_string(mask.shape()) +
                " cannot be broadcast to x of shape " + to_string(x.shape()));
}

// y = mask ? value : x over x's shape; no autograd.
static Tensor masked_fill_forward(const Tensor& x_in, const Tensor& mask, double value) {
  Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty_like(x);
  if (y.numel() == 0) return y;
  const Strides sm = broadcast_strides(mask.shape(), mask.strides(), x.shape());
  const int64_t nd = x.dim();
  dispatch_float(x, "masked_fill", [&]<class T, Device D>(Backend<T, D> be) {
    be.pick(cpu::masked_fill<T>, cuda::masked_fill)(x.data<T>(), mask.data<int32_t>(), sm.data(),
                                                    T(value), y.data<T>(), x.shape().data(), nd);
  });
  return y;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  check_float(x, "masked_fill", "x");
  check_defined(mask, "masked_fill", "mask");
  if (mask.dtype() != DType::I32)
    throw Error("[masked_fill] mask must be int32, got " + to_string(mask.dtype()) + " of shape " +
                to_string(mask.shape()) + " (x is " + to_string(x.shape()) + ")");
  if (mask.device() != x.device())
    throw Error("[masked_fill] x is on " + to_string(x.device()) + " but mask is on " +
                to_string(mask.device()));
  check_mask_broadcasts(mask, x);
  Tensor y = masked_fill_forward(x, mask, value);
  if (tape::needs_grad({x})) {
    // dx = dy where the mask is 0, and 0 where it filled (the fill value is a constant).
    Saved smask(mask);
    tape::record("masked_fill", {x}, y, [smask](const Tensor& dy) {
      return Grads{masked_fill_forward(dy, smask.get("masked_fill"), 0.0)};
    });
  }
  return y;
}

Tensor causal_mask(int64_t T, Device device) {
  if (T < 0) throw Error("[causal_mask] T must be non-negative, got " + std::to_string(T));
  std::vector<int32_t> m(size_t(T * T));
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < T; ++j) m[size_t(i * T + j)] = j > i ? 1 : 0;
  Tensor mask = Tensor::from_vector(m, {T, T});
  return device == Device::CPU ? mask : mask.to(device);
}

}  // namespace lmlab
