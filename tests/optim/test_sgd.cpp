// SGD with momentum: steps computed by hand (PyTorch's buf = momentum buf + g, p -= lr buf),
// plain SGD at momentum 0, decoupled decay on 2-D tensors only, skipped parameters, option errors.
#include "optim/sgd.h"
#include "tests/test_util.h"

using namespace lmlab;
using namespace lmlab::optim;

namespace {

Tensor param(const std::vector<double>& values, const Shape& shape, DType dtype = DType::F64) {
  return Tensor::from_vector(values, shape).to(dtype).requires_grad_();
}
void set_grad(const Tensor& p, const std::vector<double>& values) {
  p.set_grad(Tensor::from_vector(values, p.shape()).to(p.dtype()));
}
std::vector<double> values(const Tensor& t) { return t.to(DType::F64).to_vector<double>(); }
// The state entry `key` of an optimizer (fails the test when absent).
Tensor state_of(const Optimizer& opt, const std::string& key) {
  for (const auto& [k, t] : opt.state())
    if (k == key) return t;
  ADD_FAILURE() << "no state entry " << key;
  return Tensor::zeros({1});
}

void expect_near(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "[" << i << "]";
}

TEST(SGD, MomentumStepsByHand) {
  // b = 1.0 (no decay, 1-D), momentum 0.9, lr 0.1, grads 1, 2, -1:
  //   buf = 1           p = 1 - 0.1 * 1      = 0.9
  //   buf = 0.9 + 2     p = 0.9 - 0.1 * 2.9  = 0.61
  //   buf = 2.61 - 1    p = 0.61 - 0.1 * 1.61 = 0.449
  Tensor b = param({1.0}, {1});
  SGD opt({{"b", b}}, {.momentum = 0.9});
  const double grads[] = {1, 2, -1};
  const double want[] = {0.9, 0.61, 0.449};
  for (int s = 0; s < 3; ++s) {
    set_grad(b, {grads[s]});
    opt.step(0.1);
    EXPECT_NEAR(b.item(), want[s], 1e-15) << "step " << s + 1;
  }
  EXPECT_NEAR(state_of(opt, "sgd.momentum.b").item(), 1.61, 1e-15);
}

TEST(SGD, DecoupledDecayOnlyOnMatrices) {
  // w (2-D): p = p (1 - lr wd) - lr buf; b (1-D): no decay. lr 0.5, wd 0.2 -> decay factor 0.9.
  for (DType dtype : {DType::F64, DType::F32}) {
    const double tol = dtype == DType::F64 ? 1e-15 : 1e-6;  // float32: a few ulps at |p| ~ 3
    Tensor w = param({1, -2, 3, 4}, {2, 2}, dtype), b = param({1, -2}, {2}, dtype);
    SGD opt({{"w", w}, {"b", b}}, {.momentum = 0.5, .weight_decay = 0.2});
    set_grad(w, {0.2, 0.2, -0.2, 0});
    set_grad(b, {0.2, 0.2});
    opt.step(0.5);
    expect_near(values(w), {0.9 - 0.1, -1.8 - 0.1, 2.7 + 0.1, 3.6}, tol);
    expect_near(values(b), {1 - 0.1, -2 - 0.1}, tol);
    // Second step: buf = 0.5 * 0.2 + 0.2 = 0.3 for b[0] (grad 0.2 again).
    set_grad(w, {0, 0, 0, 0});
    set_grad(b, {0.2, 0});
    opt.step(0.5);
    expect_near(values(w), {0.8 * 0.9 - 0.05, -1.9 * 0.9 - 0.05, 2.8 * 0.9 + 0.05, 3.6 * 0.9}, tol);
    expect_near(values(b), {0.9 - 0.15, -2.1 - 0.05}, tol);
  }
}

TEST(SGD, ZeroMomentumIsPlainSgd) {
  Tensor w = param({1, 2, 3, 4}, {2, 2});
  SGD opt({{"w", w}});
  set_grad(w, {1, 1, 1, 1});
  opt.step(0.25);
  set_grad(w, {-1, 0, 2, 0});
  opt.step(0.5);
  expect_near(values(w), {1 - 0.25 + 0.5, 2 - 0.25, 3 - 0.25 - 1, 4 - 0.25}, 1e-15);
}

TEST(SGD, ParametersWithoutGradAreSkipped) {
  Tensor w = param({1, 2}, {2}), frozen = param({3, 4}, {2});
  SGD opt({{"w", w}, {"frozen", frozen}}, {.momentum = 0.9});
  set_grad(w, {1, 1});
  opt.step(0.1);
  EXPECT_EQ(values(frozen), (std::vector<double>{3, 4}));
  EXPECT_EQ(values(state_of(opt, "sgd.momentum.frozen")), (std::vector<double>{0, 0}));
  EXPECT_EQ(values(state_of(opt, "sgd.momentum.w")), (std::vector<double>{1, 1}));
  expect_near(values(w), {0.9, 1.9}, 1e-15);
}

TEST(SGD, OptionErrors) {
  auto make = [](SGDOptions o) { SGD opt({{"w", Tensor::zeros({2}).requires_grad_()}}, o); };
  EXPECT_TRUE(test::ThrowsWith([&] { make({.momentum = -0.1}); }, {"[sgd]", "momentum", "-0.1"}));
  EXPECT_TRUE(test::ThrowsWith([&] { make({.weight_decay = INFINITY}); },
                               {"[sgd]", "weight_decay", "inf"}));
  SGD opt({{"w", Tensor::zeros({2}).requires_grad_()}});
  EXPECT_TRUE(test::ThrowsWith([&] { opt.step(INFINITY); }, {"[sgd]", "lr", "inf"}));
}

}  // namespace
