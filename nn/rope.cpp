#include "nn/rope.h"

#include <cmath>

namespace lmlab::nn {

Rope::Rope(int64_t head_size, int64_t max_positions, double base)
    : half_(head_size / 2), max_positions_(max_positions) {
  cos64_ = Tensor::empty({max_positions, half_}, DType::F64);
  sin64_ = Tensor::empty({max_positions, half_}, DType::F64);
  for (int64_t m = 0; m < max_positions; ++m)
    for (int64_t i = 0; i < half_; ++i) {
      const double theta = std::pow(base, -2.0 * double(i) / double(head_size));
      cos64_.data<double>()[m * half_ + i] = std::cos(double(m) * theta);
      sin64_.data<double>()[m * half_ + i] = std::sin(double(m) * theta);
    }
  cos32_ = cos64_.to(DType::F32);
  sin32_ = sin64_.to(DType::F32);
}

Tensor Rope::apply(const Tensor& x, int64_t pos0) const {
  const int64_t T = x.size(-2);
  if (x.size(-1) != 2 * half_)
    throw Error("[rope] head size " + std::to_string(x.size(-1)) + " does not match the table's " +
                std::to_string(2 * half_) + " (x is " + to_string(x.shape()) + ")");
  if (pos0 < 0 || pos0 + T > max_positions_)
    throw Error("[rope] positions [" + std::to_string(pos0) + ", " + std::to_string(pos0 + T) +
                ") exceed the " + std::to_string(max_positions_) + " precomputed positions");
  const bool f64 = x.dtype() == DType::F64;
  const Tensor* cos_table = f64 ? &cos64_ : &cos32_;
  const Tensor* sin_table = f64 ? &sin64_ : &sin32_;
  if (x.device() == Device::CUDA && !f64) {
    if (!cos32_gpu_.defined()) {
      cos32_gpu_ = cos32_.to(Device::CUDA);
      sin32_gpu_ = sin32_.to(Device::CUDA);
    }
    cos_table = &cos32_gpu_, sin_table = &sin32_gpu_;
  }
  // (T, HS/2), broadcast; .to() is a no-op where the table already lives on x's device (float64
  // on the GPU is refused there with its usual message).
  Tensor c = narrow(*cos_table, 0, pos0, T).to(x.device());
  Tensor s = narrow(*sin_table, 0, pos0, T).to(x.device());
  Tensor x1 = narrow(x, -1, 0, half_), x2 = narrow(x, -1, half_, half_);
  return concat({sub(mul(x1, c), mul(x2, s)), add(mul(x2, c), mul(x1, s))}, -1);
}

}  // namespace lmlab::nn
