// CUDA == CPU for the reductions: sum, mean, max (with ties) and var over single dims, runs of
// dims and everything, including rows of 10k+ elements and C = 1 (fp32, 1e-5 relative).
#include <limits>

// Each test runs on the GPU and CPU against CPU (cuda_test_util.h: DeviceParity).
#include "tests/cuda/cuda_test_util.h"

namespace lmlab::test {
namespace {

class ReduceParity : public DeviceParity {};

constexpr double kTol = 1e-5;

struct Case {
  Shape shape;
  std::vector<int64_t> dims;
  bool keepdim;
};

const std::vector<Case> kCases = {
    {{7, 5}, {1}, false},     {{7, 5}, {0}, true},      {{3, 4, 5}, {0, 2}, false},
    {{3, 4, 5}, {}, false},   {{2, 12345}, {1}, false}, {{12001, 3}, {0}, false},
    {{9, 1}, {1}, true},      {{1, 1}, {0, 1}, false},  {{4, 70, 33}, {1}, true},
    {{70000, 2}, {0}, false},
};

TEST_P(ReduceParity, SumMeanMaxVarMatchCpu) {
  for (const Case& c : kCases) {
    const std::string s = to_string(c.shape) + " over " + std::to_string(c.dims.size()) + " dims";
    const Tensor x = randn32(c.shape, 5);
    EXPECT_TRUE(Parity(
        device(), [&](const std::vector<Tensor>& in) { return sum(in[0], c.dims, c.keepdim); }, {x},
        kTol, "sum " + s));
    EXPECT_TRUE(Parity(
        device(), [&](const std::vector<Tensor>& in) { return mean(in[0], c.dims, c.keepdim); },
        {x}, kTol, "mean " + s));
    EXPECT_TRUE(Parity(
        device(), [&](const std::vector<Tensor>& in) { return max(in[0], c.dims, c.keepdim); }, {x},
        kTol, "max " + s));
    // var (correction 1) refuses a single element on both devices ("no degrees of freedom")
    int64_t n = c.dims.empty() ? x.numel() : 1;
    for (int64_t d : c.dims) n *= c.shape[size_t(d)];
    if (n > 1)
      EXPECT_TRUE(Parity(
          device(), [&](const std::vector<Tensor>& in) { return var(in[0], c.dims, c.keepdim); },
          {x}, 1e-4, "var " + s));
    else
      EXPECT_THROW(var(x.to(device()), c.dims, c.keepdim), Error) << s;
  }
}

TEST_P(ReduceParity, MaxSplitsTheGradientAmongTies) {
  const Tensor x = Tensor::from_vector(std::vector<float>{1, 3, 3, 2, 5, 5, 5, 0}, {2, 4});
  EXPECT_TRUE(Parity(
      device(), [](const std::vector<Tensor>& in) { return max(in[0], {1}); }, {x}, 0,
      "max with ties"));
  EXPECT_TRUE(Parity(
      device(), [](const std::vector<Tensor>& in) { return max(in[0], {0}); }, {x}, 0,
      "max with ties over dim 0"));
}

// A NaN anywhere in a slice makes its max NaN on both devices (one block per row for the last
// dim, so the NaN must survive the block's shuffle reduction), and the gradient goes to it.
TEST_P(ReduceParity, MaxPropagatesNaNLikeTheCpu) {
  Tensor x = randn32({3, 300}, 8);
  std::vector<float> v = x.to_vector<float>();
  v[37] = std::numeric_limits<float>::quiet_NaN();         // row 0, column 37
  v[300 + 299] = std::numeric_limits<float>::quiet_NaN();  // row 1, its last column
  x = Tensor::from_vector(v, {3, 300});
  for (int64_t dim : {1, 0}) {
    const Tensor xc = x.clone().detach().requires_grad_();
    const Tensor xg = x.to(device()).detach().requires_grad_();
    const Tensor yc = max(xc, {dim}), yg = max(xg, {dim});
    const std::vector<float> a = yc.to_vector<float>(), b = yg.to(Device::CPU).to_vector<float>();
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(std::isnan(a[i]), std::isnan(b[i])) << "dim " << dim << " output " << i;
      if (!std::isnan(a[i])) {
        EXPECT_EQ(a[i], b[i]) << "dim " << dim << " output " << i;
      }
    }
    tape::backward(sum(yc));
    tape::backward(sum(yg));
    EXPECT_TRUE(Same(xg.grad(), xc.grad(), "max gradient over dim " + std::to_string(dim)));
  }
}

TEST_P(ReduceParity, SumOfTransposedAndSumTo) {
  EXPECT_TRUE(Parity(
      device(), [](const std::vector<Tensor>& in) { return sum(transpose(in[0], 0, 1), {1}); },
      {randn32({40, 30}, 6)}, kTol, "sum of a transpose"));
  EXPECT_TRUE(Parity(
      device(),
      [](const std::vector<Tensor>& in) {
        return sum_to(in[0], {1, 6});
      },
      {randn32({5, 4, 6}, 7)}, kTol, "sum_to"));
}

INSTANTIATE_TEST_SUITE_P(Devices, ReduceParity, ::testing::Values(Device::CUDA, Device::CPU),
                         device_name);

}  // namespace
}  // namespace lmlab::test
