// clip_grad_norm: the global norm against a hand value, scaling only above max_norm (by
// max_norm / (norm + 1e-6)), max_norm <= 0 never clips, parameters without grad ignored, NaN and
// Inf norms reported untouched, and a bitwise-deterministic norm for any thread count.
#include <omp.h>

#include <cmath>

#include "optim/clip.h"
#include "tests/test_util.h"

using namespace lmlab;
using namespace lmlab::optim;

namespace {

Tensor with_grad(const Shape& shape, const std::vector<double>& grad, DType dtype = DType::F64) {
  Tensor p = Tensor::zeros(shape, dtype).requires_grad_();
  p.set_grad(Tensor::from_vector(grad, shape).to(dtype));
  return p;
}
std::vector<double> grad_of(const Tensor& p) { return p.grad().to(DType::F64).to_vector<double>(); }

TEST(ClipGradNorm, NormOverAllGradsAndNoClipBelow) {
  // 3-4-12 triangle: sqrt(3^2 + 4^2 + 12^2) = 13.
  Tensor a = with_grad({2}, {3, 4}), b = with_grad({1, 1}, {12});
  ClipResult r = clip_grad_norm({a, b}, 20);
  EXPECT_DOUBLE_EQ(r.norm, 13);
  EXPECT_FALSE(r.clipped);
  EXPECT_EQ(grad_of(a), (std::vector<double>{3, 4}));
  EXPECT_EQ(grad_of(b), (std::vector<double>{12}));
  EXPECT_DOUBLE_EQ(grad_norm({a, b}), 13);
}

TEST(ClipGradNorm, ScalesAboveMaxNormAndReturnsThePreClipNorm) {
  for (DType dtype : {DType::F64, DType::F32}) {
    Tensor a = with_grad({2}, {3, 4}, dtype), b = with_grad({1, 1}, {12}, dtype);
    ClipResult r = clip_grad_norm({a, b}, 1.0);
    EXPECT_DOUBLE_EQ(r.norm, 13);
    EXPECT_TRUE(r.clipped);
    const double c = 1.0 / (13 + 1e-6);
    const double tol = dtype == DType::F64 ? 1e-15 : 1e-7;
    EXPECT_NEAR(grad_of(a)[0], 3 * c, tol);
    EXPECT_NEAR(grad_of(a)[1], 4 * c, tol);
    EXPECT_NEAR(grad_of(b)[0], 12 * c, tol);
    EXPECT_NEAR(grad_norm({a, b}), 13 * c, 1e-6);  // just under max_norm
  }
}

TEST(ClipGradNorm, NonPositiveMaxNormOnlyMeasures) {
  Tensor a = with_grad({2}, {30, 40});
  for (double max_norm : {0.0, -1.0}) {
    ClipResult r = clip_grad_norm({a}, max_norm);
    EXPECT_DOUBLE_EQ(r.norm, 50);
    EXPECT_FALSE(r.clipped);
    EXPECT_EQ(grad_of(a), (std::vector<double>{30, 40}));
  }
  EXPECT_TRUE(test::ThrowsWith([&] { clip_grad_norm({a}, NAN); }, {"[clip_grad_norm]", "NaN"}));
}

TEST(ClipGradNorm, ParametersWithoutGradAreIgnored) {
  Tensor a = with_grad({2}, {3, 4});
  Tensor none = Tensor::zeros({3}).requires_grad_();
  Tensor plain = Tensor::ones({2});  // does not even require grad
  ClipResult r = clip_grad_norm({none, a, plain}, 1.0);
  EXPECT_DOUBLE_EQ(r.norm, 5);
  EXPECT_TRUE(r.clipped);
  EXPECT_FALSE(none.grad().defined());
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        clip_grad_norm({a, Tensor()}, 1.0);
      },
      {"[clip_grad_norm]", "parameter 1", "undefined"}));
}

TEST(ClipGradNorm, NonFiniteNormsAreReportedAndGradsLeftAlone) {
  Tensor a = with_grad({2}, {3, NAN}, DType::F32), b = with_grad({1}, {1}, DType::F32);
  ClipResult r = clip_grad_norm({a, b}, 1.0);
  EXPECT_TRUE(std::isnan(r.norm));
  EXPECT_FALSE(r.clipped);
  EXPECT_EQ(grad_of(b), (std::vector<double>{1}));
  Tensor c = with_grad({2}, {INFINITY, 1}, DType::F32);
  r = clip_grad_norm({c, b}, 1.0);
  EXPECT_TRUE(std::isinf(r.norm));
  EXPECT_FALSE(r.clipped);
  EXPECT_EQ(grad_of(c)[1], 1);
  // Finite grads whose sum of squares overflows double are reported as Inf too.
  Tensor big = with_grad({2}, {1e200, 1e200});
  EXPECT_TRUE(std::isinf(clip_grad_norm({big}, 1.0).norm));
}

TEST(ClipGradNorm, BitwiseDeterministicForAnyThreadCount) {
  // Large enough that the sum of squares runs in parallel blocks.
  Generator gen(11);
  Tensor a = Tensor::zeros({300, 257}).requires_grad_();
  a.set_grad(Tensor::randn({300, 257}, gen));
  Tensor b = Tensor::zeros({1000}).requires_grad_();
  b.set_grad(Tensor::randn({1000}, gen));
  std::vector<double> norms;
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    norms.push_back(grad_norm({a, b}));
  }
  omp_set_num_threads(2);
  EXPECT_EQ(norms[0], norms[1]);
  EXPECT_EQ(norms[0], norms[2]);
  // And the value: a direct double sum to 1e-12 relative.
  double ss = 0;
  for (float x : a.grad().to_vector<float>()) ss += double(x) * x;
  for (float x : b.grad().to_vector<float>()) ss += double(x) * x;
  EXPECT_NEAR(norms[0], std::sqrt(ss), 1e-12 * std::sqrt(ss));
}

TEST(ClipGradNorm, StridedGradientIsClippedToo) {
  Tensor p = Tensor::zeros({2, 2}, DType::F64).requires_grad_();
  p.set_grad(Tensor::from_vector(std::vector<double>{0, 6, 8, 0}, {2, 2}).transpose(0, 1));
  ClipResult r = clip_grad_norm({p}, 5);
  EXPECT_DOUBLE_EQ(r.norm, 10);
  EXPECT_NEAR(p.grad().at({1, 0}), 6 * 5 / (10 + 1e-6), 1e-15);
  EXPECT_NEAR(p.grad().at({0, 1}), 8 * 5 / (10 + 1e-6), 1e-15);
}

}  // namespace
