// Tests for broadcasting binary arithmetic (ops/binary.cpp): float64 gradchecks over broadcast
// shape pairs, non-contiguous and repeated inputs, values, gradients by hand, the OpenMP path,
// and the error messages.
#include <functional>
#include <string>
#include <vector>

#include "tests/test_util.h"

using namespace lmlab;

namespace {

using BinaryFn = std::function<Tensor(const Tensor&, const Tensor&)>;

struct BinaryCase {
  std::string name;
  BinaryFn f;
};

std::vector<BinaryCase> all_cases() {
  return {{"add", [](const Tensor& a, const Tensor& b) { return add(a, b); }},
          {"sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }},
          {"mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }},
          {"div", [](const Tensor& a, const Tensor& b) { return div(a, b); }}};
}

// b stays away from 0 so that div is well conditioned.
Tensor rhs(const Shape& shape, uint64_t seed) { return test::rand64(shape, seed, 0.5, 2.0); }

Tensor f64(const std::vector<double>& v, const Shape& s) { return Tensor::from_vector(v, s); }

}  // namespace

TEST(BinaryOps, GradcheckOverBroadcastShapes) {
  const std::vector<std::pair<Shape, Shape>> pairs = {
      {{3, 4}, {3, 4}},      {{3, 4}, {4}}, {{4}, {3, 4}},    {{2, 1, 4}, {3, 1}},    {{}, {2, 3}},
      {{2, 3}, {}},          {{}, {}},      {{1, 4}, {3, 1}}, {{2, 1, 3}, {2, 4, 1}}, {{3, 1}, {1}},
      {{1, 1, 5}, {2, 3, 5}}};
  uint64_t seed = 1;
  for (const BinaryCase& c : all_cases()) {
    for (const auto& [sa, sb] : pairs) {
      Tensor a = test::randn64(sa, ++seed), b = rhs(sb, ++seed);
      auto f = [&](const std::vector<Tensor>& in) { return c.f(in[0], in[1]); };
      EXPECT_TRUE(test::Gradcheck(f, {a, b}))
          << c.name << " " << to_string(sa) << " with " << to_string(sb);
    }
  }
}

TEST(BinaryOps, GradcheckNonContiguousInputs) {
  uint64_t seed = 50;
  for (const BinaryCase& c : all_cases()) {
    Tensor a = test::randn64_transposed({3, 4}, ++seed);
    Tensor b = rhs({3, 4}, ++seed);
    Tensor bt = rhs({4, 3}, ++seed).detach().transpose(0, 1).detach().requires_grad_();
    Tensor row = rhs({4}, ++seed);
    ASSERT_FALSE(a.is_contiguous());
    ASSERT_FALSE(bt.is_contiguous());
    auto f = [&](const std::vector<Tensor>& in) { return c.f(in[0], in[1]); };
    EXPECT_TRUE(test::Gradcheck(f, {a, b})) << c.name << " transposed a";
    EXPECT_TRUE(test::Gradcheck(f, {b, bt})) << c.name << " transposed b";
    EXPECT_TRUE(test::Gradcheck(f, {a, row})) << c.name << " transposed a, broadcast b";
    EXPECT_TRUE(test::Gradcheck(f, {bt, a})) << c.name << " both transposed";
  }
}

TEST(BinaryOps, GradcheckSameTensorTwice) {
  Tensor x = rhs({3, 4}, 7);
  for (const BinaryCase& c : all_cases()) {
    auto f = [&](const std::vector<Tensor>& in) { return c.f(in[0], in[0]); };
    EXPECT_TRUE(test::Gradcheck(f, {x})) << c.name;
  }
  auto chain = [](const std::vector<Tensor>& in) { return sum(mul(add(in[0], in[1]), in[0])); };
  EXPECT_TRUE(test::Gradcheck(chain, {test::randn64({3, 4}, 1), test::randn64({4}, 2)}));
}

TEST(BinaryOps, SameTensorTwiceGradientsByHand) {
  Tensor x = f64({1, -2, 3}, {3}).requires_grad_();
  tape::backward(sum(mul(x, x)));  // d/dx x^2 = 2x
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2, -4, 6}));
  x.zero_grad();
  tape::backward(sum(add(x, x)));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2, 2, 2}));
  x.zero_grad();
  tape::backward(sum(sub(x, x)));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0, 0, 0}));
  x.zero_grad();
  tape::backward(sum(div(x, x)));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0, 0, 0}));
}

TEST(BinaryOps, BroadcastValues) {
  Tensor a = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor row = f64({10, 20, 30}, {3});
  Tensor col = f64({100, 200}, {2, 1});
  EXPECT_EQ(add(a, row).to_vector<double>(), (std::vector<double>{11, 22, 33, 14, 25, 36}));
  EXPECT_EQ(add(row, a).to_vector<double>(), (std::vector<double>{11, 22, 33, 14, 25, 36}));
  EXPECT_EQ(sub(a, col).to_vector<double>(),
            (std::vector<double>{-99, -98, -97, -196, -195, -194}));
  EXPECT_EQ(mul(col, row).shape(), (Shape{2, 3}));
  EXPECT_EQ(mul(col, row).to_vector<double>(),
            (std::vector<double>{1000, 2000, 3000, 2000, 4000, 6000}));
  EXPECT_EQ(div(a, f64({2}, {})).to_vector<double>(),
            (std::vector<double>{0.5, 1, 1.5, 2, 2.5, 3}));
  EXPECT_EQ(div(f64({6}, {}), f64({2}, {})).shape(), Shape{});
  EXPECT_EQ(div(f64({6}, {}), f64({2}, {})).item(), 3.0);
  // (2, 1, 4) * (3, 1) -> (2, 3, 4): y[i, j, k] = a[i, 0, k] * b[j, 0]
  Tensor a3 = f64({1, 2, 3, 4, 5, 6, 7, 8}, {2, 1, 4});
  Tensor b3 = f64({1, 10, 100}, {3, 1});
  Tensor y = mul(a3, b3);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 4}));
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 4; ++k) EXPECT_EQ(y.at({i, j, k}), a3.at({i, 0, k}) * b3.at({j, 0}));
}

