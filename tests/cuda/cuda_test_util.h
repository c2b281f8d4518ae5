// Shared helpers of the CUDA parity tests: a fixture that skips with a one-line reason when no GPU
// is visible, random float32 inputs, and a runner that evaluates one function on CPU and GPU
// copies of its inputs and compares the outputs and every input gradient.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "autograd/kernels/cuda_runtime.h"
#include "autograd/ops.h"
#include "autograd/random.h"
#include "autograd/tape.h"

namespace lmlab::test {

// Every CUDA test derives from this: SetUp skips the test when no GPU is visible (or lmlab was
// built without CUDA), naming why.
class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda::available()) GTEST_SKIP() << cuda::unavailable_reason();
    cuda::set_tf32(false);
  }
  void TearDown() override {
    if (cuda::available()) cuda::set_tf32(false);
  }
};

// A float32 CPU tensor with N(0, std^2) (or U[lo, hi)) entries.
inline Tensor randn32(const Shape& shape, uint64_t seed, double std = 1) {
  Generator gen(seed);
  return Tensor::randn(shape, gen, DType::F32, 0, std);
}
inline Tensor rand32(const Shape& shape, uint64_t seed, double lo, double hi) {
  Generator gen(seed);
  return Tensor::rand(shape, gen, DType::F32, lo, hi);
}
// int32 ids in [0, n) (a CPU tensor).
inline Tensor random_ids(const Shape& shape, int32_t n, uint64_t seed) {
  Generator gen(seed);
  std::vector<float> u = Tensor::rand(shape, gen, DType::F32, 0, 1).to_vector<float>();
  std::vector<int32_t> ids(u.size());
  for (size_t i = 0; i < u.size(); ++i) ids[i] = std::min<int32_t>(n - 1, int32_t(u[i] * float(n)));
  return Tensor::from_vector(ids, shape);
}

// max |got - want| <= rtol * max |want| (got may live on the GPU).
inline ::testing::AssertionResult Close(const Tensor& got, const Tensor& want, double rtol,
                                        const std::string& what = "") {
  if (!got.defined() || !want.defined())
    return ::testing::AssertionFailure() << what << ": undefined tensor";
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure()
           << what << ": shape " << to_string(got.shape()) << " vs " << to_string(want.shape());
  const std::vector<float> g = got.to(Device::CPU).contiguous().to_vector<float>();
  const std::vector<float> w = want.to(Device::CPU).contiguous().to_vector<float>();
  double scale = 0, err = 0;
  size_t at = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    scale = std::max(scale, double(std::fabs(w[i])));
    const double e = std::fabs(double(g[i]) - double(w[i]));
    if (!(e <= err)) err = e, at = i;  // NaN counts as the worst error
  }
  if (err <= rtol * std::max(scale, 1e-30)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": max |cuda - cpu| = " << err << " at " << at
                                       << " (cuda " << g[at] << ", cpu " << w[at] << "), allowed "
                                       << rtol << " * " << scale;
}

// Bitwise equality of two float32 or int32 tensors (got may live on the GPU).
inline ::testing::AssertionResult Same(const Tensor& got, const Tensor& want,
                                       const std::string& what = "") {
  if (got.shape() != want.shape() || got.dtype() != want.dtype())
    return ::testing::AssertionFailure() << what << ": shape or dtype differs";
  const Tensor g = got.to(Device::CPU).contiguous(), w = want.to(Device::CPU).contiguous();
  const size_t bytes = size_t(w.numel()) * dtype_size(w.dtype());
  if (bytes == 0 || std::memcmp(g.raw_data(), w.raw_data(), bytes) == 0)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": not bitwise equal";
}

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Runs f on CPU leaves and on GPU copies of `inputs` (float inputs require grad, int32 ones are
// plain), then backward from sum(y * dy) with one random dy, and checks y and every float input's
// gradient: Close(cuda, cpu, rtol). f may build views (transposes, slices) of its inputs, so
// non-contiguous paths run on both devices.
inline ::testing::AssertionResult Parity(const OpFn& f, const std::vector<Tensor>& inputs,
                                         double rtol, const std::string& what,
                                         bool backward = true) {
  std::vector<Tensor> cpu_in, gpu_in;
  for (const Tensor& x : inputs) {
    Tensor c = x.clone().detach(), g = x.to(Device::CUDA).detach();
    if (is_float(x.dtype()) && backward) {
      c.requires_grad_();
      g.requires_grad_();
    }
    cpu_in.push_back(c);
    gpu_in.push_back(g);
  }
  Tensor y_cpu = f(cpu_in), y_gpu = f(gpu_in);
  if (y_gpu.device() != Device::CUDA)
    return ::testing::AssertionFailure() << what << ": the result is not on the GPU";
  ::testing::AssertionResult r = Close(y_gpu, y_cpu, rtol, what + " forward");
  if (!r || !backward) return r;
  const Tensor dy = randn32(y_cpu.shape(), 977);
  tape::backward(sum(mul(y_cpu, dy)));
  tape::backward(sum(mul(y_gpu, dy.to(Device::CUDA))));
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!cpu_in[i].requires_grad()) continue;
    const Tensor gc = cpu_in[i].grad(), gg = gpu_in[i].grad();
    if (!gc.defined() && !gg.defined()) continue;
    if (gg.defined() && gg.device() != Device::CUDA)
      return ::testing::AssertionFailure() << what << ": gradient " << i << " is not on the GPU";
    r = Close(gg, gc, rtol, what + " grad of input " + std::to_string(i));
    if (!r) return r;
  }
  return ::testing::AssertionSuccess();
}

}  // namespace lmlab::test
