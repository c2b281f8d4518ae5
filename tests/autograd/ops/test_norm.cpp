// Tests of the fused LayerNorm and RMSNorm ops: float64 gradchecks, fused == composed twin in
// float32, hand-computed values, numerics at extreme scales, determinism, and every error path.
#include <omp.h>

#include <cmath>

#include "tests/test_util.h"

using namespace lmlab;

namespace {

double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to(DType::F64).to_vector<double>()) m = std::max(m, std::abs(v));
  return m;
}
bool all_finite(const Tensor& t) {
  for (double v : t.to(DType::F64).to_vector<double>())
    if (!std::isfinite(v)) return false;
  return true;
}
// |a - b| <= rtol * max|b| elementwise, with the worst case in the failure message.
::testing::AssertionResult RelClose(const Tensor& a, const Tensor& b, double rtol) {
  const double diff = test::max_abs_diff(a, b), scale = std::max(max_abs(b), 1e-30);
  if (diff <= rtol * scale) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "max |a - b| = " << diff << ", max |b| = " << scale;
}
Tensor randn32(const Shape& shape, uint64_t seed, double mean = 0, double std = 1) {
  Generator gen(seed);
  return Tensor::randn(shape, gen, DType::F32, mean, std).requires_grad_();
}

// norm(x, w, b) -> y, then backward of sum(y * r): returns {y, dx, dw} and db when b got one.
using Norm = std::function<Tensor(const Tensor&, const Tensor&, const Tensor&)>;
std::vector<Tensor> run(const Norm& f, const Tensor& x, const Tensor& w, const Tensor& b,
                        const Tensor& r) {
  for (const Tensor& t : {x, w, b})
    if (t.defined()) t.zero_grad();
  Tensor y = f(x, w, b);
  tape::backward(sum(mul(y, r)));
  std::vector<Tensor> out{y.detach(), x.grad(), w.grad()};
  if (b.defined() && b.grad().defined()) out.push_back(b.grad());
  return out;
}

const Norm kLayerNorm = [](const Tensor& x, const Tensor& w, const Tensor& b) {
  return layer_norm(x, w, b);
};
const Norm kLayerNormComposed = [](const Tensor& x, const Tensor& w, const Tensor& b) {
  return layer_norm_composed(x, w, b);
};
const Norm kRmsNorm = [](const Tensor& x, const Tensor& w, const Tensor&) {
  return rms_norm(x, w);
};
const Norm kRmsNormComposed = [](const Tensor& x, const Tensor& w, const Tensor&) {
  return rms_norm_composed(x, w);
};

}  // namespace

// ---------------------------------------------------------------- gradchecks (float64)
TEST(LayerNorm, Gradcheck) {
  uint64_t seed = 10;
  for (const Shape& s : {Shape{3, 5}, Shape{2, 3, 4}, Shape{1, 1, 6}, Shape{3, 1}}) {
    for (bool with_bias : {true, false}) {
      const int64_t C = s.back();
      std::vector<Tensor> in{test::randn64(s, seed), test::randn64({C}, seed + 1)};
      if (with_bias) in.push_back(test::randn64({C}, seed + 2));
      seed += 3;
      EXPECT_TRUE(test::Gradcheck(
          [](const std::vector<Tensor>& v) {
            return layer_norm(v[0], v[1], v.size() > 2 ? v[2] : Tensor());
          },
          in))
          << "shape " << to_string(s) << (with_bias ? " with bias" : " without bias");
    }
  }
}

TEST(LayerNorm, GradcheckNonContiguous) {
  for (const Shape& s : {Shape{3, 5}, Shape{2, 3, 4}}) {
    Tensor x = test::randn64_transposed(s, 31);
    ASSERT_FALSE(x.is_contiguous());
    Tensor w = test::randn64({s.back()}, 32), b = test::randn64({s.back()}, 33);
    EXPECT_TRUE(test::Gradcheck(
        [](const std::vector<Tensor>& v) { return layer_norm(v[0], v[1], v[2]); }, {x, w, b}))
        << to_string(s);
  }
}

