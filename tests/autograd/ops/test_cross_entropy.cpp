// cross_entropy: gradchecks with ignored targets, values against hand-computed numbers and against
// -mean(log_softmax picked at the targets), stability at +-1e4, the all-ignored case, errors.
#include <omp.h>

#include <cmath>

#include "tests/test_util.h"

using namespace lmlab;

namespace {

Tensor ids(const std::vector<int32_t>& v, const Shape& shape) {
  return Tensor::from_vector(v, shape);
}

// The composed twin: -sum(log_softmax(z) * onehot(t)) / n_counted, built from primitive ops.
Tensor cross_entropy_composed(const Tensor& z, const std::vector<int32_t>& t, int32_t ignore) {
  const int64_t V = z.size(-1);
  std::vector<double> onehot(t.size() * size_t(V), 0.0);
  int64_t count = 0;
  for (size_t r = 0; r < t.size(); ++r)
    if (t[r] != ignore) {
      onehot[r * size_t(V) + size_t(t[r])] = 1.0;
      ++count;
    }
  Tensor mask = Tensor::from_vector(onehot, z.shape()).to(z.dtype());
  return -sum(log_softmax(z) * mask) / double(count);
}

}  // namespace

TEST(CrossEntropy, Gradcheck2DWithIgnored) {
  Tensor z = test::randn64({4, 5}, 11);
  Tensor t = ids({3, -100, 0, 4}, {4});
  EXPECT_TRUE(test::Gradcheck(
      [](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1]); }, {z, t}));
}

TEST(CrossEntropy, Gradcheck3DWithIgnoredAndCustomIndex) {
  Tensor z = test::randn64({2, 3, 4}, 12);
  Tensor t = ids({1, 0, 3, -100, 2, -100}, {2, 3});
  EXPECT_TRUE(test::Gradcheck(
      [](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1]); }, {z, t}));
  // ignore_index 2 (a valid class id) drops the tokens whose target is 2.
  Tensor t2 = ids({2, 0, 3, 2, 1, 1}, {2, 3});
  EXPECT_TRUE(test::Gradcheck(
      [](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1], 2); }, {z, t2}));
}

TEST(CrossEntropy, GradcheckNonContiguousLogits) {
  Tensor z = test::randn64_transposed({3, 2, 4}, 13);
  ASSERT_FALSE(z.is_contiguous());
  Tensor t = ids({0, 3, -100, 1, 2, 2}, {3, 2});
  EXPECT_TRUE(test::Gradcheck(
      [](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1]); }, {z, t}));
}

TEST(CrossEntropy, HandComputedValues) {
  // A uniform row costs log V whatever the target.
  Tensor uniform = Tensor::full({3, 7}, 0.25);
  Tensor loss = cross_entropy(uniform, ids({0, 6, 3}, {3}));
  EXPECT_EQ(loss.shape(), Shape{});
  EXPECT_NEAR(loss.item(), std::log(7.0), 1e-6);
  // logsumexp(1, 2, 3) = 3.40760596444438: targets 2 and 0 cost 0.4076... and 2.4076...
  Tensor z = Tensor::from_vector(std::vector<double>{1, 2, 3, 1, 2, 3}, {2, 3});
  EXPECT_NEAR(cross_entropy(z, ids({2, 0}, {2})).item(), (0.40760596444438 + 2.40760596444438) / 2,
              1e-13);
  // The ignored row counts neither in the sum nor in the mean.
  EXPECT_NEAR(cross_entropy(z, ids({-100, 0}, {2})).item(), 2.40760596444438, 1e-13);
}

TEST(CrossEntropy, MatchesLogSoftmaxComposition) {
  for (DType dt : {DType::F32, DType::F64}) {
    SCOPED_TRACE(to_string(dt));
    Generator gen(14);
    Tensor z = Tensor::randn({2, 5, 9}, gen, dt, 0, 2);
    const std::vector<int32_t> t = {0, 8, -100, 4, 4, 1, 7, -100, 2, 3};
    Tensor za = z.clone().requires_grad_(), zb = z.clone().requires_grad_();
    // backward frees the whole tape, so each graph is built and differentiated in turn.
    Tensor fused = cross_entropy(za, ids(t, {2, 5}));
    tape::backward(fused * 3.0);  // a non-unit upstream gradient scales dlogits
    Tensor composed = cross_entropy_composed(zb, t, -100);
    tape::backward(composed * 3.0);
    const double tol = dt == DType::F32 ? 1e-6 : 1e-13;
    EXPECT_NEAR(fused.item(), composed.item(), tol * 10);
    EXPECT_LT(test::max_abs_diff(za.grad(), zb.grad()), tol);
  }
}

