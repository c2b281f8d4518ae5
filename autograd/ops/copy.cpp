// Differentiable copies: contiguous(), clone(), device moves and dtype conversion.
#include "autograd/kernels/copy.h"

#include "autograd/kernels/cuda_runtime.h"
#include "autograd/ops.h"

namespace lmlab {

// Copies x into a new contiguous tensor on the same device (no autograd).
static Tensor copy_data(const Tensor& x) {
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  NoGradGuard guard;
  y.copy_(x);
  return y;
}

Tensor contiguous_copy(const Tensor& x) {
  check_defined(x, "contiguous");
  if (x.is_contiguous()) return x;
  return clone(x);
}

Tensor clone(const Tensor& x) {
  check_defined(x, "clone");
  Tensor y = copy_data(x);
  tape::record("clone", {x}, y, [](const Tensor& dy) { return Grads{dy}; });
  return y;
}

Tensor to_device(const Tensor& x, Device device) {
  check_defined(x, "to");
  if (x.device() == device) return x;
  check_device_dtype(x.dtype(), device, "to");  // the target device: x itself is on the CPU
  Tensor src = x.is_contiguous() ? x : copy_data(x);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), device);
  const size_t nbytes = size_t(x.numel()) * dtype_size(x.dtype());
  if (nbytes > 0) {
    if (device == Device::CUDA)
      cuda::copy_host_to_device(y.raw_data(), src.raw_data(), nbytes);
    else
      cuda::copy_device_to_host(y.raw_data(), src.raw_data(), nbytes);
  }
  const Device from = x.device();
  tape::record("to_device", {x}, y,
               [from](const Tensor& dy) { return Grads{to_device(dy, from)}; });
  return y;
}

template <class From, class To>
static void convert_into(const Tensor& x, Tensor& y) {
  cpu::convert(x.data<From>(), y.data<To>(), x.numel());
}

Tensor to_dtype(const Tensor& x, DType dtype) {
  check_defined(x, "to");
  if (x.dtype() == dtype) return x;
  if (x.device() != Device::CPU)
    throw Error(
        "[to] dtype conversion runs on the CPU; move the tensor with .to(Device::CPU) first");
  Tensor c = x.is_contiguous() ? x : copy_data(x);  // the node below covers x; no clone node
  Tensor y = Tensor::empty(x.shape(), dtype);
  using D = DType;
  if (x.dtype() == D::F32 && dtype == D::F64) convert_into<float, double>(c, y);
  if (x.dtype() == D::F64 && dtype == D::F32) convert_into<double, float>(c, y);
  if (x.dtype() == D::I32 && dtype == D::F32) convert_into<int32_t, float>(c, y);
  if (x.dtype() == D::I32 && dtype == D::F64) convert_into<int32_t, double>(c, y);
  if (x.dtype() == D::F32 && dtype == D::I32) convert_into<float, int32_t>(c, y);
  if (x.dtype() == D::F64 && dtype == D::I32) convert_into<double, int32_t>(c, y);
  if (is_float(dtype)) {
    const DType from = x.dtype();
    tape::record("to_dtype", {x}, y,
                 [from](const Tensor& dy) { return Grads{to_dtype(dy, from)}; });
  }
  return y;
}

}  // namespace lmlab
