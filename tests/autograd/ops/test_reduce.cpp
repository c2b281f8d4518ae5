// Tests for the reductions (ops/reduce.cpp): sum, mean, max, var over every kind of dim set, with
// gradchecks, hand values, max's even split of ties, sum_to, the error paths, and bitwise
// determinism across runs and OpenMP thread counts.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "autograd/kernels/reduce.h"
#include "tests/test_util.h"

using namespace lmlab;

namespace {

using Dims = std::vector<int64_t>;
using ReduceFn = std::function<Tensor(const Tensor&, const Dims&, bool)>;

struct ReduceCase {
  std::string name;
  ReduceFn f;
};

std::vector<ReduceCase> all_cases() {
  return {{"sum", [](const Tensor& x, const Dims& d, bool k) { return sum(x, d, k); }},
          {"mean", [](const Tensor& x, const Dims& d, bool k) { return mean(x, d, k); }},
          {"max", [](const Tensor& x, const Dims& d, bool k) { return max(x, d, k); }},
          {"var0", [](const Tensor& x, const Dims& d, bool k) { return var(x, d, k, 0); }},
          {"var1", [](const Tensor& x, const Dims& d, bool k) { return var(x, d, k, 1); }}};
}

struct DimCase {
  Shape shape;
  Dims dims;
};

// All dims, one dim, adjacent dims, non-adjacent dims, negative dims, size-1 dims.
std::vector<DimCase> dim_cases() {
  return {{{3, 4}, {}},
          {{3, 4}, {0}},
          {{3, 4}, {1}},
          {{2, 3, 4}, {1, 2}},
          {{2, 3, 2, 2}, {0, 2}},
          {{2, 3, 2, 2}, {1, 3}},
          {{2, 3, 4}, {-1}},
          {{2, 3, 4}, {-3, -1}},
          {{3, 1, 4}, {1, 2}},
          {{3, 1, 4}, {0}},
          {{2, 3, 2, 2}, {0, 1, 3}},
          {{5}, {0}}};
}

Shape reduced_shape(const Shape& s, Dims dims, bool keepdim) {
  if (dims.empty())
    for (size_t d = 0; d < s.size(); ++d) dims.push_back(int64_t(d));
  for (int64_t& d : dims) d = d < 0 ? d + int64_t(s.size()) : d;
  Shape out;
  for (size_t d = 0; d < s.size(); ++d) {
    const bool reduced = std::find(dims.begin(), dims.end(), int64_t(d)) != dims.end();
    if (!reduced)
      out.push_back(s[d]);
    else if (keepdim)
      out.push_back(1);
  }
  return out;
}

Tensor f64(const std::vector<double>& v, const Shape& s) { return Tensor::from_vector(v, s); }
std::vector<double> vec(const Tensor& t) { return t.to_vector<double>(); }

}  // namespace

TEST(ReduceOps, GradcheckOverDimSetsAndKeepdim) {
  uint64_t seed = 1;
  for (const ReduceCase& c : all_cases()) {
    for (const DimCase& dc : dim_cases()) {
      for (bool keepdim : {false, true}) {
        Tensor x = test::randn64(dc.shape, ++seed);
        auto f = [&](const std::vector<Tensor>& in) { return c.f(in[0], dc.dims, keepdim); };
        Tensor y = f({x.detach()});
        EXPECT_EQ(y.shape(), reduced_shape(dc.shape, dc.dims, keepdim))
            << c.name << " " << to_string(dc.shape);
        EXPECT_TRUE(test::Gradcheck(f, {x})) << c.name << " " << to_string(dc.shape) << " dims "
                                             << to_string(dc.dims) << " keepdim " << keepdim;
      }
    }
  }
}

TEST(ReduceOps, GradcheckOnNonContiguousInput) {
  for (const ReduceCase& c : all_cases()) {
    Tensor x = test::randn64_transposed({4, 3, 2}, 11);
    ASSERT_FALSE(x.is_contiguous());
    for (const Dims& dims : {Dims{}, Dims{0}, Dims{0, 2}, Dims{-2}}) {
      auto f = [&](const std::vector<Tensor>& in) { return c.f(in[0], dims, false); };
      EXPECT_TRUE(test::Gradcheck(f, {x})) << c.name << " dims " << to_string(dims);
    }
  }
}

