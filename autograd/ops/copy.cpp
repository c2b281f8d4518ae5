// Differentiable copies: contiguous(), clone(), device moves and dtype conversion.
#include "autograd/kernels/copy.h"

#include <algorithm>
#include <vector>

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
  if (x.device() == Device::CUDA) {
    if constexpr (requires { cuda::convert(x.data<From>(), y.data<To>(), x.numel()); })
      cuda::convert(x.data<From>(), y.data<To>(), x.numel());
  } else {
    cpu::convert(x.data<From>(), y.data<To>(), x.numel());
  }
}

// Converts contiguous c into y (a new tensor of y's dtype, same device); false when no kernel does
// that pair on c's device.
static bool convert_pair(const Tensor& c, Tensor& y) {
  using D = DType;
  const D from = c.dtype(), to = y.dtype();
  if (from == D::F32 && to == D::BF16) return convert_into<float, bf16>(c, y), true;
  if (from == D::BF16 && to == D::F32) return convert_into<bf16, float>(c, y), true;
  if (c.device() == Device::CUDA) return false;  // the GPU converts float32 <-> bfloat16 only
  if (from == D::F32 && to == D::F64) return convert_into<float, double>(c, y), true;
  if (from == D::F64 && to == D::F32) return convert_into<double, float>(c, y), true;
  if (from == D::I32 && to == D::F32) return convert_into<int32_t, float>(c, y), true;
  if (from == D::I32 && to == D::F64) return convert_into<int32_t, double>(c, y), true;
  if (from == D::F32 && to == D::I32) return convert_into<float, int32_t>(c, y), true;
  if (from == D::F64 && to == D::I32) return convert_into<double, int32_t>(c, y), true;
  // float64 -> bfloat16 rounds through float32 (as PyTorch's c10::BFloat16 does).
  if (from == D::F64 && to == D::BF16) return convert_into<double, bf16>(c, y), true;
  if (from == D::BF16 && to == D::F64) return convert_into<bf16, double>(c, y), true;
  return false;
}

// Whether x's elements fill numel() consecutive elements of its storage in some order of its dims
// (a transposed or permuted view of a contiguous tensor): strides >= 0 that, sorted, are the
// contiguous strides of the dims in that order.
static bool dense(const Tensor& x) {
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (x.shape()[d] != 1) dims.push_back(d);
  std::sort(dims.begin(), dims.end(),
            [&](int64_t a, int64_t b) { return x.strides()[a] < x.strides()[b]; });
  int64_t expected = 1;
  for (int64_t d : dims) {
    if (x.strides()[d] != expected) return false;
    expected *= x.shape()[d];
  }
  return true;
}

Tensor to_dtype(const Tensor& x, DType dtype) {
  check_defined(x, "to");
  if (x.dtype() == dtype) return x;
  check_device_dtype(dtype, x.device(), "to");
  // A dense view keeps its layout (PyTorch's preserve_format): its block is converted as it lies,
  // so a cast Linear weight^T stays a transposed view and cast attention heads stay strided.
  const bool keep_layout = !x.is_contiguous() && dense(x);
  Tensor c = x.is_contiguous() ? x
             : keep_layout     ? make_view(x, {x.numel()}, {1}, x.offset())
                               : copy_data(x);  // the node below covers x; no clone node
  Tensor y = Tensor::empty(c.shape(), dtype, x.device());
  if (!convert_pair(c, y))
    throw Error("[to] no conversion from " + to_string(x.dtype()) + " to " + to_string(dtype) +
                " on " + to_string(x.device()) + " (shape " + to_string(x.shape()) +
                "); the GPU converts between float32 and bfloat16 only: move the tensor with "
                ".to(Device::CPU) first");
  if (keep_layout) y = make_view(y, x.shape(), x.strides(), 0);
  if (is_float(dtype) && is_float(x.dtype())) {
    const DType from = x.dtype();
    tape::record("to_dtype", {x}, y,
                 [from](const Tensor& dy) { return Grads{to_dtype(dy, from)}; });
  }
  return y;
}

}  // namespace lmlab
