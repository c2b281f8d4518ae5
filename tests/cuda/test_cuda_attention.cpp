// CUDA == CPU for fused causal attention, forward and backward: MHA, GQA (KVH < NH) and MQA, T
// not a multiple of any tile, T = 1, a query block shorter than the keys (the KV-cache case), and
// transposed (B, T, H, HS) views as produced by the attention layer; plus fused == composed on the
// GPU (fp32, 1e-5 relative; TF32 2e-3). The TF32 cases run twice on the GPU: through cuBLAS and
// through the flash kernels (cuda::set_flash_attention: strided heads read in place, lse saved).
// Each test runs on the GPU and CPU against CPU (cuda_test_util.h: DeviceParity).
#include "tests/cuda/cuda_test_util.h"

namespace lmlab::test {
namespace {

class AttentionParity : public DeviceParity {
 protected:
  void TearDown() override {
    cuda::set_flash_attention(false);
    DeviceParity::TearDown();
  }
};

struct Case {
  int64_t B, NH, KVH, Tq, Tk, HS;
};

const std::vector<Case> kCases = {
    {1, 1, 1, 1, 1, 1},      {2, 4, 4, 67, 67, 16}, {2, 6, 2, 33, 33, 8},
    {1, 8, 1, 130, 130, 32}, {3, 4, 2, 5, 29, 16},  {1, 12, 12, 257, 257, 64},
};

std::string name(const Case& c) {
  return "B " + std::to_string(c.B) + " NH " + std::to_string(c.NH) + " KVH " +
         std::to_string(c.KVH) + " Tq " + std::to_string(c.Tq) + " Tk " + std::to_string(c.Tk) +
         " HS " + std::to_string(c.HS);
}

void run_cases(Device device, double tol) {
  for (const Case& c : kCases) {
    const Tensor q = randn32({c.B, c.NH, c.Tq, c.HS}, 1), k = randn32({c.B, c.KVH, c.Tk, c.HS}, 2),
                 v = randn32({c.B, c.KVH, c.Tk, c.HS}, 3);
    EXPECT_TRUE(Parity(
        device, [](const std::vector<Tensor>& in) { return causal_attention(in[0], in[1], in[2]); },
        {q, k, v}, tol, name(c)));
  }
}

TEST_P(AttentionParity, FusedMatchesCpu) { run_cases(device(), 1e-5); }

// TF32 rounds inputs to 10 bits: cuBLAS and the flash kernels round differently, within 2e-3.
TEST_P(AttentionParity, FusedMatchesCpuWithTf32) {
  use_tf32();
  run_cases(device(), 2e-3);
}

TEST_P(AttentionParity, FlashMatchesCpuWithTf32) {
  use_tf32();
  cuda::set_flash_attention(true);
  run_cases(device(), 2e-3);
}

// (B, T, H, HS) tensors viewed as (B, H, T, HS), as nn::CausalSelfAttention passes them
void run_transposed(Device device, double tol) {
  auto heads = [](const Tensor& t) { return transpose(t, 1, 2); };
  EXPECT_TRUE(Parity(
      device,
      [&](const std::vector<Tensor>& in) {
        return causal_attention(heads(in[0]), heads(in[1]), heads(in[2]));
      },
      {randn32({2, 45, 6, 8}, 4), randn32({2, 45, 3, 8}, 5), randn32({2, 45, 3, 8}, 6)}, tol,
      "transposed views"));
}

TEST_P(AttentionParity, TransposedHeadViews) { run_transposed(device(), 1e-5); }

TEST_P(AttentionParity, FlashTransposedHeadViewsWithTf32) {
  use_tf32();
  cuda::set_flash_attention(true);
  run_transposed(device(), 2e-3);
}

TEST_P(AttentionParity, FusedEqualsComposed) {
  const Tensor q = randn32({2, 6, 19, 8}, 7).to(device());
  const Tensor k = randn32({2, 3, 19, 8}, 8).to(device());
  const Tensor v = randn32({2, 3, 19, 8}, 9).to(device());
  EXPECT_TRUE(Close(causal_attention(q, k, v), causal_attention_composed(q, k, v), 1e-5));
}

INSTANTIATE_TEST_SUITE_P(Devices, AttentionParity, ::testing::Values(Device::CUDA, Device::CPU),
                         device_name);

}  // namespace
}  // namespace lmlab::test