TEST(ReduceOps, ValuesAgainstHandComputedNumbers) {
  Tensor x = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(sum(x).item(), 21.0);
  EXPECT_EQ(sum(x).shape(), Shape{});
  EXPECT_EQ(vec(sum(x, {0})), (std::vector<double>{5, 7, 9}));
  EXPECT_EQ(vec(sum(x, {-1})), (std::vector<double>{6, 15}));
  EXPECT_EQ(sum(x, {1}, true).shape(), (Shape{2, 1}));
  EXPECT_EQ(sum(x, {}, true).shape(), (Shape{1, 1}));
  EXPECT_EQ(mean(x).item(), 3.5);
  EXPECT_EQ(vec(mean(x, {0})), (std::vector<double>{2.5, 3.5, 4.5}));
  EXPECT_EQ(vec(mean(x, {1})), (std::vector<double>{2, 5}));
  EXPECT_EQ(max(x).item(), 6.0);
  EXPECT_EQ(vec(max(f64({3, -1, 7, 2, 9, 0}, {2, 3}), {1})), (std::vector<double>{7, 9}));
  EXPECT_EQ(vec(max(f64({3, -1, 7, 2, 9, 0}, {2, 3}), {0})), (std::vector<double>{3, 9, 7}));
  EXPECT_EQ(vec(max(f64({-3, -1, -7}, {3}))), (std::vector<double>{-1}));
}

TEST(ReduceOps, VarianceAgainstHandValues) {
  Tensor x = f64({1, 2, 3, 4}, {4});
  EXPECT_NEAR(var(x).item(), 5.0 / 3, 1e-15);             // correction 1 (unbiased)
  EXPECT_NEAR(var(x, {}, false, 0).item(), 1.25, 1e-15);  // biased
  Tensor m = f64({1, 3, 2, 6, 0, 0}, {2, 3});
  std::vector<double> rows = vec(var(m, {1}, false, 1));  // [1, 3, 2] -> 1; [6, 0, 0] -> 12
  EXPECT_NEAR(rows[0], 1.0, 1e-14);
  EXPECT_NEAR(rows[1], 12.0, 1e-14);
  std::vector<double> cols = vec(var(m, {0}, true, 0));  // pairs (1,6), (3,0), (2,0)
  EXPECT_EQ(var(m, {0}, true, 0).shape(), (Shape{1, 3}));
  EXPECT_NEAR(cols[0], 6.25, 1e-14);
  EXPECT_NEAR(cols[1], 2.25, 1e-14);
  EXPECT_NEAR(cols[2], 1.0, 1e-14);
  EXPECT_NEAR(var(f64({5, 5, 5}, {3})).item(), 0.0, 1e-15);
}

// Reducing dims {0, 2} of a 4-D tensor against a plain loop.
TEST(ReduceOps, NonAdjacentDimsMatchALoop) {
  Tensor x = test::randn64({2, 3, 4, 5}, 3).detach();
  Tensor s = sum(x, {0, 2}), m = max(x, {0, 2}), a = mean(x, {2, 0}, true);
  ASSERT_EQ(s.shape(), (Shape{3, 5}));
  ASSERT_EQ(a.shape(), (Shape{1, 3, 1, 5}));
  for (int64_t j = 0; j < 3; ++j)
    for (int64_t l = 0; l < 5; ++l) {
      double want_s = 0, want_m = -1e300;
      for (int64_t i = 0; i < 2; ++i)
        for (int64_t k = 0; k < 4; ++k) {
          want_s += x.at({i, j, k, l});
          want_m = std::max(want_m, x.at({i, j, k, l}));
        }
      EXPECT_NEAR(s.at({j, l}), want_s, 1e-12);
      EXPECT_NEAR(a.at({0, j, 0, l}), want_s / 8, 1e-12);
      EXPECT_EQ(m.at({j, l}), want_m);
    }
}

