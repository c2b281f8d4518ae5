// Tests for the elementwise unary ops (ops/unary.cpp): float64 gradchecks over several shapes
// (scalar, 3-D, non-contiguous), values against hand-computed numbers, float32 vs float64 on the
// parallel path, and the error paths.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "tests/test_util.h"

using namespace lmlab;

namespace {

using UnaryFn = std::function<Tensor(const Tensor&)>;
enum class Domain { Any, Positive, AwayFromZero };

struct UnaryCase {
  std::string name;
  UnaryFn f;
  Domain domain;
};

std::vector<UnaryCase> all_cases() {
  return {
      {"neg", [](const Tensor& x) { return neg(x); }, Domain::Any},
      {"add_scalar", [](const Tensor& x) { return add(x, 2.5); }, Domain::Any},
      {"mul_scalar", [](const Tensor& x) { return mul(x, -1.5); }, Domain::Any},
      {"rsub", [](const Tensor& x) { return rsub(x, 3.0); }, Domain::Any},
      {"rdiv", [](const Tensor& x) { return rdiv(x, 2.0); }, Domain::Positive},
      {"exp", [](const Tensor& x) { return exp(x); }, Domain::Any},
      {"log", [](const Tensor& x) { return log(x); }, Domain::Positive},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, Domain::Positive},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, Domain::Positive},
      {"pow2", [](const Tensor& x) { return pow(x, 2.0); }, Domain::Positive},
      {"pow0.5", [](const Tensor& x) { return pow(x, 0.5); }, Domain::Positive},
      {"pow-1.5", [](const Tensor& x) { return pow(x, -1.5); }, Domain::Positive},
      {"pow3", [](const Tensor& x) { return pow(x, 3.0); }, Domain::Positive},
      {"tanh", [](const Tensor& x) { return tanh(x); }, Domain::Any},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, Domain::Any},
      {"relu", [](const Tensor& x) { return relu(x); }, Domain::AwayFromZero},
      {"gelu", [](const Tensor& x) { return gelu(x); }, Domain::Any},
      {"silu", [](const Tensor& x) { return silu(x); }, Domain::Any},
  };
}

// A float64 leaf for `domain`: N(0, 1), U[0.5, 2), or +-U[0.1, 2) with alternating signs (relu's
// kink at 0 is out of reach of the finite differences).
Tensor input_for(Domain domain, const Shape& shape, uint64_t seed) {
  if (domain == Domain::Any) return test::randn64(shape, seed);
  if (domain == Domain::Positive) return test::rand64(shape, seed, 0.5, 2.0);
  Generator gen(seed);
  std::vector<double> v = Tensor::rand(shape, gen, DType::F64, 0.1, 2.0).to_vector<double>();
  for (size_t i = 0; i < v.size(); i += 2) v[i] = -v[i];
  return Tensor::from_vector(v, shape).requires_grad_();
}

// Same values as input_for, but laid out as the transpose of a (shape[1], shape[0]) tensor.
Tensor transposed_input_for(Domain domain, const Shape& shape, uint64_t seed) {
  Tensor base = input_for(domain, {shape[1], shape[0]}, seed).detach();
  Tensor t = base.transpose(0, 1).detach();
  t.requires_grad_();
  return t;
}

Tensor f1(const std::vector<double>& v) { return Tensor::from_vector(v, {int64_t(v.size())}); }

// d sum(f(x)) / dx at x = v, through the tape.
double grad_at(const UnaryFn& f, double v) {
  Tensor x = f1({v}).requires_grad_();
  tape::backward(sum(f(x)));
  return x.grad().item();
}

}  // namespace

TEST(UnaryOps, GradcheckEveryOpOverShapes) {
  const std::vector<Shape> shapes = {{3, 4}, {2, 3, 2}, {}, {1, 5}};
  uint64_t seed = 10;
  for (const UnaryCase& c : all_cases()) {
    for (const Shape& s : shapes) {
      Tensor x = input_for(c.domain, s, ++seed);
      auto f = [&](const std::vector<Tensor>& in) { return c.f(in[0]); };
      EXPECT_TRUE(test::Gradcheck(f, {x})) << c.name << " on " << to_string(s);
    }
  }
}

TEST(UnaryOps, GradcheckEveryOpOnNonContiguousInput) {
  uint64_t seed = 100;
  for (const UnaryCase& c : all_cases()) {
    Tensor x = transposed_input_for(c.domain, {4, 3}, ++seed);
    ASSERT_FALSE(x.is_contiguous());
    auto f = [&](const std::vector<Tensor>& in) { return mul(c.f(in[0]), in[0]); };
    EXPECT_TRUE(test::Gradcheck(f, {x})) << c.name;
  }
}

TEST(UnaryOps, NonContiguousForwardMatchesContiguous) {
  for (const UnaryCase& c : all_cases()) {
    Tensor x = transposed_input_for(c.domain, {5, 3}, 7);
    Tensor xc = x.detach().contiguous();
    ASSERT_TRUE(xc.is_contiguous());
    EXPECT_EQ(test::max_abs_diff(c.f(x), c.f(xc)), 0.0) << c.name;
  }
}