TEST(RmsNorm, Gradcheck) {
  uint64_t seed = 50;
  for (const Shape& s : {Shape{3, 5}, Shape{2, 3, 4}, Shape{1, 1, 6}, Shape{3, 1}}) {
    Tensor x = test::randn64(s, seed), w = test::randn64({s.back()}, seed + 1);
    seed += 2;
    EXPECT_TRUE(
        test::Gradcheck([](const std::vector<Tensor>& v) { return rms_norm(v[0], v[1]); }, {x, w}))
        << to_string(s);
  }
  Tensor xt = test::randn64_transposed({3, 5}, 60), w = test::randn64({5}, 61);
  ASSERT_FALSE(xt.is_contiguous());
  EXPECT_TRUE(
      test::Gradcheck([](const std::vector<Tensor>& v) { return rms_norm(v[0], v[1]); }, {xt, w}));
}

// ---------------------------------------------------------------- fused == composed (float32)
TEST(LayerNorm, FusedMatchesComposed) {
  for (bool with_bias : {true, false}) {
    Tensor x = randn32({4, 7, 33}, 1, 0.5, 2), w = randn32({33}, 2, 1, 0.5);
    Tensor b = with_bias ? randn32({33}, 3) : Tensor(), r = randn32({4, 7, 33}, 4).detach();
    std::vector<Tensor> fused = run(kLayerNorm, x, w, b, r);
    std::vector<Tensor> composed = run(kLayerNormComposed, x, w, b, r);
    ASSERT_EQ(fused.size(), with_bias ? 4u : 3u);
    for (size_t i = 0; i < fused.size(); ++i)
      EXPECT_TRUE(RelClose(fused[i], composed[i], 1e-5)) << "output/grad " << i;
  }
}

TEST(RmsNorm, FusedMatchesComposed) {
  Tensor x = randn32({4, 7, 33}, 5, 0.5, 2), w = randn32({33}, 6, 1, 0.5);
  Tensor r = randn32({4, 7, 33}, 7).detach();
  std::vector<Tensor> fused = run(kRmsNorm, x, w, Tensor(), r);
  std::vector<Tensor> composed = run(kRmsNormComposed, x, w, Tensor(), r);
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(RelClose(fused[i], composed[i], 1e-5)) << i;
}

// ---------------------------------------------------------------- hand-computed values
TEST(LayerNorm, HandComputedRow) {
  // x = [1, 2, 3, 4]: mean 2.5, biased var 1.25, xhat = [-1.5, -0.5, 0.5, 1.5] / sqrt(1.25 + eps)
  const double rs = 1 / std::sqrt(1.25 + 1e-5);
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {1, 4}).requires_grad_();
  Tensor w = Tensor::from_vector(std::vector<double>{1, 2, 0.5, -1}, {4}).requires_grad_();
  Tensor b = Tensor::from_vector(std::vector<double>{0, 1, 0, -1}, {4}).requires_grad_();
  Tensor y = layer_norm(x, w, b);
  const std::vector<double> want{-1.5 * rs, -0.5 * rs * 2 + 1, 0.5 * rs * 0.5, -1.5 * rs - 1};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(y.at({0, i}), want[i], 1e-12) << i;
  Tensor plain = layer_norm(x.detach(), Tensor::ones({4}, DType::F64), Tensor());
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(plain.at({0, i}), (i - 1.5) * rs, 1e-12) << i;
  // dy = [1, 0, 0, 0]: dw = dy * xhat, db = dy; with g = dy * w = [1, 0, 0, 0],
  // dx = rs (g - 1/4 - xhat * (g0 xhat0) / 4).
  tape::backward(layer_norm(x, w, b), Tensor::from_vector(std::vector<double>{1, 0, 0, 0}, {1, 4}));
  for (int i = 0; i < 4; ++i) {
    const double xh = (i - 1.5) * rs, xh0 = -1.5 * rs;
    EXPECT_NEAR(w.grad().at({i}), i == 0 ? xh0 : 0.0, 1e-12);
    EXPECT_NEAR(b.grad().at({i}), i == 0 ? 1.0 : 0.0, 1e-12);
    EXPECT_NEAR(x.grad().at({0, i}), rs * ((i == 0) - 0.25 - xh * xh0 / 4), 1e-12) << i;
  }
}

