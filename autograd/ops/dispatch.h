// dispatch_float: the one place where an op picks its kernels' backend and element type.
//
// Kernels come in two families (docs/ARCHITECTURE.md): cpu:: templates over float and double,
// and cuda:: float32 entry points. dispatch_float(x, op, f) reads x's device and dtype and calls
// f once with a Backend tag, an empty struct that carries both at compile time. There are three:
// Backend<float, Device::CPU>, Backend<double, Device::CPU> and Backend<float, Device::CUDA>, so
// no float64 code is ever instantiated against a cuda:: kernel. A call site names the kernel of
// each backend and writes its arguments once:
//
//   dispatch_float(x, "softmax", [&]<class T, Device D>(Backend<T, D> be) {
//     be.pick(cpu::softmax_forward<T>, cuda::softmax_forward)(x.data<T>(), y.data<T>(), rows, C);
//   });
//
// pick() returns its first argument on the CPU and its second on CUDA. Where the two backends
// take different arguments, branch with `if constexpr (be.cuda)` instead. Any other pair (an int32
// tensor, float64 on CUDA) throws an Error naming the op; the checks at an op's public boundary
// (check_float, check_device_dtype) normally refuse those first, so this is the backstop.
// Internal to autograd/ops/; not part of the public API.
#pragma once
#include <string>

#include "autograd/error.h"
#include "autograd/tensor.h"

namespace lmlab {

template <class T, Device D>
struct Backend {
  using type = T;                                  // the element type the kernel takes
  static constexpr Device device = D;              // where the tensors live
  static constexpr bool cuda = D == Device::CUDA;  // for `if constexpr (be.cuda)`
  template <class CpuKernel, class CudaKernel>     // this backend's kernel of the pair
  static constexpr auto pick(CpuKernel cpu_kernel, CudaKernel cuda_kernel) {
    if constexpr (cuda)
      return cuda_kernel;
    else
      return cpu_kernel;
  }
};

// Throws for a (dtype, device) pair no kernel takes: float64 on CUDA with check_device_dtype's
// message, anything else (int32) naming the dtype, the device and the shape.
[[noreturn]] inline void throw_no_kernel(const Tensor& x, const char* op) {
  check_device_dtype(x, op);
  throw Error(std::string("[") + op + "] has no kernel for " + to_string(x.dtype()) +
              " tensors on " + to_string(x.device()) + " (shape " + to_string(x.shape()) +
              "); kernels take float32 or float64 on the CPU, float32 on CUDA (bfloat16: "
              "only the casts, matmul and causal_attention, e.g. under an AutocastGuard)");
}

// Calls f(Backend<T, D>{}) for x's element type T and device D; returns what f returns.
template <class F>
decltype(auto) dispatch_float(const Tensor& x, const char* op, F&& f) {
  if (x.device() == Device::CPU && x.dtype() == DType::F32) return f(Backend<float, Device::CPU>{});
  if (x.device() == Device::CPU && x.dtype() == DType::F64)
    return f(Backend<double, Device::CPU>{});
  if (x.device() == Device::CUDA && x.dtype() == DType::F32)
    return f(Backend<float, Device::CUDA>{});
  throw_no_kernel(x, op);
}

}  // namespace lmlab