TEST(UnaryOps, ValuesAgainstHandComputedNumbers) {
  auto near = [](const Tensor& y, const std::vector<double>& want) {
    std::vector<double> got = y.to_vector<double>();
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-12) << "element " << i;
  };
  near(neg(f1({1.5, -2})), {-1.5, 2});
  near(exp(f1({0, 1})), {1, 2.718281828459045});
  near(log(f1({1, 2.718281828459045})), {0, 1});
  near(sqrt(f1({4, 2.25})), {2, 1.5});
  near(rsqrt(f1({4, 0.25})), {0.5, 2});
  near(pow(f1({2, 4, 4}), 3), {8, 64, 64});
  near(pow(f1({4, 9}), 0.5), {2, 3});
  near(pow(f1({4, 1}), -1.5), {0.125, 1});
  near(tanh(f1({0, 0.5})), {0, 0.46211715726000974});
  near(sigmoid(f1({0, 2})), {0.5, 0.8807970779778823});
  near(relu(f1({-1, 2, -0.5, 0.25})), {0, 2, 0, 0.25});
  near(gelu(f1({1, -1, 0})), {0.8411919906082768, -0.15880800939172324, 0});
  near(silu(f1({1, -1, 0})), {0.7310585786300049, -0.2689414213699951, 0});
  near(add(f1({1, 2}), 0.5), {1.5, 2.5});
  near(mul(f1({1, 2}), -3), {-3, -6});
  near(rsub(f1({1, 2}), 10), {9, 8});
  near(rdiv(f1({4, 0.5}), 2), {0.5, 4});
}

TEST(UnaryOps, ScalarOperatorsMatchTheirOps) {
  Tensor x = f1({1, 2, 4});
  auto vec = [](const Tensor& t) { return t.to_vector<double>(); };
  EXPECT_EQ(vec(x + 1.0), (std::vector<double>{2, 3, 5}));
  EXPECT_EQ(vec(1.0 + x), (std::vector<double>{2, 3, 5}));
  EXPECT_EQ(vec(x - 1.0), (std::vector<double>{0, 1, 3}));
  EXPECT_EQ(vec(1.0 - x), (std::vector<double>{0, -1, -3}));
  EXPECT_EQ(vec(x * 2.0), (std::vector<double>{2, 4, 8}));
  EXPECT_EQ(vec(2.0 * x), (std::vector<double>{2, 4, 8}));
  EXPECT_EQ(vec(x / 2.0), (std::vector<double>{0.5, 1, 2}));
  EXPECT_EQ(vec(4.0 / x), (std::vector<double>{4, 2, 1}));
  EXPECT_EQ(vec(-x), (std::vector<double>{-1, -2, -4}));
}

TEST(UnaryOps, DerivativesAgainstHandComputedNumbers) {
  EXPECT_NEAR(grad_at([](const Tensor& x) { return sigmoid(x); }, 0), 0.25, 1e-12);
  EXPECT_NEAR(grad_at([](const Tensor& x) { return tanh(x); }, 0), 1.0, 1e-12);
  EXPECT_NEAR(grad_at([](const Tensor& x) { return tanh(x); }, 0.5), 0.7864477329659274, 1e-12);
  EXPECT_EQ(grad_at([](const Tensor& x) { return relu(x); }, -1), 0.0);
  EXPECT_EQ(grad_at([](const Tensor& x) { return relu(x); }, 2), 1.0);
  EXPECT_NEAR(grad_at([](const Tensor& x) { return gelu(x); }, 0), 0.5, 1e-12);
  EXPECT_NEAR(grad_at([](const Tensor& x) { return gelu(x); }, 1), 1.0829640838457826, 1e-12);
  EXPECT_NEAR(grad_at([](const Tensor& x) { return silu(x); }, 0), 0.5, 1e-12);
  EXPECT_NEAR(grad_at([](const Tensor& x) { return silu(x); }, 1), 0.9276705118714869, 1e-12);
  EXPECT_NEAR(grad_at([](const Tensor& x) { return pow(x, -1.5); }, 4), -1.5 / 32, 1e-12);
  EXPECT_NEAR(grad_at([](const Tensor& x) { return rsqrt(x); }, 4), -1.0 / 16, 1e-12);
  EXPECT_NEAR(grad_at([](const Tensor& x) { return rdiv(x, 3); }, 2), -0.75, 1e-12);
  EXPECT_NEAR(grad_at([](const Tensor& x) { return log(x); }, 4), 0.25, 1e-12);
  EXPECT_NEAR(grad_at([](const Tensor& x) { return exp(x); }, 1), 2.718281828459045, 1e-12);
}

