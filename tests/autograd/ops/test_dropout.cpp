// dropout: gradchecks with a re-seeded generator, the counter contract of the mask (bitwise
// reproducible, element i from (seed, offset + i)), its statistics, the identity cases, errors.
#include <cmath>
#include <limits>

#include "tests/test_util.h"

using namespace lmlab;

TEST(Dropout, Gradcheck) {
  for (double p : {0.2, 0.5}) {
    EXPECT_TRUE(test::Gradcheck(
        [p](const std::vector<Tensor>& x) {
          Generator gen(7);  // the same mask on every call, so f is deterministic
          return dropout(x[0], p, gen);
        },
        {test::randn64({3, 4}, 1)}))
        << "p = " << p;
  }
}

TEST(Dropout, GradcheckNonContiguous) {
  Tensor x = test::randn64_transposed({4, 5}, 2);
  ASSERT_FALSE(x.is_contiguous());
  EXPECT_TRUE(test::Gradcheck(
      [](const std::vector<Tensor>& in) {
        Generator gen(8);
        return dropout(in[0], 0.4, gen);
      },
      {x}));
}

TEST(Dropout, SameSeedSameMaskBitwise) {
  Tensor x = Tensor::ones({50000});
  Generator a(123), b(123);
  const std::vector<float> ya = dropout(x, 0.3, a).to_vector<float>();
  const std::vector<float> yb = dropout(x, 0.3, b).to_vector<float>();
  EXPECT_EQ(ya, yb);
  EXPECT_EQ(a.offset(), 50000u);  // the draw reserves one counter per element
  // The next draw of the same generator uses fresh counters: a different mask.
  EXPECT_NE(dropout(x, 0.3, a).to_vector<float>(), ya);
  Generator c(124);
  EXPECT_NE(dropout(x, 0.3, c).to_vector<float>(), ya);
}

// Element i depends only on (seed, offset + i): it matches the documented formula exactly, and a
// draw that starts at a later offset sees the same counters.
TEST(Dropout, MaskFollowsCounterContract) {
  const int64_t n = 100000;
  const double p = 0.25;
  Generator gen(5);
  gen.advance(17);
  const std::vector<float> y = dropout(Tensor::ones({n}), p, gen).to_vector<float>();
  const float scale = float(1.0 / (1.0 - p));
  for (int64_t i = 0; i < n; ++i) {
    const bool keep = uniform01(random_bits(5, 17 + uint64_t(i))) >= p;
    ASSERT_EQ(y[size_t(i)], keep ? scale : 0.f) << "element " << i;
  }
  Generator later(5);
  later.advance(17 + 1000);
  const std::vector<float> tail = dropout(Tensor::ones({10}), p, later).to_vector<float>();
  for (size_t i = 0; i < tail.size(); ++i) EXPECT_EQ(tail[i], y[1000 + i]);
}

TEST(Dropout, Statistics) {
  const int64_t n = 100000;
  for (double p : {0.1, 0.3, 0.5}) {
    Generator gen(99);
    const std::vector<float> y = dropout(Tensor::ones({n}), p, gen).to_vector<float>();
    const float scale = float(1.0 / (1.0 - p));
    int64_t zeros = 0;
    double total = 0;
    for (float v : y) {
      if (v == 0.f)
        ++zeros;
      else
        ASSERT_EQ(v, scale);  // kept values are scaled by exactly 1 / (1 - p)
      total += v;
    }
    EXPECT_NEAR(double(zeros) / double(n), p, 0.01) << "p = " << p;
    EXPECT_NEAR(total / double(n), 1.0, 0.02) << "p = " << p;  // the mean is preserved
  }
}

TEST(Dropout, BackwardMultipliesByMask) {
  Tensor x = Tensor::full({2, 5}, 3.0, DType::F64).requires_grad_();
  Generator gen(3);
  Tensor y = dropout(x, 0.5, gen);
  tape::backward(sum(y));
  const std::vector<double> yv = y.to_vector<double>(), g = x.grad().to_vector<double>();
  int zeros = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    EXPECT_EQ(g[i], yv[i] / 3.0);  // dx = mask = y / x
    EXPECT_TRUE(g[i] == 0.0 || g[i] == 2.0);
    zeros += g[i] == 0.0;
  }
  EXPECT_GT(zeros, 0);
  EXPECT_LT(zeros, 10);
}

TEST(Dropout, IdentityWhenEvalOrPZero) {
  Tensor x = test::randn64({3, 4}, 4);
  Generator gen(1);
  Tensor eval = dropout(x, 0.5, gen, /*training=*/false);
  EXPECT_TRUE(eval.same_storage(x));
  EXPECT_EQ(eval.to_vector<double>(), x.to_vector<double>());
  Tensor p0 = dropout(x, 0.0, gen);
  EXPECT_TRUE(p0.same_storage(x));
  EXPECT_EQ(p0.to_vector<double>(), x.to_vector<double>());
  EXPECT_EQ(gen.offset(), 0u);  // no counters drawn
}

TEST(Dropout, ErrorBadP) {
  Tensor x = Tensor::ones({2, 3});
  Generator gen(0);
  for (double p : {-0.1, 1.0, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    EXPECT_TRUE(test::ThrowsWith([&] { dropout(x, p, gen); }, {"[dropout]", "p", "[0, 1)"}))
        << "p = " << p;
    EXPECT_TRUE(test::ThrowsWith([&] { dropout(x, p, gen, false); }, {"[dropout]", "p"}));
  }
}

TEST(Dropout, ErrorNotFloat) {
  Generator gen(0);
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        dropout(Tensor::zeros({2, 3}, DType::I32), 0.5, gen);
      },
      {"[dropout]", "floating-point", "int32", "(2, 3)"}));
}