TEST(RmsNorm, HandComputedRow) {
  // x = [1, 2, 3, 4]: mean(x^2) = 30 / 4 = 7.5, y = x w / sqrt(7.5 + eps)
  const double rs = 1 / std::sqrt(7.5 + 1e-5);
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {1, 4}).requires_grad_();
  Tensor w = Tensor::from_vector(std::vector<double>{1, 2, 0.5, -1}, {4}).requires_grad_();
  Tensor y = rms_norm(x, w);
  const std::vector<double> wv{1, 2, 0.5, -1};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(y.at({0, i}), (i + 1) * rs * wv[i], 1e-12) << i;
  // dy = [0, 1, 0, 0]: g = [0, 2, 0, 0], dx = rs (g - xhat * (2 xhat1) / 4), dw = dy xhat
  tape::backward(rms_norm(x, w), Tensor::from_vector(std::vector<double>{0, 1, 0, 0}, {1, 4}));
  for (int i = 0; i < 4; ++i) {
    const double xh = (i + 1) * rs, xh1 = 2 * rs;
    EXPECT_NEAR(w.grad().at({i}), i == 1 ? xh1 : 0.0, 1e-12);
    EXPECT_NEAR(x.grad().at({0, i}), rs * ((i == 1) * 2.0 - xh * 2 * xh1 / 4), 1e-12) << i;
  }
}

// ---------------------------------------------------------------- numerics
TEST(LayerNorm, ConstantRowsGiveBias) {
  for (DType dt : {DType::F32, DType::F64}) {
    Tensor x = Tensor::full({3, 5}, 3.7, dt).requires_grad_();
    Tensor w = randn32({5}, 8).detach().to(dt).requires_grad_();
    Tensor b = randn32({5}, 9).detach().to(dt).requires_grad_();
    Tensor r = randn32({3, 5}, 10).detach().to(dt);
    std::vector<Tensor> out = run(kLayerNorm, x, w, b, r);
    ASSERT_EQ(out.size(), 4u);
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t c = 0; c < 5; ++c) EXPECT_EQ(out[0].at({i, c}), b.at({c})) << to_string(dt);
    for (const Tensor& t : out) EXPECT_TRUE(all_finite(t)) << to_string(dt);
    EXPECT_EQ(max_abs(out[2]), 0.0);  // xhat = 0 everywhere, so dw = sum(dy * xhat) = 0
  }
}

TEST(RmsNorm, ZeroRowIsZero) {
  Tensor x = Tensor::zeros({2, 6}).requires_grad_();
  Tensor w = randn32({6}, 11), r = randn32({2, 6}, 12).detach();
  std::vector<Tensor> out = run(kRmsNorm, x, w, Tensor(), r);
  EXPECT_EQ(max_abs(out[0]), 0.0);
  EXPECT_TRUE(all_finite(out[1]));
  EXPECT_EQ(max_abs(out[2]), 0.0);
}

