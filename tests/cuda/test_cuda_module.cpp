// nn::Module::to(Device): every parameter moves in place (tied weights stay one tensor, handles
// see the move, gradients are dropped), the model then trains on the GPU, and moving back gives
// the same values. Plus a 200-step training run whose GPU loss curve matches the CPU's.
#include "nn/transformer.h"
#include "optim/adamw.h"
#include "optim/clip.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/test_util.h"

namespace lmlab::test {
namespace {

class CudaModule : public CudaTest {};

nn::ModelConfig tiny_config(double dropout) {
  nn::ModelConfig c;
  c.vocab_size = 65;
  c.block_size = 32;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_kv_head = 2;
  c.n_embd = 32;
  c.dropout = dropout;
  return c;
}

TEST(ModuleToDevice, MovingToTheCurrentDeviceIsANoOp) {
  Generator gen(1);
  nn::TransformerLM model(tiny_config(0), gen);
  const nn::NamedTensors before = model.named_parameters();
  std::vector<const void*> data;
  for (const auto& [name, p] : before) data.push_back(p.raw_data());
  model.to(Device::CPU);
  const nn::NamedTensors after = model.named_parameters();
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) EXPECT_EQ(after[i].second.raw_data(), data[i]);
}

TEST_F(CudaModule, ToMovesEveryParameterInPlace) {
  Generator gen(2);
  nn::TransformerLM model(tiny_config(0), gen);
  const nn::StateDict cpu_values = [&] {
    nn::StateDict s;
    for (const auto& [name, p] : model.named_parameters()) s[name] = p.clone().detach();
    return s;
  }();
  const Tensor handle = model.named_parameters().front().second;  // an outside handle
  model.to(Device::CUDA);
  EXPECT_EQ(handle.device(), Device::CUDA);
  for (const auto& [name, p] : model.named_parameters()) {
    EXPECT_EQ(p.device(), Device::CUDA) << name;
    EXPECT_TRUE(p.requires_grad() && p.is_leaf()) << name;
    EXPECT_TRUE(Same(p, cpu_values.at(name), name));
  }
  const Tensor ids = random_ids({2, 16}, 65, 3).to(Device::CUDA);
  Tensor loss = model.loss(ids, ids);
  EXPECT_EQ(loss.device(), Device::CUDA);
  tape::backward(loss);
  for (const auto& [name, p] : model.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_EQ(p.grad().device(), Device::CUDA) << name;
  }
  model.to(Device::CPU);
  for (const auto& [name, p] : model.named_parameters()) {
    EXPECT_EQ(p.device(), Device::CPU) << name;
    EXPECT_FALSE(p.grad().defined()) << name << ": a move drops the gradient";
    EXPECT_TRUE(Same(p, cpu_values.at(name), name));
  }
}

// An optimizer built before the move keeps its state on the CPU: its step is a clear error
// naming the parameter, not a kernel reading host memory (which would end the CUDA context).
TEST_F(CudaModule, AnOptimizerBuiltBeforeTheMoveRefusesToStep) {
  Generator gen(4);
  nn::TransformerLM model(tiny_config(0), gen);
  optim::AdamW opt(model.named_parameters(), {});
  model.to(Device::CUDA);
  const Tensor ids = random_ids({2, 16}, 65, 5).to(Device::CUDA);
  tape::backward(model.loss(ids, ids));
  const Tensor before = model.named_parameters().front().second.clone();
  EXPECT_TRUE(ThrowsWith([&] { opt.step(1e-3); },
                         {"[adamw] parameter '", "float32 on cuda", "state is float32 on cpu",
                          "build the optimizer after converting the model"}));
  EXPECT_TRUE(Same(model.named_parameters().front().second, before, "untouched"));
  cuda::synchronize();  // no fault was queued
}

// losses[i] of `steps` AdamW steps (loss, backward, clip 1.0, step) on one device.
std::vector<double> train_curve(Device device, int steps) {
  Generator gen(11);
  nn::TransformerLM model(tiny_config(0.1), gen);
  model.to(device);
  optim::AdamW opt(model.named_parameters(), {});
  const std::vector<Tensor> params = model.parameters();
  std::vector<double> losses;
  for (int s = 0; s < steps; ++s) {
    // a batch of 4 sequences drawn by step, the same on both devices
    const Tensor ids = random_ids({4, 33}, 65, 500 + uint64_t(s) % 8).to(device);
    Tensor loss = model.loss(narrow(ids, 1, 0, 32), narrow(ids, 1, 1, 32));
    losses.push_back(loss.item());
    tape::backward(loss);
    optim::clip_grad_norm(params, 1.0);
    opt.step(3e-3);
    opt.zero_grad();
  }
  return losses;
}

TEST_F(CudaModule, TrainingCurveMatchesCpuFor200Steps) {
  const std::vector<double> cpu = train_curve(Device::CPU, 200);
  const std::vector<double> gpu = train_curve(Device::CUDA, 200);
  ASSERT_EQ(cpu.size(), gpu.size());
  for (size_t i = 0; i < cpu.size(); ++i)
    EXPECT_NEAR(gpu[i], cpu[i], 1e-3 * std::abs(cpu[i])) << "step " << i;
  EXPECT_LT(gpu.back(), gpu.front()) << "the run should learn";
}

}  // namespace
}  // namespace lmlab::test