// 16900 elements cross the kernels' OpenMP threshold; float32 must track float64 closely.
TEST(UnaryOps, Float32MatchesFloat64OnTheParallelPath) {
  for (const UnaryCase& c : all_cases()) {
    Tensor x64 = input_for(c.domain, {130, 130}, 3).detach();
    Tensor y64 = c.f(x64);
    Tensor y32 = c.f(x64.to(DType::F32));
    ASSERT_EQ(y32.dtype(), DType::F32);
    std::vector<double> a = y64.to_vector<double>();
    std::vector<float> b = y32.to_vector<float>();
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i)
      worst = std::max(worst, std::abs(a[i] - double(b[i])) / (1 + std::abs(a[i])));
    EXPECT_LT(worst, 1e-5) << c.name;
  }
}

TEST(UnaryOps, Float32BackwardMatchesFloat64) {
  for (const UnaryCase& c : all_cases()) {
    Tensor x64 = input_for(c.domain, {130, 130}, 4);
    Tensor x32 = x64.detach().to(DType::F32).requires_grad_();
    tape::backward(sum(c.f(x64)));
    tape::backward(sum(c.f(x32)));
    ASSERT_EQ(x32.grad().dtype(), DType::F32);
    EXPECT_LT(test::max_abs_diff(x64.grad(), x32.grad()), 1e-4) << c.name;
  }
}

TEST(UnaryOps, SameComputationTwiceIsBitwiseIdentical) {
  Generator gen(5);
  Tensor x = Tensor::randn({130, 130}, gen);
  for (const UnaryCase& c : all_cases()) {
    Tensor xi = c.domain == Domain::Positive ? add(mul(exp(x), 0.5), 0.1) : x;
    EXPECT_EQ(c.f(xi).to_vector<float>(), c.f(xi).to_vector<float>()) << c.name;
  }
}

TEST(UnaryOps, VectorLanesMatchOneElementAtATime) {
  // The float kernels run in SIMD lanes (AVX2, or the AVX-512 clone on CPUs that have it); a
  // one-element tensor takes the scalar tail of the loop. The same bits both ways, forward and
  // backward, over a range that reaches exp's clamps and tanh's saturation (guards against a
  // miscompiled vector path, such as GCC 12's AVX-512 SLP bug in test_reduce.cpp).
  std::vector<float> v;
  for (int i = -6000; i <= 6000; ++i) v.push_back(float(i) * 0.0173f);
  const Tensor x = Tensor::from_vector(v, {int64_t(v.size())});
  for (const UnaryCase& c : all_cases()) {
    Tensor xi = c.domain == Domain::Positive ? add(mul(x, x), 0.01) : x;
    Tensor xl = xi.detach().requires_grad_();
    const Tensor y = c.f(xl);
    tape::backward(sum(y));
    const std::vector<float> xs = xi.to_vector<float>(), ys = y.detach().to_vector<float>();
    const std::vector<float> gs = xl.grad().to_vector<float>();
    int mismatches = 0;
    for (size_t i = 0; i < xs.size(); i += 7) {
      Tensor one = Tensor::from_vector(std::vector<float>{xs[i]}, {1}).requires_grad_();
      const Tensor y1 = c.f(one);
      tape::backward(sum(y1));
      const bool same_y = std::memcmp(&ys[i], y1.detach().data<float>(), sizeof(float)) == 0;
      const bool same_g = std::memcmp(&gs[i], one.grad().data<float>(), sizeof(float)) == 0;
      if (!(same_y && same_g) && ++mismatches <= 3)
        ADD_FAILURE() << c.name << " at x = " << xs[i] << ": lanes y " << ys[i] << " dy " << gs[i]
                      << ", one element y " << y1.item() << " dy " << one.grad().item();
    }
  }
}

TEST(UnaryOps, NoTapeNodeWithoutRequiresGrad) {
  tape::clear();
  Tensor y = gelu(f1({1, 2}));
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(tape::size(), 0u);
  Tensor x = f1({1, 2}).requires_grad_();
  {
    NoGradGuard guard;
    EXPECT_FALSE(exp(x).requires_grad());
  }
  EXPECT_TRUE(exp(x).requires_grad());
  tape::clear();
}

TEST(UnaryOps, RejectsIntegerAndUndefinedInputs) {
  Tensor ids = Tensor::from_vector(std::vector<int32_t>{1, 2, 3}, {3});
  EXPECT_TRUE(test::ThrowsWith([&] { exp(ids); }, {"[exp]", "floating-point", "int32", "(3)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { gelu(ids); }, {"[gelu]", "int32"}));
  EXPECT_TRUE(test::ThrowsWith([&] { pow(ids, 2); }, {"[pow]", "int32"}));
  EXPECT_TRUE(test::ThrowsWith([&] { mul(ids, 2.0); }, {"[mul]", "int32"}));
  EXPECT_TRUE(test::ThrowsWith([] { relu(Tensor()); }, {"[relu]", "undefined"}));
}

TEST(UnaryOps, SavedInputModifiedInPlaceIsCaught) {
  Tensor x = f1({1, 2}).requires_grad_();
  Tensor h = mul(x, 1.0);
  Tensor y = exp(h);
  {
    NoGradGuard guard;
    h.mul_(2);
  }
  EXPECT_TRUE(test::ThrowsWith([&] { tape::backward(sum(y)); }, {"[exp]", "modified in place"}));
  tape::clear();
}
