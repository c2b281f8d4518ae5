// softmax and log_softmax: gradchecks along every dim (strided and size-1 inputs included), values
// against hand-computed numbers and the composed exp / sum formula, stability at +-1e4, errors.
#include <omp.h>

#include <cmath>

#include "tests/test_util.h"

using namespace lmlab;

namespace {

using OpFn = Tensor (*)(const Tensor&, int64_t);

// The composed twin: exp(x - max) / sum(exp(x - max)) along dim.
Tensor softmax_composed(const Tensor& x, int64_t dim) {
  Tensor e = exp(x - max(x, {dim}, true));
  return e / sum(e, {dim}, true);
}

void gradcheck_every_dim(OpFn op, const Tensor& x) {
  for (int64_t d = -1; d < x.dim(); ++d) {
    SCOPED_TRACE("dim " + std::to_string(d) + " of shape " + to_string(x.shape()));
    EXPECT_TRUE(
        test::Gradcheck([op, d](const std::vector<Tensor>& in) { return op(in[0], d); }, {x}));
  }
}

}  // namespace

TEST(Softmax, GradcheckEveryDim3D) {
  gradcheck_every_dim(softmax, test::randn64({2, 3, 4}, 1));
  gradcheck_every_dim(log_softmax, test::randn64({2, 3, 4}, 2));
}

TEST(Softmax, GradcheckNonContiguous) {
  Tensor x = test::randn64_transposed({3, 2, 4}, 3);
  ASSERT_FALSE(x.is_contiguous());
  gradcheck_every_dim(softmax, x);
  gradcheck_every_dim(log_softmax, x);
}

TEST(Softmax, GradcheckSizeOneDims) {
  gradcheck_every_dim(softmax, test::randn64({1, 3, 1}, 4));
  gradcheck_every_dim(log_softmax, test::randn64({2, 1, 3}, 5));
  gradcheck_every_dim(softmax, test::randn64({5}, 6));
}

TEST(Softmax, HandComputedValues) {
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3});
  const std::vector<double> s = softmax(x).to_vector<double>();
  const std::vector<double> ls = log_softmax(x).to_vector<double>();
  // e^k / (e + e^2 + e^3); log of that = k - 3.40760596444438
  const double expect_s[] = {0.09003057317038046, 0.24472847105479767, 0.6652409557748219};
  const double expect_ls[] = {-2.40760596444438, -1.40760596444438, -0.40760596444438};
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(s[i], expect_s[i], 1e-14);
    EXPECT_NEAR(ls[i], expect_ls[i], 1e-13);
  }
  // Along a size-1 dim every entry is 1 (log 0).
  Tensor col = Tensor::from_vector(std::vector<float>{4, -7}, {2, 1});
  EXPECT_EQ(softmax(col, 1).to_vector<float>(), (std::vector<float>{1, 1}));
  EXPECT_EQ(log_softmax(col, 1).to_vector<float>(), (std::vector<float>{0, 0}));
}

TEST(Softmax, MatchesComposedTwinAlongEveryDim) {
  Generator gen(7);
  Tensor x = Tensor::randn({3, 5, 4}, gen, DType::F32, 0, 3);
  for (int64_t d = 0; d < 3; ++d) {
    SCOPED_TRACE("dim " + std::to_string(d));
    Tensor s = softmax(x, d);
    EXPECT_EQ(s.shape(), x.shape());
    EXPECT_LT(test::max_abs_diff(s, softmax_composed(x, d)), 1e-6);
    EXPECT_LT(test::max_abs_diff(log_softmax(x, d), log(softmax_composed(x, d))), 1e-5);
    // Rows sum to 1 along the softmax dim.
    std::vector<float> sums = sum(s, {d}).to_vector<float>();
    for (float v : sums) EXPECT_NEAR(v, 1.0f, 1e-6);
  }
}

TEST(Softmax, BackwardMatchesFormulaFloat32) {
  Generator gen(8);
  Tensor x = Tensor::randn({4, 6}, gen).requires_grad_();
  Tensor w = Tensor::randn({4, 6}, gen);
  tape::backward(sum(softmax(x) * w));
  // dx = y (w - sum(w y)) per row
  Tensor y = softmax(x.detach());
  Tensor expect = y * (w - sum(w * y, {1}, true));
  EXPECT_LT(test::max_abs_diff(x.grad(), expect), 1e-6);

  Tensor x2 = x.detach().clone().requires_grad_();
  tape::backward(sum(log_softmax(x2) * w));
  // dx = w - softmax(x) sum(w) per row
  Tensor expect2 = w - y * sum(w, {1}, true);
  EXPECT_LT(test::max_abs_diff(x2.grad(), expect2), 1e-6);
}

TEST(Softmax, StableAtLargeLogitsFloat32) {
  Tensor x = Tensor::from_vector(std::vector<float>{1e4f, 0, -1e4f}, {1, 3}).requires_grad_();
  Tensor s = softmax(x);
  EXPECT_EQ(s.to_vector<float>(), (std::vector<float>{1, 0, 0}));
  Tensor w = Tensor::from_vector(std::vector<float>{1, 2, 3}, {1, 3});
  tape::backward(sum(s * w));
  // y = (1, 0, 0): dx = y (w - 1) = 0 everywhere, and finite.
  for (float g : x.grad().to_vector<float>()) EXPECT_EQ(g, 0.0f);

  Tensor x2 = x.detach().clone().requires_grad_();
  Tensor ls = log_softmax(x2);
  EXPECT_EQ(ls.to_vector<float>(), (std::vector<float>{0, -1e4f, -2e4f}));
  tape::backward(sum(ls * w));
  // dx = w - softmax sum(w) = (1 - 6, 2, 3)
  EXPECT_EQ(x2.grad().to_vector<float>(), (std::vector<float>{-5, 2, 3}));
}

TEST(Softmax, BitwiseIdenticalForAnyThreadCount) {
  Generator gen(9);
  Tensor x = Tensor::randn({64, 512}, gen).requires_grad_();  // above the OpenMP threshold
  Tensor w = Tensor::randn({64, 512}, gen);
  const int saved = omp_get_max_threads();
  std::vector<std::vector<float>> outs, grads;
  for (int threads : {1, 3}) {
    omp_set_num_threads(threads);
    x.zero_grad();
    Tensor y = log_softmax(softmax(x), 0);
    tape::backward(sum(y * w));
    outs.push_back(y.to_vector<float>());
    grads.push_back(x.grad().to_vector<float>());
  }
  omp_set_num_threads(saved);
  EXPECT_EQ(outs[0], outs[1]);
  EXPECT_EQ(grads[0], grads[1]);
}

TEST(Softmax, Errors) {
  Tensor ids = Tensor::from_vector(std::vector<int32_t>{1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_TRUE(test::ThrowsWith([&] { softmax(ids); }, {"[softmax]", "int32", "(2, 3)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { log_softmax(ids); }, {"[log_softmax]", "int32", "(2, 3)"}));
  Tensor x = Tensor::zeros({2, 3});
  EXPECT_TRUE(test::ThrowsWith([&] { softmax(x, 2); }, {"[softmax]", "dim 2", "(2, 3)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { log_softmax(x, -3); }, {"[log_softmax]", "dim -3", "(2, 3)"}));
  Tensor scalar = Tensor::zeros({});
  EXPECT_TRUE(test::ThrowsWith([&] { softmax(scalar); }, {"[softmax]", "dim -1", "()"}));
  EXPECT_TRUE(test::ThrowsWith([&] { softmax(Tensor()); }, {"[softmax]"}));
}
