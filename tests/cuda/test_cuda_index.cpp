// CUDA == CPU for the indexing ops: embedding gather and its deterministic scatter-add (bitwise,
// with heavily repeated ids), broadcast masked_fill and the causal mask, and dropout, whose GPU
// mask is bitwise the CPU's for the same generator seed and offset.
// Each test runs on the GPU and CPU against CPU (cuda_test_util.h: DeviceParity).
#include "tests/cuda/cuda_test_util.h"

namespace lmlab::test {
namespace {

class IndexParity : public DeviceParity {};

TEST_P(IndexParity, EmbeddingMatchesCpuBitwise) {
  // 5000 ids over a vocabulary of 7: every row of the table collects hundreds of rows, in token
  // order on both devices, so the gradients agree bit for bit.
  for (const auto& [V, C, N] : std::vector<std::tuple<int32_t, int64_t, int64_t>>{
           {7, 1, 5000}, {7, 300, 5000}, {1000, 33, 64}, {50304, 8, 2048}}) {
    const Tensor w = randn32({V, C}, 1);
    const Tensor ids = random_ids({N}, V, 2);
    EXPECT_TRUE(Parity(
        device(), [](const std::vector<Tensor>& in) { return embedding(in[0], in[1]); }, {w, ids},
        0, "embedding V " + std::to_string(V) + " C " + std::to_string(C)));
  }
}

TEST_P(IndexParity, EmbeddingRejectsOutOfRangeIds) {
  const Tensor w = randn32({5, 3}, 3).to(device());
  const Tensor ids = Tensor::from_vector(std::vector<int32_t>{1, 5}, {2}).to(device());
  EXPECT_THROW(embedding(w, ids), Error);
}

TEST_P(IndexParity, MaskedFillBroadcastsTheMask) {
  const Tensor x = randn32({2, 3, 5, 5}, 4);
  const Tensor mask = causal_mask(5);
  EXPECT_TRUE(Parity(
      device(),
      [&](const std::vector<Tensor>& in) {
        return masked_fill(in[0], mask.to(in[0].device()), -1e9);
      },
      {x}, 0, "masked_fill with a causal mask"));
  EXPECT_TRUE(Same(causal_mask(67, device()), causal_mask(67)));
  const Tensor row_mask = Tensor::from_vector(std::vector<int32_t>{1, 0, 1}, {3, 1});
  EXPECT_TRUE(Parity(
      device(),
      [&](const std::vector<Tensor>& in) {
        return masked_fill(in[0], row_mask.to(in[0].device()), 2.0);
      },
      {randn32({4, 3, 6}, 5)}, 0, "masked_fill with a (3, 1) mask"));
}

TEST_P(IndexParity, DropoutMaskIsTheCpuMaskBitwise) {
  for (double p : {0.1, 0.5, 0.9}) {
    const Tensor x = randn32({3, 1000, 7}, 6);
    Generator gc(1234), gg(1234);
    gc.advance(77);  // a non-zero offset, identical on both
    gg.advance(77);
    const Tensor yc = dropout(x, p, gc, true);
    const Tensor yg = dropout(x.to(device()), p, gg, true);
    EXPECT_TRUE(Same(yg, yc, "dropout p " + std::to_string(p)));
    EXPECT_EQ(gc.offset(), gg.offset());
  }
}

TEST_P(IndexParity, DropoutIsDeterministicAndScales) {
  const Tensor x = Tensor::ones({1 << 20}, DType::F32, device());
  Generator a(9), b(9);
  const Tensor ya = dropout(x, 0.25, a, true), yb = dropout(x, 0.25, b, true);
  EXPECT_TRUE(Same(ya, yb, "same seed, same mask"));
  const Tensor yc = dropout(x, 0.25, a, true);  // the generator moved on: a different mask
  EXPECT_FALSE(Same(yc, ya));
  const double kept = mean(ya).item() * 0.75;  // kept entries are 1 / 0.75
  EXPECT_NEAR(kept, 0.75, 0.005);
  // backward multiplies by the same mask
  Tensor xg = randn32({64, 33}, 10).to(device()).detach().requires_grad_();
  Generator g(5);
  Tensor y = dropout(xg, 0.5, g, true);
  tape::backward(sum(y));
  Generator g2(5);
  EXPECT_TRUE(
      Same(xg.grad(), dropout(Tensor::ones({64, 33}, DType::F32, device()), 0.5, g2, true)));
}

INSTANTIATE_TEST_SUITE_P(Devices, IndexParity, ::testing::Values(Device::CUDA, Device::CPU),
                         device_name);

}  // namespace
}  // namespace lmlab::test
