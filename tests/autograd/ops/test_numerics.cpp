// Numerics guards: softmax, log_softmax, cross-entropy, LayerNorm and RMSNorm (forward and
// backward) stay finite and correct at 1e+-30 scales, on all-equal rows, zero vectors (eps) and
// large negative logits, in float32 and float64. Each case states the exact answer it expects.
#include <cmath>
#include <limits>

#include "tests/test_util.h"

using namespace lmlab;

namespace {

constexpr DType kBoth[] = {DType::F32, DType::F64};

bool all_finite(const Tensor& t) {
  for (double v : t.to(DType::F64).to_vector<double>())
    if (!std::isfinite(v)) return false;
  return true;
}

// |a - b| <= atol + rtol * |b| elementwise, naming the worst element.
::testing::AssertionResult Close(const Tensor& a, const Tensor& b, double rtol, double atol = 0) {
  const std::vector<double> x = a.to(DType::F64).to_vector<double>();
  const std::vector<double> y = b.to(DType::F64).to_vector<double>();
  if (x.size() != y.size()) return ::testing::AssertionFailure() << "sizes differ";
  for (size_t i = 0; i < x.size(); ++i)
    if (!(std::abs(x[i] - y[i]) <= atol + rtol * std::abs(y[i])))
      return ::testing::AssertionFailure() << "element " << i << ": " << x[i] << " vs " << y[i];
  return ::testing::AssertionSuccess();
}

Tensor randn(const Shape& shape, uint64_t seed, DType dt, double scale = 1) {
  Generator gen(seed);
  return mul(Tensor::randn(shape, gen, DType::F64), scale).to(dt);
}

// y = f(x), then backward of sum(y * r): {y, dx}.
struct Out {
  Tensor y, dx;
};
Out run(const std::function<Tensor(const Tensor&)>& f, const Tensor& x0, const Tensor& r) {
  Tensor x = x0.detach().clone().requires_grad_();
  Tensor y = f(x);
  tape::backward(sum(mul(y, r)));
  return {y.detach(), x.grad()};
}

Tensor softmax_last(const Tensor& x) { return softmax(x); }
Tensor log_softmax_last(const Tensor& x) { return log_softmax(x); }

// softmax of a row whose entries are all equal (or spread far less than one ulp of exp) is 1 / C;
// log_softmax is -log C; backward: dx = (dy - mean(dy)) / C and dy - mean(dy).
void expect_uniform(const Tensor& x, DType dt, const std::string& what) {
  const int64_t R = x.size(0), C = x.size(1);
  const Tensor r = randn({R, C}, 99, dt);
  const Tensor r_mean = mul(sum(r, {1}, true), 1.0 / double(C));
  const double tol = dt == DType::F32 ? 1e-6 : 1e-12;
  const Out s = run(softmax_last, x, r), ls = run(log_softmax_last, x, r);
  EXPECT_TRUE(Close(s.y, Tensor::full({R, C}, 1.0 / double(C), dt), tol)) << what;
  EXPECT_TRUE(Close(s.dx, mul(sub(r, r_mean), 1.0 / double(C)), tol, tol)) << what;
  EXPECT_TRUE(Close(ls.y, Tensor::full({R, C}, -std::log(double(C)), dt), tol)) << what;
  EXPECT_TRUE(Close(ls.dx, sub(r, r_mean), tol, tol * 10)) << what;
}

// exp in float32 over the whole range against libm in double: inf past ln(FLT_MAX), values just
// under it finite, subnormal results below -87, 0 at -inf, NaN through.
TEST(Numerics, Float32ExpOverTheWholeRange) {
  const std::vector<float> xs = {-std::numeric_limits<float>::infinity(),
                                 -200,
                                 -110,
                                 -103.5f,
                                 -100,
                                 -90,
                                 -87.5f,
                                 -87,
                                 -86.9f,
                                 -10,
                                 -1e-3f,
                                 0,
                                 1,
                                 10,
                                 87.9f,
                                 88,
                                 88.3f,
                                 88.7f,
                                 88.72f,
                                 88.73f,
                                 100,
                                 std::numeric_limits<float>::infinity()};
  const std::vector<float> got =
      exp(Tensor::from_vector(xs, {int64_t(xs.size())})).to_vector<float>();
  for (size_t i = 0; i < xs.size(); ++i) {
    const double want = std::exp(double(xs[i]));
    if (want > std::numeric_limits<float>::max()) {
      EXPECT_EQ(got[i], std::numeric_limits<float>::infinity()) << "exp(" << xs[i] << ")";
    } else if (want < std::numeric_limits<float>::min()) {  // subnormal: absolute spacing 1.4e-45
      EXPECT_NEAR(got[i], want, 4e-45 + 1e-6 * want) << "exp(" << xs[i] << ")";
    } else {
      EXPECT_NEAR(got[i], want, 2e-7 * want) << "exp(" << xs[i] << ")";
    }
  }
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(
      std::isnan(exp(Tensor::from_vector(std::vector<float>{nan}, {1})).to_vector<float>()[0]));
}

TEST(Numerics, SoftmaxUniformForTinyEqualAndZeroRows) {
  for (DType dt : kBoth) {
    expect_uniform(randn({3, 7}, 1, dt, 1e-30), dt, "scale 1e-30 " + to_string(dt));
    expect_uniform(Tensor::zeros({3, 7}, dt), dt, "zeros " + to_string(dt));
    for (double v : {7.0, 1e30, -1e30})
      expect_uniform(Tensor::full({3, 7}, v, dt), dt,
                     "all " + std::to_string(v) + " " + to_string(dt));
  }
}

// At 1e30 the gaps between logits are ~1e29: softmax is exactly one-hot at the row max and its
// gradient exactly 0; log_softmax is x - max (finite) with gradient dy - onehot * sum(dy).
TEST(Numerics, SoftmaxOneHotAtHugeScale) {
  for (DType dt : kBoth) {
    const Tensor x = randn({4, 6}, 2, dt, 1e30), r = randn({4, 6}, 3, dt);
    const Out s = run(softmax_last, x, r), ls = run(log_softmax_last, x, r);
    const std::vector<double> xv = x.to(DType::F64).to_vector<double>();
    const std::vector<double> rv = r.to(DType::F64).to_vector<double>();
    std::vector<double> onehot(24, 0.0), shifted(24), dls(24);
    for (int i = 0; i < 4; ++i) {
      int best = 0;
      double rsum = 0;
      for (int c = 0; c < 6; ++c) {
        if (xv[size_t(i * 6 + c)] > xv[size_t(i * 6 + best)]) best = c;
        rsum += rv[size_t(i * 6 + c)];
      }
      onehot[size_t(i * 6 + best)] = 1;
      for (int c = 0; c < 6; ++c) {
        shifted[size_t(i * 6 + c)] = xv[size_t(i * 6 + c)] - xv[size_t(i * 6 + best)];
        dls[size_t(i * 6 + c)] = rv[size_t(i * 6 + c)] - (c == best ? rsum : 0.0);
      }
    }
    EXPECT_TRUE(Close(s.y, Tensor::from_vector(onehot, {4, 6}), 0)) << to_string(dt);
    EXPECT_TRUE(Close(s.dx, Tensor::zeros({4, 6}), 0)) << to_string(dt);
    EXPECT_TRUE(all_finite(ls.y)) << to_string(dt);
    EXPECT_TRUE(Close(ls.y, Tensor::from_vector(shifted, {4, 6}), 1e-6)) << to_string(dt);
    EXPECT_TRUE(Close(ls.dx, Tensor::from_vector(dls, {4, 6}), 1e-5, 1e-6)) << to_string(dt);
  }
}

// Large negative logits: a row of -3e38 (float32) or -1e300 (float64) next to one 0 is one-hot;
// a row shifted by -1e4 is the unshifted softmax (float32 keeps integer steps exact there).
TEST(Numerics, SoftmaxLargeNegativeLogits) {
  for (DType dt : kBoth) {
    const double low = dt == DType::F32 ? -3e38 : -1e300;
    const Tensor x =
        Tensor::from_vector(std::vector<double>{0, low, low, low, 0, low}, {2, 3}).to(dt);
    const Tensor r = randn({2, 3}, 4, dt);
    const Out s = run(softmax_last, x, r);
    EXPECT_TRUE(Close(s.y, Tensor::from_vector(std::vector<double>{1, 0, 0, 0, 1, 0}, {2, 3}), 0));
    EXPECT_TRUE(Close(s.dx, Tensor::zeros({2, 3}), 0)) << to_string(dt);
    const Tensor base =
        Tensor::from_vector(std::vector<double>{0, -1, -2, -3, 1, 2}, {2, 3}).to(dt);
    const Out near = run(softmax_last, add(base, -1e4), r), ref = run(softmax_last, base, r);
    EXPECT_TRUE(Close(near.y, ref.y, 1e-6)) << to_string(dt);
    EXPECT_TRUE(Close(near.dx, ref.dx, 1e-5, 1e-7)) << to_string(dt);
    const Out lnear = run(log_softmax_last, add(base, -1e4), r),
              lref = run(log_softmax_last, base, r);
    EXPECT_TRUE(Close(lnear.y, lref.y, 1e-5, 1e-5)) << to_string(dt);
    EXPECT_TRUE(all_finite(lnear.dx)) << to_string(dt);
  }
}

// Cross-entropy: tiny or zero rows cost log V with gradient (1/V - onehot) / n; at 1e30 a correct
// target costs 0 and a wrong one max - z_y (finite), with gradient (onehot(max) - onehot(y)) / n.
TEST(Numerics, CrossEntropyExtremeLogits) {
  const Tensor targets = Tensor::from_vector(std::vector<int32_t>{0, 2, 4}, {3});
  for (DType dt : kBoth) {
    for (const Tensor& z : {mul(randn({3, 5}, 5, dt), 1e-30), Tensor::zeros({3, 5}, dt)}) {
      Tensor zz = z.detach().clone().requires_grad_();
      Tensor loss = cross_entropy(zz, targets);
      EXPECT_NEAR(loss.item(), std::log(5.0), 1e-6) << to_string(dt);
      tape::backward(loss);
      std::vector<double> want(15, 0.2 / 3);
      for (int i = 0; i < 3; ++i) want[size_t(i * 5 + i * 2)] -= 1.0 / 3;
      EXPECT_TRUE(Close(zz.grad(), Tensor::from_vector(want, {3, 5}), 1e-6, 1e-7)) << to_string(dt);
    }
    const Tensor big =
        Tensor::from_vector(std::vector<double>{1e30, -1e30, 0, 5e29, 0, 0}, {2, 3}).to(dt);
    Tensor zz = big.detach().clone().requires_grad_();
    const Tensor t2 = Tensor::from_vector(std::vector<int32_t>{0, 1}, {2});
    Tensor loss = cross_entropy(zz, t2);  // row 0: 0; row 1: 5e29 - 0
    EXPECT_TRUE(std::isfinite(loss.item())) << to_string(dt);
    EXPECT_NEAR(loss.item(), 2.5e29, 2.5e29 * 1e-6) << to_string(dt);
    tape::backward(loss);
    EXPECT_TRUE(Close(zz.grad(),
                      Tensor::from_vector(std::vector<double>{0, 0, 0, 0.5, -0.5, 0}, {2, 3}), 0))
        << to_string(dt);
  }
}

// Cross-entropy must never form lse = max + log(sum exp(z - max)) and use it: once ulp(max) > log V
// the log term rounds away, and all-equal rows of 1e30 (or 1e8 in float32) would cost 0 instead of
// log V, with a softmax of 1 instead of 1 / V in the backward. The kernels (CPU and CUDA) compute
// loss = log(s) - (z_t - max) and recompute the softmax from the row max in the backward.
TEST(Numerics, CrossEntropyAllEqualHugeLogits) {
  const Tensor targets = Tensor::from_vector(std::vector<int32_t>{0, 2, 4}, {3});
  for (DType dt : kBoth) {
    for (double v : {1e30, -1e30, 1e8}) {
      Tensor z = Tensor::full({3, 5}, v, dt).requires_grad_();
      Tensor loss = cross_entropy(z, targets);
      EXPECT_NEAR(loss.item(), std::log(5.0), 1e-6) << v << " " << to_string(dt);
      tape::backward(loss);
      std::vector<double> want(15, 0.2 / 3);
      for (int i = 0; i < 3; ++i) want[size_t(i * 5 + i * 2)] -= 1.0 / 3;
      EXPECT_TRUE(Close(z.grad(), Tensor::from_vector(want, {3, 5}), 1e-6, 1e-7))
          << v << " " << to_string(dt);
    }
  }
}

// The norms are scale-invariant once eps scales too, norm(s x, eps) = norm(x, eps / s^2), and
// their input gradient scales by 1 / s: checked at s = 1e30 (float32 too: both kernels
// accumulate in float64, so x^2 = 1e60 does not overflow) against a float64 reference.
TEST(Numerics, NormsAtScale1e30MatchTheUnscaledNorm) {
  const double s = 1e30, eps = 1e-5;
  const Tensor x0 = randn({4, 9}, 6, DType::F64), w = randn({9}, 7, DType::F64);
  const Tensor b = randn({9}, 8, DType::F64), r = randn({4, 9}, 9, DType::F64);
  const Out ln_ref =
      run([&](const Tensor& x) { return layer_norm(x, w, b, eps / (s * s)); }, x0, r);
  const Out rms_ref = run([&](const Tensor& x) { return rms_norm(x, w, eps / (s * s)); }, x0, r);
  for (DType dt : kBoth) {
    const double tol = dt == DType::F32 ? 1e-5 : 1e-10;
    const Tensor wd = w.to(dt), bd = b.to(dt), rd = r.to(dt);
    const Out ln =
        run([&](const Tensor& x) { return layer_norm(x, wd, bd, eps); }, mul(x0, s).to(dt), rd);
    const Out rms =
        run([&](const Tensor& x) { return rms_norm(x, wd, eps); }, mul(x0, s).to(dt), rd);
    for (const Tensor& t : {ln.y, ln.dx, rms.y, rms.dx})
      EXPECT_TRUE(all_finite(t)) << to_string(dt);
    EXPECT_TRUE(Close(ln.y, ln_ref.y, tol, tol)) << to_string(dt);
    EXPECT_TRUE(Close(mul(ln.dx, s), ln_ref.dx, tol * 10, tol * 10)) << to_string(dt);
    EXPECT_TRUE(Close(rms.y, rms_ref.y, tol, tol)) << to_string(dt);
    EXPECT_TRUE(Close(mul(rms.dx, s), rms_ref.dx, tol * 10, tol * 10)) << to_string(dt);
  }
}

// At 1e-30 eps dominates: LayerNorm gives b with dx = w dy / sqrt(eps) centred, RMSNorm gives
// ~0 with dx = w dy / sqrt(eps); zero rows are exactly b and 0, and all-equal rows (even at 1e30)
// have zero variance: LayerNorm gives b, and every gradient stays finite.
TEST(Numerics, NormsOnTinyZeroAndConstantRows) {
  for (DType dt : kBoth) {
    const double eps = 1e-5, tol = dt == DType::F32 ? 1e-5 : 1e-10;
    const Tensor w = randn({6}, 10, dt), b = randn({6}, 11, dt), r = randn({3, 6}, 12, dt);
    const Tensor bias_rows = add(Tensor::zeros({3, 6}, dt), b);
    const Tensor g = mul(mul(r, w), 1.0 / std::sqrt(eps));  // w dy / sqrt(eps)
    const Tensor g_centred = sub(g, mul(sum(g, {1}, true), 1.0 / 6));
    for (const Tensor& x : {randn({3, 6}, 13, dt, 1e-30), Tensor::zeros({3, 6}, dt)}) {
      const Out ln = run([&](const Tensor& v) { return layer_norm(v, w, b, eps); }, x, r);
      const Out rms = run([&](const Tensor& v) { return rms_norm(v, w, eps); }, x, r);
      EXPECT_TRUE(Close(ln.y, bias_rows, tol, 1e-20)) << to_string(dt);
      EXPECT_TRUE(Close(ln.dx, g_centred, tol, tol)) << to_string(dt);
      EXPECT_TRUE(Close(rms.y, Tensor::zeros({3, 6}, dt), 0, 1e-20)) << to_string(dt);
      EXPECT_TRUE(Close(rms.dx, g, tol, tol)) << to_string(dt);
    }
    for (double v : {3.5, -1e30, 1e30}) {
      const Tensor x = Tensor::full({3, 6}, v, dt);
      const Out ln = run([&](const Tensor& u) { return layer_norm(u, w, b, eps); }, x, r);
      const Out rms = run([&](const Tensor& u) { return rms_norm(u, w, eps); }, x, r);
      EXPECT_TRUE(Close(ln.y, bias_rows, tol, tol)) << v << " " << to_string(dt);
      for (const Tensor& t : {ln.dx, rms.y, rms.dx})
        EXPECT_TRUE(all_finite(t)) << v << " " << to_string(dt);
      // RMSNorm of a constant row v: sign(v) w (|v| >> sqrt(eps)), gradient ~ 0 at 1e30.
      const double sign = v > 0 ? 1 : -1;
      EXPECT_TRUE(Close(rms.y, add(Tensor::zeros({3, 6}, dt), mul(w, sign)), 1e-4, 1e-6))
          << v << " " << to_string(dt);
    }
  }
}

}  // namespace
