// CUDA == CPU for softmax, log-softmax, the fused softmax-cross-entropy and the chunked LM head +
// cross-entropy (linear_cross_entropy): C = 1, rows of 10k+
// and a GPT-2 sized vocabulary, softmax over a non-last dim, ignored targets (fp32, 1e-5).
// Each test runs on the GPU and CPU against CPU (cuda_test_util.h: DeviceParity).
#include "tests/cuda/cuda_test_util.h"

namespace lmlab::test {
namespace {

class SoftmaxParity : public DeviceParity {};

constexpr double kTol = 1e-5;

TEST_P(SoftmaxParity, SoftmaxAndLogSoftmaxMatchCpu) {
  for (const Shape& shape :
       std::vector<Shape>{{5, 1}, {3, 7}, {2, 3, 33}, {4, 10007}, {1, 50304}}) {
    const Tensor x = randn32(shape, 3, 3.0);
    EXPECT_TRUE(Parity(
        device(), [](const std::vector<Tensor>& in) { return softmax(in[0], -1); }, {x}, kTol,
        "softmax " + to_string(shape)));
    EXPECT_TRUE(Parity(
        device(), [](const std::vector<Tensor>& in) { return log_softmax(in[0], -1); }, {x}, kTol,
        "log_softmax " + to_string(shape)));
  }
  // a non-last dim goes through a transposed copy on both devices
  EXPECT_TRUE(Parity(
      device(), [](const std::vector<Tensor>& in) { return softmax(in[0], 0); },
      {randn32({9, 4}, 4)}, kTol, "softmax over dim 0"));
}

TEST_P(SoftmaxParity, HugeLogitsStayFinite) {
  const Tensor x = Tensor::from_vector(std::vector<float>{1e4f, -1e4f, 0.0f, 1e4f}, {1, 4});
  EXPECT_TRUE(Parity(
      device(), [](const std::vector<Tensor>& in) { return softmax(in[0], -1); }, {x}, kTol,
      "softmax of +-1e4"));
}

TEST_P(SoftmaxParity, CrossEntropyMatchesCpu) {
  for (const auto& [rows, V] :
       std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {7, 13}, {64, 50304}}) {
    const Tensor z = randn32({rows, V}, 5, 2.0);
    const Tensor t = random_ids({rows}, int32_t(V), 6);
    EXPECT_TRUE(Parity(
        device(), [](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1]); }, {z, t},
        kTol, "cross_entropy V " + std::to_string(V)));
  }
}

// The chunked LM head + cross-entropy (several chunks, a partial last one, ignored targets), and
// its one-chunk case (the composition).
TEST_P(SoftmaxParity, LinearCrossEntropyMatchesCpu) {
  const Tensor h = randn32({37, 24}, 7, 1.0), w = randn32({1000, 24}, 8, 0.5);
  Tensor t = random_ids({37}, 1000, 9);
  std::vector<int32_t> ids = t.to_vector<int32_t>();
  ids[3] = ids[20] = -100;
  t = Tensor::from_vector(ids, {37});
  for (int64_t chunk : {int64_t{8}, int64_t{64}})
    EXPECT_TRUE(Parity(
        device(),
        [chunk](const std::vector<Tensor>& in) {
          return linear_cross_entropy(in[0], in[1], in[2], -100, chunk);
        },
        {h, w, t}, kTol, "linear_cross_entropy chunk " + std::to_string(chunk)));
}

// All-equal rows of 1e8: log V and a uniform softmax on both devices (a kernel that uses the float
// lse = max + log(sum) loses log(sum) there; tests/autograd/ops/test_numerics.cpp has the CPU
// case).
TEST_P(SoftmaxParity, CrossEntropyOfHugeEqualLogits) {
  const Tensor z = Tensor::full({3, 5}, 1e8);
  const Tensor t = Tensor::from_vector(std::vector<int32_t>{0, 2, 4}, {3});
  EXPECT_TRUE(Parity(
      device(), [](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1]); }, {z, t},
      kTol, "cross_entropy of all-equal 1e8 logits"));
  const Tensor zg = z.to(device()).requires_grad_();
  Tensor loss = cross_entropy(zg, t.to(device()));
  EXPECT_NEAR(loss.item(), std::log(5.0), 1e-6);
  tape::backward(loss);
  const std::vector<float> g = zg.grad().to(Device::CPU).to_vector<float>();
  EXPECT_NEAR(g[1], 0.2 / 3, 1e-7);  // softmax 1/5, scaled by 1/3 rows; not the target
  EXPECT_NEAR(g[0], (0.2 - 1.0) / 3, 1e-7);
}

TEST_P(SoftmaxParity, CrossEntropyIgnoresPaddingAndBatches) {
  const Tensor z = randn32({2, 5, 11}, 7);
  std::vector<int32_t> t = random_ids({10}, 11, 8).to_vector<int32_t>();
  t[0] = t[3] = t[9] = -100;
  const Tensor targets = Tensor::from_vector(t, {2, 5});
  EXPECT_TRUE(Parity(
      device(), [](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1]); },
      {z, targets}, kTol, "cross_entropy with ignored rows"));
  // strided logits (a transposed view) are made contiguous on both devices
  EXPECT_TRUE(Parity(
      device(),
      [](const std::vector<Tensor>& in) { return cross_entropy(transpose(in[0], 0, 1), in[1]); },
      {randn32({11, 6}, 9), random_ids({6}, 11, 10)}, kTol, "cross_entropy of a transpose"));
}

INSTANTIATE_TEST_SUITE_P(Devices, SoftmaxParity, ::testing::Values(Device::CUDA, Device::CPU),
                         device_name);

}  // namespace
}  // namespace lmlab::test