TEST(CrossEntropy, StableAtLargeLogitsFloat32) {
  Tensor z = Tensor::from_vector(std::vector<float>{1e4f, 0, -1e4f, 1e4f, 0, -1e4f}, {2, 3})
                 .requires_grad_();
  Tensor loss = cross_entropy(z, ids({0, 2}, {2}));
  // Row 0 costs 0, row 1 costs 2e4.
  EXPECT_EQ(loss.item(), 1e4);
  tape::backward(loss);
  // dz = (softmax - onehot) / 2 = (1, 0, 0) - onehot, halved.
  EXPECT_EQ(z.grad().to_vector<float>(), (std::vector<float>{0, 0, 0, 0.5f, 0, -0.5f}));
}

TEST(CrossEntropy, AllIgnoredGivesZeroLossAndZeroGrad) {
  Tensor z = test::randn64({3, 4}, 15);
  Tensor loss = cross_entropy(z, ids({-100, -100, -100}, {3}));
  EXPECT_EQ(loss.shape(), Shape{});
  EXPECT_EQ(loss.item(), 0.0);
  tape::backward(loss);
  ASSERT_TRUE(z.grad().defined());
  for (double g : z.grad().to_vector<double>()) EXPECT_EQ(g, 0.0);
}

TEST(CrossEntropy, SavedTargetsModifiedInPlaceAreCaught) {
  Tensor z = test::randn64({2, 3}, 16);
  Tensor t = ids({1, 2}, {2});
  Tensor loss = cross_entropy(z, t);
  t.set({0}, 0);
  EXPECT_TRUE(test::ThrowsWith([&] { tape::backward(loss); }, {"[cross_entropy]", "in place"}));
  tape::clear();
}

TEST(CrossEntropy, BitwiseIdenticalForAnyThreadCount) {
  Generator gen(17);
  Tensor z = Tensor::randn({48, 500}, gen).requires_grad_();  // above the OpenMP threshold
  std::vector<int32_t> t(48);
  for (int32_t i = 0; i < 48; ++i) t[size_t(i)] = i % 5 == 0 ? -100 : (i * 37) % 500;
  const int saved = omp_get_max_threads();
  std::vector<double> losses;
  std::vector<std::vector<float>> grads;
  for (int threads : {1, 3}) {
    omp_set_num_threads(threads);
    z.zero_grad();
    Tensor loss = cross_entropy(z, ids(t, {48}));
    tape::backward(loss);
    losses.push_back(loss.item());
    grads.push_back(z.grad().to_vector<float>());
  }
  omp_set_num_threads(saved);
  EXPECT_EQ(losses[0], losses[1]);
  EXPECT_EQ(grads[0], grads[1]);
}

TEST(CrossEntropy, Errors) {
  Tensor z = Tensor::zeros({4, 65});
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        cross_entropy(z, ids({1, 2, 3, 70}, {4}));
      },
      {"[cross_entropy] target 70 at position 3 is out of range for 65 classes", "(4, 65)",
       "(4)"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        cross_entropy(z, ids({1, -1, 3, 4}, {4}));
      },
      {"[cross_entropy]", "target -1 at position 1", "65 classes"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        cross_entropy(z, ids({1, 2, 3}, {3}));
      },
      {"[cross_entropy]", "(4, 65)", "(3)"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        cross_entropy(z, ids({1, 2, 3, 4}, {2, 2}));
      },
      {"[cross_entropy]", "(4, 65)", "(2, 2)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { cross_entropy(z, Tensor::zeros({4})); },
                               {"[cross_entropy]", "int32", "float32", "(4, 65)", "(4)"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        cross_entropy(ids({1, 2}, {1, 2}), ids({0}, {1}));
      },
      {"[cross_entropy]", "logits", "int32", "(1, 2)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { cross_entropy(Tensor::zeros({}), ids({0}, {})); },
                               {"[cross_entropy]", "()"}));
  EXPECT_TRUE(
      test::ThrowsWith([&] { cross_entropy(z, Tensor()); }, {"[cross_entropy]", "targets"}));
}
