// CUDA == CPU for the optimizer kernels: the multi-tensor AdamW (decayed 2-D and undecayed 1-D
// tensors; many tensors of several chunks) and SGD with momentum over several steps, and gradient
// clipping (global norm and scale). The GPU update rounds like the CPU's, operation for operation,
// so the tolerance is a few ulps.
#include "optim/adamw.h"
#include "optim/clip.h"
#include "optim/sgd.h"
#include "tests/cuda/cuda_test_util.h"

namespace lmlab::test {
namespace {

class CudaOptim : public CudaTest {};

// Two parameter sets with equal values, one per device.
struct Params {
  std::vector<Tensor> cpu, gpu;
  optim::NamedTensors named(bool on_gpu) const {
    const std::vector<Tensor>& ps = on_gpu ? gpu : cpu;
    optim::NamedTensors out;
    for (size_t i = 0; i < ps.size(); ++i) {
      std::string name = "p";  // appended, not "p" + ...: GCC 12 warns falsely (-Wrestrict) there
      name.append(std::to_string(i));
      out.emplace_back(name, ps[i]);
    }
    return out;
  }
};

Params make_params(const std::vector<Shape>& shapes = {{33, 17}, {17}, {5000}, {3, 4, 129}}) {
  Params p;
  for (const Shape& s : shapes) {
    const Tensor x = randn32(s, 100 + s.size() + s[0]);
    p.cpu.push_back(x.clone().detach().requires_grad_());
    p.gpu.push_back(x.to(Device::CUDA).detach().requires_grad_());
  }
  return p;
}

// Gives both sets the same random gradients for step `step`.
void set_grads(const Params& p, int step, double scale = 1) {
  for (size_t i = 0; i < p.cpu.size(); ++i) {
    const Tensor g = mul(randn32(p.cpu[i].shape(), 1000 * uint64_t(step) + i), scale);
    p.cpu[i].set_grad(g);
    p.gpu[i].set_grad(g.to(Device::CUDA));
  }
}

// Parameters and moments within 1e-6 relative, the int32 step counters equal.
void expect_same_adamw(const Params& p, const optim::AdamW& cpu, const optim::AdamW& gpu) {
  for (size_t i = 0; i < p.cpu.size(); ++i)
    EXPECT_TRUE(Close(p.gpu[i], p.cpu[i], 1e-6, "adamw param " + std::to_string(i)));
  const optim::NamedTensors sc = cpu.state(), sg = gpu.state();
  ASSERT_EQ(sc.size(), sg.size());
  for (size_t i = 0; i < sc.size(); ++i) {
    if (sc[i].second.dtype() == DType::F32) {
      EXPECT_TRUE(Close(sg[i].second, sc[i].second, 1e-6, sc[i].first));
    } else {
      EXPECT_TRUE(Same(sg[i].second, sc[i].second, sc[i].first));  // the int32 step counters
    }
  }
}

TEST_F(CudaOptim, AdamWMatchesCpuOverSteps) {
  const Params p = make_params();
  optim::AdamWOptions o;
  o.weight_decay = 0.1;
  optim::AdamW cpu(p.named(false), o), gpu(p.named(true), o);
  for (int step = 0; step < 6; ++step) {
    set_grads(p, step);
    cpu.step(1e-2);
    gpu.step(1e-2);
  }
  expect_same_adamw(p, cpu, gpu);
}

// The GPU updates all parameters in multi-tensor launches of up to 48 tensors and 64K-element
// chunks: 110 parameters (3 launches), some of several chunks, some without a gradient on some
// steps (skipped, so their step counts and bias corrections differ from the others').
TEST_F(CudaOptim, AdamWOverManyTensorsMatchesCpu) {
  std::vector<Shape> shapes;
  for (int64_t i = 0; i < 110; ++i)
    shapes.push_back(i % 37 == 5 ? Shape{65536 * (i % 3 + 1) + i}
                     : i % 2     ? Shape{i + 1}
                                 : Shape{3, i + 2});
  const Params p = make_params(shapes);
  optim::AdamWOptions o;
  o.weight_decay = 0.05;
  optim::AdamW cpu(p.named(false), o), gpu(p.named(true), o);
  for (int step = 0; step < 4; ++step) {
    set_grads(p, step);
    for (size_t i = 0; i < shapes.size(); ++i)
      if ((i + size_t(step)) % 7 == 0) p.cpu[i].zero_grad(), p.gpu[i].zero_grad();
    cpu.step(3e-3);
    gpu.step(3e-3);
  }
  expect_same_adamw(p, cpu, gpu);
}

TEST_F(CudaOptim, SgdMomentumMatchesCpuOverSteps) {
  const Params p = make_params();
  optim::SGDOptions o;
  o.momentum = 0.9;
  o.weight_decay = 0.01;
  optim::SGD cpu(p.named(false), o), gpu(p.named(true), o);
  for (int step = 0; step < 5; ++step) {
    set_grads(p, step);
    cpu.step(0.05);
    gpu.step(0.05);
  }
  for (size_t i = 0; i < p.cpu.size(); ++i)
    EXPECT_TRUE(Close(p.gpu[i], p.cpu[i], 1e-6, "sgd param " + std::to_string(i)));
}

TEST_F(CudaOptim, ClipGradNormMatchesCpu) {
  const Params p = make_params();
  set_grads(p, 1, 3.0);
  const optim::ClipResult rc = optim::clip_grad_norm(p.cpu, 1.0);
  const optim::ClipResult rg = optim::clip_grad_norm(p.gpu, 1.0);
  EXPECT_NEAR(rg.norm, rc.norm, 1e-9 * rc.norm);
  EXPECT_TRUE(rg.clipped);
  EXPECT_EQ(rg.clipped, rc.clipped);
  for (size_t i = 0; i < p.cpu.size(); ++i)
    EXPECT_TRUE(Close(p.gpu[i].grad(), p.cpu[i].grad(), 1e-7, "clipped grad " + std::to_string(i)));
  // a norm under the limit leaves the gradients alone
  set_grads(p, 2, 1e-3);
  const Tensor before = p.gpu[0].grad().clone();
  EXPECT_FALSE(optim::clip_grad_norm(p.gpu, 1e3).clipped);
  EXPECT_TRUE(Same(p.gpu[0].grad(), before));
}

}  // namespace
}  // namespace lmlab::test