// Both norms are scale-invariant once eps scales too: norm(s x, eps) == norm(x, eps / s^2).
TEST(LayerNorm, ExtremeScalesStayFinite) {
  struct Case {
    DType dt;
    double scale;
  };
  for (Case k : {Case{DType::F64, 1e30}, Case{DType::F32, 1e18}, Case{DType::F64, 1e-30},
                 Case{DType::F32, 1e-18}}) {
    Tensor x0 = randn32({4, 9}, 13).detach().to(k.dt);
    Tensor x = mul(x0, k.scale).detach().requires_grad_();
    Tensor w = randn32({9}, 14).detach().to(k.dt).requires_grad_();
    Tensor b = randn32({9}, 15).detach().to(k.dt).requires_grad_();
    Tensor r = randn32({4, 9}, 16).detach().to(k.dt);
    const std::vector<Tensor> ln = run(kLayerNorm, x, w, b, r), rms = run(kRmsNorm, x, w, b, r);
    ASSERT_EQ(ln.size(), 4u);
    ASSERT_EQ(rms.size(), 3u);
    for (const Tensor& t : ln) EXPECT_TRUE(all_finite(t)) << k.scale;
    for (const Tensor& t : rms) EXPECT_TRUE(all_finite(t)) << k.scale;
    if (k.scale > 1) {
      const double eps = 1e-5 / (k.scale * k.scale);
      EXPECT_TRUE(RelClose(ln[0], layer_norm(x0, w.detach(), b.detach(), eps), 1e-5)) << k.scale;
      EXPECT_TRUE(RelClose(rms[0], rms_norm(x0, w.detach(), eps), 1e-5)) << k.scale;
    } else {  // eps dominates the tiny variance: y -> b (LayerNorm) and y -> 0 (RMSNorm)
      EXPECT_LT(test::max_abs_diff(ln[0], add(mul(x0, 0.0), b.detach())), 1e-10) << k.scale;
      EXPECT_LT(max_abs(rms[0]), 1e-10) << k.scale;
    }
  }
}

// A float32 `mean` saved for backward is rounded by ~|mean| * 6e-8; the backward kernel re-centres
// xhat so rows with |mean| >> std still get float32-accurate gradients (checked against float64).
TEST(LayerNorm, LargeMeanFloat32GradsMatchFloat64) {
  Tensor x = randn32({6, 40}, 25, 3e4, 1), w = randn32({40}, 26, 1, 0.5), b = randn32({40}, 27);
  Tensor r = randn32({6, 40}, 28).detach();
  Tensor x64 = x.detach().to(DType::F64).requires_grad_();
  Tensor w64 = w.detach().to(DType::F64).requires_grad_();
  Tensor b64 = b.detach().to(DType::F64).requires_grad_();
  const std::vector<Tensor> got = run(kLayerNorm, x, w, b, r);
  const std::vector<Tensor> want = run(kLayerNorm, x64, w64, b64, r.to(DType::F64));
  for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(RelClose(got[i], want[i], 1e-5)) << i;
}

// ---------------------------------------------------------------- determinism
TEST(LayerNorm, DeterministicAcrossRunsAndThreads) {
  // (512, 64) is past the kernels' OpenMP threshold, so two threads really split the rows.
  Tensor x = randn32({512, 64}, 21), w = randn32({64}, 22, 1, 0.5), b = randn32({64}, 23);
  Tensor r = randn32({512, 64}, 24).detach();
  const int threads = omp_get_max_threads();
  for (const Norm& f : {kLayerNorm, kRmsNorm}) {
    omp_set_num_threads(1);
    std::vector<Tensor> one = run(f, x, w, b, r);
    omp_set_num_threads(2);
    std::vector<Tensor> two = run(f, x, w, b, r), again = run(f, x, w, b, r);
    ASSERT_EQ(one.size(), two.size());
    for (size_t i = 0; i < one.size(); ++i) {
      EXPECT_EQ(one[i].to_vector<float>(), two[i].to_vector<float>()) << "1 vs 2 threads, " << i;
      EXPECT_EQ(two[i].to_vector<float>(), again[i].to_vector<float>()) << "run twice, " << i;
    }
  }
  omp_set_num_threads(threads);
}

// ---------------------------------------------------------------- error paths
namespace {

// Each call wrapped as a thunk for ThrowsWith.
std::function<void()> ln(Tensor x, Tensor w, Tensor b, double eps = 1e-5) {
  return [=] { layer_norm(x, w, b, eps); };
}
std::function<void()> rms(Tensor x, Tensor w, double eps = 1e-5) {
  return [=] { rms_norm(x, w, eps); };
}

}  // namespace