TEST(ReduceOps, MaxBackwardSplitsTiesEvenly) {
  Tensor x = f64({1, 3, 3, 2}, {4}).requires_grad_();
  tape::backward(max(x));
  EXPECT_EQ(vec(x.grad()), (std::vector<double>{0, 0.5, 0.5, 0}));

  Tensor y = f64({3, 1, 3, 3}, {2, 2}).requires_grad_();  // three tied maxima over all dims
  tape::backward(max(y));
  EXPECT_EQ(vec(y.grad()), (std::vector<double>{1.0 / 3, 0, 1.0 / 3, 1.0 / 3}));

  Tensor r = f64({2, 2, 0, 5, 1, 5}, {2, 3}).requires_grad_();  // per row
  tape::backward(sum(mul(max(r, {1}), f64({1, 4}, {2}))));
  EXPECT_EQ(vec(r.grad()), (std::vector<double>{0.5, 0.5, 0, 2, 0, 2}));

  // Non-adjacent dims {0, 2} of (2, 1, 2): all three 3s tie for one output.
  Tensor z = f64({3, 3, 3, 1}, {2, 1, 2}).requires_grad_();
  tape::backward(sum(max(z, {0, 2})));
  EXPECT_EQ(vec(z.grad()), (std::vector<double>{1.0 / 3, 1.0 / 3, 1.0 / 3, 0}));

  // Several runs of dims in a 4-D tensor: {0, 1, 3} of (2, 2, 1, 2), ties in different rows.
  Tensor w = f64({4, 4, 0, 4, 1, 1, 4, 2}, {2, 2, 1, 2}).requires_grad_();
  tape::backward(sum(max(w, {0, 1, 3})));
  EXPECT_EQ(vec(w.grad()), (std::vector<double>{0.25, 0.25, 0, 0.25, 0, 0, 0.25, 0}));
}

// PyTorch's max: a NaN anywhere in the reduced slice gives NaN (not only at its first position),
// and the gradient goes to the NaN elements.
TEST(ReduceOps, MaxPropagatesNaNAndItsGradientGoesThere) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (DType dt : {DType::F64, DType::F32}) {
    const Tensor x = f64({1, nan, 3, 2, 5, 4}, {2, 3}).to(dt);
    const std::vector<double> rows = vec(max(x, {1}).to(DType::F64));  // NaN mid-row 0
    EXPECT_TRUE(std::isnan(rows[0])) << to_string(dt);
    EXPECT_EQ(rows[1], 5) << to_string(dt);
    const std::vector<double> cols = vec(max(x, {0}).to(DType::F64));  // NaN in column 1
    EXPECT_EQ(cols[0], 2) << to_string(dt);
    EXPECT_TRUE(std::isnan(cols[1])) << to_string(dt);
    EXPECT_EQ(cols[2], 4) << to_string(dt);
  }
  Tensor y = f64({1, 2, nan, 4}, {4}).requires_grad_();
  tape::backward(max(y));
  EXPECT_EQ(vec(y.grad()), (std::vector<double>{0, 0, 1, 0}));
}

TEST(ReduceOps, SumToUndoesBroadcasting) {
  Tensor x = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(vec(sum_to(x, {3})), (std::vector<double>{5, 7, 9}));
  EXPECT_EQ(vec(sum_to(x, {2, 1})), (std::vector<double>{6, 15}));
  EXPECT_EQ(sum_to(x, {}).item(), 21.0);
  EXPECT_EQ(sum_to(x, {1, 1}).shape(), (Shape{1, 1}));
  EXPECT_EQ(vec(sum_to(x, {2, 3})), vec(x));
  const std::vector<std::pair<Shape, Shape>> pairs = {{{2, 3, 4}, {3, 1}},
                                                      {{2, 3, 4}, {4}},
                                                      {{2, 3, 4}, {}},
                                                      {{2, 3, 4}, {1, 3, 4}},
                                                      {{2, 3, 4}, {2, 1, 4}}};
  uint64_t seed = 20;
  for (const auto& [from, to] : pairs) {
    Tensor t = test::randn64(from, ++seed);
    auto f = [to = to](const std::vector<Tensor>& in) { return sum_to(in[0], to); };
    EXPECT_EQ(f({t.detach()}).shape(), to);
    EXPECT_TRUE(test::Gradcheck(f, {t})) << to_string(from) << " -> " << to_string(to);
  }
}

