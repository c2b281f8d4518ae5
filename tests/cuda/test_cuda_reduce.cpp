// CUDA == CPU for the reductions: sum, mean, max (with ties) and var over single dims, runs of
// dims and everything, including rows of 10k+ elements and C = 1 (fp32, 1e-5 relative).
#include <limits>

#include "tests/cuda/cuda_test_util.h"

namespace lmlab::test {
namespace {

class CudaReduce : public CudaTest {};

constexpr double kTol = 1e-5;

struct Case {
  Shape shape;
  std::vector<int64_t> dims;
  bool keepdim;
};

const std::vector<Case> kCases = {
    {{7, 5}, {1}, false},          {{7, 5}, {0}, true},        {{3, 4, 5}, {0, 2}, false},
    {{3, 4, 5}, {}, false},        {{2, 12345}, {1}, false},   {{12001, 3}, {0}, false},
    {{9, 1}, {1}, true},           {{1, 1}, {0, 1}, false},    {{4, 70, 33}, {1}, true},
    {{70000, 2}, {0}, false},
};

TEST_F(CudaReduce, SumMeanMaxVarMatchCpu) {
  for (const Case& c : kCases) {
    const std::string s = to_string(c.shape) + " over " + std::to_string(c.dims.size()) + " dims";
    const Tensor x = randn32(c.shape, 5);
    EXPECT_TRUE(Parity([&](const std::vector<Tensor>& in) { return sum(in[0], c.dims, c.keepdim); },
                       {x}, kTol, "sum " + s));
    EXPECT_TRUE(Parity([&](const std::vector<Tensor>& in) { return mean(in[0], c.dims, c.keepdim); },
                       {x}, kTol, "mean " + s));
    EXPECT_TRUE(Parity([&](const std::vector<Tensor>& in) { return max(in[0], c.dims, c.keepdim); },
                       {x}, kTol, "max " + s));
    EXPECT_TRUE(Parity([&](const std::vector<Tensor>& in) { return var(in[0], c.dims, c.keepdim); },
                       {x}, 1e-4, "var " + s));
  }
}

TEST_F(CudaReduce, MaxSplitsTheGradientAmongTies) {
  const Tensor x = Tensor::from_vector(std::vector<float>{1, 3, 3, 2, 5, 5, 5, 0}, {2, 4});
  EXPECT_TRUE(Parity([](const std::vector<Tensor>& in) { return max(in[0], {1}); }, {x}, 0,
                     "max with ties"));
  EXPECT_TRUE(Parity([](const std::vector<Tensor>& in) { return max(in[0], {0}); }, {x}, 0,
                     "max with ties over dim 0"));
}

// A NaN anywhere in a slice makes its max NaN on both devices (one block per row for the last
// dim, so the NaN must survive the block's shuffle reduction), and the gradient goes to it.
TEST_F(CudaReduce, MaxPropagatesNaNLikeTheCpu) {
  Tensor x = randn32({3, 300}, 8);
  std::vector<float> v = x.to_vector<float>();
  v[37] = std::numeric_limits<float>::quiet_NaN();         // row 0, column 37
  v[300 + 299] = std::numeric_limits<float>::quiet_NaN();  // row 1, its last column
  x = Tensor::from_vector(v, {3, 300});
  for (int64_t dim : {1, 0}) {
    const Tensor xc = x.clone().detach().requires_grad_();
    const Tensor xg = x.to(Device::CUDA).detach().requires_grad_();
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

TEST_F(CudaReduce, SumOfTransposedAndSumTo) {
  EXPECT_TRUE(Parity([](const std::vector<Tensor>& in) { return sum(transpose(in[0], 0, 1), {1}); },
                     {randn32({40, 30}, 6)}, kTol, "sum of a transpose"));
  EXPECT_TRUE(Parity([](const std::vector<Tensor>& in) { return sum_to(in[0], {1, 6}); },
                     {randn32({5, 4, 6}, 7)}, kTol, "sum_to"));
}

}  // namespace
}  // namespace lmlab::test