TEST(LayerNorm, Errors) {
  using test::ThrowsWith;
  Tensor x = Tensor::zeros({2, 3, 4}), w = Tensor::ones({4}), b = Tensor::zeros({4});
  EXPECT_TRUE(ThrowsWith(ln(x, Tensor::ones({5}), b),
                         {"[layer_norm]", "weight has shape (5)", "last dim is 4", "(2, 3, 4)"}));
  EXPECT_TRUE(ThrowsWith(ln(x, w, Tensor::ones({3})), {"bias has shape (3)", "(2, 3, 4)"}));
  EXPECT_TRUE(ThrowsWith(ln(x, Tensor::ones({1, 4}), b),
                         {"[layer_norm]", "weight must be 1-D", "(1, 4)", "(2, 3, 4)"}));
  EXPECT_TRUE(ThrowsWith(ln(Tensor::zeros({2, 4}, DType::I32), w, b),
                         {"[layer_norm]", "x", "int32", "(2, 4)"}));
  EXPECT_TRUE(ThrowsWith(ln(x, Tensor::ones({4}, DType::F64), b),
                         {"[layer_norm]", "weight is float64 but x is float32", "(2, 3, 4)"}));
  EXPECT_TRUE(ThrowsWith(ln(x, w, Tensor::zeros({4}, DType::F64)),
                         {"[layer_norm]", "bias is float64", "(2, 3, 4)"}));
  EXPECT_TRUE(ThrowsWith(ln(x, Tensor(), b), {"[layer_norm]", "weight"}));
  EXPECT_TRUE(ThrowsWith(ln(x, w, b, 0.0), {"[layer_norm]", "eps must be > 0, got 0"}));
  EXPECT_TRUE(ThrowsWith(ln(x, w, b, -1e-9), {"[layer_norm]", "-1e-09"}));
  EXPECT_TRUE(ThrowsWith(ln(Tensor::zeros({2, 0}), Tensor::ones({0}), Tensor()),
                         {"[layer_norm]", "empty last dim", "(2, 0)"}));
  EXPECT_TRUE(
      ThrowsWith(ln(Tensor::zeros({}), Tensor::ones({1}), Tensor()), {"[layer_norm]", "scalar"}));
  EXPECT_TRUE(ThrowsWith([&] { layer_norm_composed(x, Tensor::ones({5}), b); },
                         {"[layer_norm_composed]", "weight has shape (5)", "(2, 3, 4)"}));
}

TEST(RmsNorm, Errors) {
  using test::ThrowsWith;
  Tensor x = Tensor::zeros({2, 3, 4}), w = Tensor::ones({4});
  EXPECT_TRUE(ThrowsWith(rms(x, Tensor::ones({5})),
                         {"[rms_norm]", "weight has shape (5)", "last dim is 4", "(2, 3, 4)"}));
  EXPECT_TRUE(ThrowsWith(rms(x, Tensor::ones({2, 2})),
                         {"[rms_norm]", "weight must be 1-D", "(2, 2)", "(2, 3, 4)"}));
  EXPECT_TRUE(
      ThrowsWith(rms(Tensor::zeros({2, 4}, DType::I32), w), {"[rms_norm]", "int32", "(2, 4)"}));
  EXPECT_TRUE(ThrowsWith(rms(x, Tensor::ones({4}, DType::F64)),
                         {"[rms_norm]", "weight is float64 but x is float32", "(2, 3, 4)"}));
  EXPECT_TRUE(ThrowsWith(rms(x, w, 0.0), {"[rms_norm]", "eps must be > 0"}));
  EXPECT_TRUE(ThrowsWith(rms(Tensor::zeros({3, 0}), Tensor::ones({0})),
                         {"[rms_norm]", "empty last dim", "(3, 0)"}));
  EXPECT_TRUE(ThrowsWith([&] { rms_norm_composed(x, Tensor::ones({5})); },
                         {"[rms_norm_composed]", "weight has shape (5)", "(2, 3, 4)"}));
}
