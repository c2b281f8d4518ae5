// Mixed precision on the GPU against the CPU's emulation of it (autograd/autocast.h): the float32
// <-> bfloat16 casts bitwise (both round to nearest even), bf16 strided copies and fills, matmul
// under autocast (cuBLAS bf16 GEMMs, fp32 accumulation) and the whole TransformerLM's loss and
// every parameter's gradient under autocast (bf16 GEMMs and the bf16 flash attention kernels).
// The CPU emulation computes the same roundings with float32 sums in another order, so results
// differ by bf16 rounding steps where the two sums straddle one: tolerances 1e-2 (one op) and
// 3e-2 (a model, several bf16 ops deep), relative to the largest value of each tensor.
// Each test runs on the GPU and CPU against CPU (cuda_test_util.h: DeviceParity).
#include "autograd/autocast.h"
#include "nn/transformer.h"
#include "tests/cuda/cuda_test_util.h"

namespace lmlab::test {
namespace {

class MixedPrecisionParity : public DeviceParity {
 protected:
  void TearDown() override {
    cuda::set_flash_attention(false);
    DeviceParity::TearDown();
  }
};

OpFn under_autocast(OpFn f) {
  return [f](const std::vector<Tensor>& in) {
    AutocastGuard autocast(DType::BF16);
    return f(in);
  };
}

TEST_P(MixedPrecisionParity, CastsAreBitwiseTheCpus) {
  Tensor x = randn32({1000, 37}, 1);
  x.set({0, 0}, 1.0 + 0x1p-8);  // a tie: to even
  x.set({0, 1}, 3.4e38);        // rounds past the largest bf16: inf
  const Tensor h = x.to(device()).to(DType::BF16);
  EXPECT_EQ(h.device(), device());
  EXPECT_TRUE(Same(h, x.to(DType::BF16), "float32 -> bf16"));
  EXPECT_TRUE(Same(h.to(DType::F32), x.to(DType::BF16).to(DType::F32), "bf16 -> float32"));
  // Strided bf16 copies (2-byte elements) and fills.
  EXPECT_TRUE(Same(h.transpose(0, 1).contiguous(), x.transpose(0, 1).to(DType::BF16), "copy"));
  Tensor f = Tensor::empty({5, 3}, DType::BF16, device());
  f.fill_(0.1);
  EXPECT_TRUE(Same(f, Tensor::full({5, 3}, 0.1, DType::BF16), "fill"));
}

TEST_P(MixedPrecisionParity, MatmulUnderAutocast) {
  const OpFn linear = [](const std::vector<Tensor>& in) {
    return matmul(in[0], transpose(in[1], 0, 1));
  };
  EXPECT_TRUE(Parity(device(), under_autocast(linear),
                     {randn32({4, 100, 96}, 2), randn32({384, 96}, 3, 0.02)}, 1e-2, "linear"));
  const OpFn batched = [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); };
  EXPECT_TRUE(Parity(device(), under_autocast(batched),
                     {randn32({2, 3, 9, 40}, 4), randn32({3, 40, 5}, 5)}, 1e-2, "batched"));
}

TEST_P(MixedPrecisionParity, AttentionUnderAutocast) {
  cuda::set_flash_attention(true);
  const OpFn attention = [](const std::vector<Tensor>& in) {
    return causal_attention(transpose(in[0], 1, 2), transpose(in[1], 1, 2), transpose(in[2], 1, 2));
  };
  EXPECT_TRUE(Parity(
      device(), under_autocast(attention),
      {randn32({2, 130, 6, 64}, 6), randn32({2, 130, 2, 64}, 7), randn32({2, 130, 2, 64}, 8)}, 1e-2,
      "GQA attention, T 130"));
}

// The fused LM head in row chunks (cuBLAS bf16 -> fp32 GEMMs, dz rounded to bf16 on the device).
TEST_P(MixedPrecisionParity, ChunkedLmHeadUnderAutocast) {
  const Tensor targets = random_ids({300}, 1000, 12);
  const OpFn head = [targets](const std::vector<Tensor>& in) {
    return linear_cross_entropy(in[0], in[1], targets.to(in[0].device()), -100, 64);
  };
  EXPECT_TRUE(Parity(device(), under_autocast(head),
                     {randn32({300, 96}, 13), randn32({1000, 96}, 14, 0.05)}, 1e-2,
                     "LM head, 300 rows in chunks of 64"));
}

// The whole model: loss and every parameter's gradient, GPU (bf16 kernels) against the CPU
// emulation, on identical weights.
TEST_P(MixedPrecisionParity, TransformerLossAndGradientsUnderAutocast) {
  cuda::set_flash_attention(true);
  nn::ModelConfig c;
  c.vocab_size = 65;
  c.block_size = 64;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_kv_head = 2;
  c.n_embd = 64;
  c.dropout = 0;
  Generator gen(9);
  nn::TransformerLM cpu_model(c, gen), model(c, gen);
  model.load_state_dict(cpu_model.state_dict());
  model.to(device());
  const Tensor ids = random_ids({3, 64}, 65, 10), targets = random_ids({3, 64}, 65, 11);
  auto loss_of = [](nn::TransformerLM& m, const Tensor& x, const Tensor& y) {
    AutocastGuard autocast(DType::BF16);
    return m.loss(x, y);
  };
  Tensor want = loss_of(cpu_model, ids, targets),
         got = loss_of(model, ids.to(device()), targets.to(device()));
  tape::backward(want);
  tape::backward(got);
  EXPECT_NEAR(got.item(), want.item(), 1e-2 * want.item());
  const nn::NamedTensors cpu_params = cpu_model.named_parameters();
  const nn::NamedTensors params = model.named_parameters();
  ASSERT_EQ(params.size(), cpu_params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    ASSERT_EQ(params[i].second.grad().dtype(), DType::F32) << params[i].first;
    EXPECT_TRUE(Close(params[i].second.grad(), cpu_params[i].second.grad(), 3e-2, params[i].first));
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, MixedPrecisionParity,
                         ::testing::Values(Device::CUDA, Device::CPU), device_name);

}  // namespace
}  // namespace lmlab::test