TEST(BinaryOps, TensorOperatorsMatchTheirOps) {
  Tensor a = f64({6, 8}, {2}), b = f64({2, 4}, {2});
  EXPECT_EQ((a + b).to_vector<double>(), (std::vector<double>{8, 12}));
  EXPECT_EQ((a - b).to_vector<double>(), (std::vector<double>{4, 4}));
  EXPECT_EQ((a * b).to_vector<double>(), (std::vector<double>{12, 32}));
  EXPECT_EQ((a / b).to_vector<double>(), (std::vector<double>{3, 2}));
  EXPECT_EQ((-a).to_vector<double>(), (std::vector<double>{-6, -8}));
}

TEST(BinaryOps, BroadcastGradientsByHand) {
  Tensor a = f64({1, 2, 3, 4, 5, 6}, {2, 3}).requires_grad_();
  Tensor b = f64({10, 20, 30}, {3}).requires_grad_();
  tape::backward(sum(mul(a, b)));
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{10, 20, 30, 10, 20, 30}));
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{5, 7, 9}));  // column sums of a
  a.zero_grad(), b.zero_grad();
  tape::backward(sum(sub(a, b)));
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>(6, 1.0)));
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{-2, -2, -2}));
  a.zero_grad(), b.zero_grad();
  Tensor s = f64({2}, {}).requires_grad_();
  tape::backward(sum(div(a, s)));  // d/ds sum(a / s) = -sum(a) / s^2 = -21 / 4
  EXPECT_EQ(s.grad().shape(), Shape{});
  EXPECT_DOUBLE_EQ(s.grad().item(), -21.0 / 4);
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>(6, 0.5)));
}

TEST(BinaryOps, OnlyTheInputsThatRequireGradGetOne) {
  Tensor a = f64({1, 2}, {2}).requires_grad_();
  Tensor c = f64({3, 4}, {2});
  tape::backward(sum(mul(a, c)));
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{3, 4}));
  EXPECT_FALSE(c.grad().defined());
  a.zero_grad();
  tape::backward(sum(div(c, a)));  // d/da c / a = -c / a^2
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{-3, -1}));
  a.zero_grad();
  tape::backward(sum(div(a, c)));
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{1.0 / 3, 0.25}));
}

// Non-contiguous float32 inputs on the OpenMP path against a plain loop.
TEST(BinaryOps, LargeStridedFloat32MatchesALoop) {
  Generator gen(3);
  Tensor a = Tensor::randn({300, 60}, gen).transpose(0, 1);  // (60, 300), strided
  Tensor b = Tensor::rand({300}, gen, DType::F32, 0.5, 2.0);
  ASSERT_FALSE(a.is_contiguous());
  std::vector<float> av = a.to_vector<float>(), bv = b.to_vector<float>();
  for (const BinaryCase& c : all_cases()) {
    std::vector<float> y = c.f(a, b).to_vector<float>();
    ASSERT_EQ(y.size(), av.size());
    for (size_t i = 0; i < y.size(); ++i) {
      const float u = av[i], v = bv[i % 300];
      const float want = c.name == "add"   ? u + v
                         : c.name == "sub" ? u - v
                         : c.name == "mul" ? u * v
                                           : u / v;
      ASSERT_EQ(y[i], want) << c.name << " element " << i;
    }
  }
}

TEST(BinaryOps, SameComputationTwiceIsBitwiseIdentical) {
  Generator gen(9);
  Tensor a = Tensor::randn({16, 1, 300}, gen), b = Tensor::randn({40, 1}, gen);
  for (const BinaryCase& c : all_cases())
    EXPECT_EQ(c.f(a, b).to_vector<float>(), c.f(a, b).to_vector<float>()) << c.name;
}

TEST(BinaryOps, BroadcastFailureNamesOpAndShapes) {
  Tensor a = Tensor::zeros({3, 4}), b = Tensor::zeros({5});
  EXPECT_TRUE(
      test::ThrowsWith([&] { add(a, b); }, {"[add] shapes (3, 4) and (5) cannot be broadcast"}));
  EXPECT_TRUE(test::ThrowsWith([&] { sub(b, a); }, {"[sub]", "(5)", "(3, 4)"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        mul(a, Tensor::zeros({2, 4, 1}));
      },
      {"[mul]", "(3, 4)", "(2, 4, 1)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { a / Tensor::zeros({4, 4}); }, {"[div]", "(4, 4)"}));
}

TEST(BinaryOps, DtypeMismatchAndNonFloatInputsAreRefused) {
  Tensor f32 = Tensor::zeros({3}), d64 = Tensor::zeros({3}, DType::F64);
  Tensor ids = Tensor::zeros({3}, DType::I32);
  EXPECT_TRUE(test::ThrowsWith([&] { add(f32, d64); },
                               {"[add] dtype mismatch", "float32 (3)", "float64 (3)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { mul(d64, f32); }, {"[mul]", "dtype mismatch"}));
  EXPECT_TRUE(test::ThrowsWith([&] { div(ids, f32); }, {"[div]", "int32", "(3)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { sub(f32, ids); }, {"[sub]", "b must be", "int32"}));
  EXPECT_TRUE(test::ThrowsWith([&] { add(f32, Tensor()); }, {"[add]", "undefined"}));
}
