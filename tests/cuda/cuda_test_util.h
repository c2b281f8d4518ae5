// Shared helpers of the device parity tests: fixtures that skip with a one-line reason when no GPU
// is visible, random float32 inputs, and a runner that evaluates one function on CPU leaves and on
// copies of its inputs on the device under test, and compares the outputs and every input gradient.
//
// The op-level suites (tests/cuda/test_cuda_<family>.cpp) are device-generic: each test runs once
// on the GPU and once CPU against CPU. The CPU run is in every build and CI run, so a harness bug
// (a lost gradient, a test case that no device accepts) fails where everyone sees it, not only on
// the rare machine with a GPU.
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

// The device-generic suites: TEST_P(FamilyParity, ...) with the device as parameter, instantiated
// with INSTANTIATE_TEST_SUITE_P(Devices, FamilyParity, Values(Device::CUDA, Device::CPU),
// device_name) (ctest names end in /cuda and /cpu; scripts/gpu_check.sh selects the /cuda ones).
class DeviceParity : public ::testing::TestWithParam<Device> {
 protected:
  Device device() const { return GetParam(); }
  // TF32 GEMMs where the device has them (the CPU has none: its GEMMs stay fp32).
  void use_tf32() {
    if (device() == Device::CUDA) cuda::set_tf32(true);
  }
  void SetUp() override {
    if (device() == Device::CUDA && !cuda::available()) GTEST_SKIP() << cuda::unavailable_reason();
    if (device() == Device::CUDA) cuda::set_tf32(false);
  }
  void TearDown() override {
    if (device() == Device::CUDA && cuda::available()) cuda::set_tf32(false);
  }
};
inline std::string device_name(const ::testing::TestParamInfo<Device>& info) {
  return to_string(info.param);
}

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

// max |got - want| <= rtol * max |want| (either may live on the GPU).
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
  const std::string dev = to_string(got.device());
  return ::testing::AssertionFailure()
         << what << ": max |" << dev << " - cpu| = " << err << " at " << at << " (" << dev << " "
         << g[at] << ", cpu " << w[at] << "), allowed " << rtol << " * " << scale;
}

// Bitwise equality of two float32 or int32 tensors (either may live on the GPU).
inline ::testing::AssertionResult Same(const Tensor& got, const Tensor& want,
                                       const std::string& what = "") {
  if (!got.defined() || !want.defined())
    return ::testing::AssertionFailure() << what << ": undefined tensor";
  if (got.shape() != want.shape() || got.dtype() != want.dtype())
    return ::testing::AssertionFailure() << what << ": shape or dtype differs";
  const Tensor g = got.to(Device::CPU).contiguous(), w = want.to(Device::CPU).contiguous();
  const size_t bytes = size_t(w.numel()) * dtype_size(w.dtype());
  if (bytes == 0 || std::memcmp(g.raw_data(), w.raw_data(), bytes) == 0)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": not bitwise equal";
}

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Runs f on CPU leaves and on copies of `inputs` on `device` (float inputs require grad, int32 ones
// are plain), differentiates sum(y * dy) for one random dy on each, and checks y and every float
// input's gradient (which must exist): Close(device, cpu, rtol). Each graph is differentiated as
// soon as it is built (the tape would keep both, but a harness should not depend on it). f may
// build views (transposes, slices) of its inputs, so non-contiguous paths run on both sides.
inline ::testing::AssertionResult Parity(Device device, const OpFn& f,
                                         const std::vector<Tensor>& inputs, double rtol,
                                         const std::string& what, bool backward = true) {
  std::vector<Tensor> cpu_in, dev_in;
  for (const Tensor& x : inputs) {
    Tensor c = x.clone().detach(), d = x.to(device).detach();
    if (is_float(x.dtype()) && backward) {
      c.requires_grad_();
      d.requires_grad_();
    }
    cpu_in.push_back(c);
    dev_in.push_back(d);
  }
  auto differentiate = [&](const Tensor& y, const Tensor& dy) {
    if (backward) tape::backward(sum(mul(y, dy.to(y.device()))));
  };
  const Tensor y_cpu = f(cpu_in);
  const Tensor dy = randn32(y_cpu.shape(), 977);
  differentiate(y_cpu, dy);
  const Tensor y_dev = f(dev_in);
  differentiate(y_dev, dy);
  if (y_dev.device() != device)
    return ::testing::AssertionFailure() << what << ": the result is not on " << to_string(device);
  ::testing::AssertionResult r = Close(y_dev, y_cpu, rtol, what + " forward");
  if (!r || !backward) return r;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!cpu_in[i].requires_grad()) continue;
    const Tensor gc = cpu_in[i].grad(), gd = dev_in[i].grad();
    // Every float input of these ops receives a gradient: none on the reference is a lost one.
    if (!gc.defined())
      return ::testing::AssertionFailure() << what << ": no gradient reached input " << i;
    if (gd.defined() && gd.device() != device)
      return ::testing::AssertionFailure()
             << what << ": gradient " << i << " is not on " << to_string(device);
    r = Close(gd, gc, rtol, what + " grad of input " + std::to_string(i));
    if (!r) return r;
  }
  return ::testing::AssertionSuccess();
}

}  // namespace lmlab::test