TEST(ReduceOps, ErrorsNameTheOpAndShape) {
  Tensor x = Tensor::zeros({2, 3});
  EXPECT_TRUE(
      test::ThrowsWith([&] { sum(x, {2}); }, {"[sum] dim 2 out of range for shape (2, 3)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { mean(x, {-3}); }, {"[mean]", "dim -3", "(2, 3)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { max(x, {0, 5}); }, {"[max]", "dim 5", "(2, 3)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { var(x, {7}); }, {"[var]", "dim 7", "(2, 3)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { sum(x, {1, -1}); }, {"[sum]", "twice", "(2, 3)"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        var(Tensor::zeros({1, 3}), {0});
      },
      {"[var]", "1 elements with correction 1", "no degrees of freedom", "(1, 3)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { var(Tensor::zeros({2}), {}, false, 2); },
                               {"[var]", "correction 2", "(2)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { max(Tensor::zeros({2, 0}), {1}); }, {"[max]", "(2, 0)"}));
  Tensor ids = Tensor::zeros({3}, DType::I32);
  EXPECT_TRUE(test::ThrowsWith([&] { sum(ids); }, {"[sum]", "int32", "(3)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { var(ids); }, {"[var]", "int32"}));
  EXPECT_TRUE(test::ThrowsWith([&] { sum_to(x, {4}); }, {"[sum_to]", "(2, 3)", "(4)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { sum_to(x, {1, 2, 3}); }, {"[sum_to]", "(1, 2, 3)"}));
}

TEST(ReduceOps, SameComputationTwiceIsBitwiseIdentical) {
  Generator gen(4);
  Tensor x = Tensor::randn({32, 30, 20}, gen);
  for (const ReduceCase& c : all_cases())
    for (const Dims& dims : {Dims{}, Dims{1}, Dims{0, 2}})
      EXPECT_EQ(c.f(x, dims, false).to_vector<float>(), c.f(x, dims, false).to_vector<float>())
          << c.name;
}

// A 1M-element sum and large row/column reductions under 1, 2 and 3 threads: bitwise equal.
TEST(ReduceOps, ResultsDoNotDependOnTheThreadCount) {
  Generator gen(6);
  Tensor big = Tensor::randn({1 << 20}, gen);
  Tensor mat = Tensor::randn({512, 300}, gen);
  const int saved = omp_get_max_threads();
  std::vector<std::vector<float>> runs;
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    std::vector<float> out;
    float kernel_out = 0;
    cpu::sum_dim(big.data<float>(), &kernel_out, 1, big.numel(), 1, 1.0);
    out.push_back(kernel_out);
    for (const Tensor& t : {sum(big), mean(big), max(big), var(big)}) out.push_back(t.item());
    for (const Tensor& t : {sum(mat, {0}), sum(mat, {1}), max(mat, {0}), mean(mat, {1})})
      for (float v : t.to_vector<float>()) out.push_back(v);
    runs.push_back(out);
  }
  omp_set_num_threads(saved);
  EXPECT_EQ(runs[0], runs[1]);
  EXPECT_EQ(runs[0], runs[2]);
}

TEST(ReduceOps, Float32SumsAccumulateInDouble) {
  Tensor ones = Tensor::ones({1 << 20});
  EXPECT_EQ(sum(ones).item(), double(1 << 20));
  Tensor tenths = Tensor::full({1000000}, 0.1);
  EXPECT_NEAR(sum(tenths).item(), 100000.0, 0.01);  // a float accumulator drifts by ~1000
  EXPECT_NEAR(mean(tenths).item(), 0.1, 1e-7);
}
