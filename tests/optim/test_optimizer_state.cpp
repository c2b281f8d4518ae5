// Optimizer state and the base class: state keys, a save / new optimizer / load round trip whose
// next steps are bitwise equal to the uninterrupted run (AdamW and SGD), every load_state error,
// construction errors, gradient checks that leave parameters untouched, and zero_grad.
#include "optim/adamw.h"
#include "optim/sgd.h"
#include "tests/test_util.h"

using namespace lmlab;
using namespace lmlab::optim;

namespace {

struct Model {
  Tensor w, b;
  NamedTensors params() const { return {{"layer.w", w}, {"layer.b", b}}; }
};
Model make_model(uint64_t seed) {
  Generator gen(seed);
  return {Tensor::randn({3, 4}, gen).requires_grad_(), Tensor::randn({4}, gen).requires_grad_()};
}
// Deterministic gradients for step s.
void set_grads(const Model& m, int s) {
  Generator gen(100 + s);
  m.w.set_grad(Tensor::randn({3, 4}, gen));
  m.b.set_grad(Tensor::randn({4}, gen));
}
// A deep copy of a state (state() returns the live tensors).
NamedTensors snapshot(const NamedTensors& state) {
  NamedTensors out;
  for (const auto& [key, t] : state) out.emplace_back(key, t.clone());
  return out;
}
Model copy_model(const Model& m) {
  return {m.w.detach().clone().requires_grad_(), m.b.detach().clone().requires_grad_()};
}

std::vector<std::string> keys_of(const NamedTensors& state) {
  std::vector<std::string> out;
  for (const auto& [key, t] : state) out.push_back(key);
  return out;
}

TEST(OptimizerState, AdamWKeysAndShapes) {
  Model m = make_model(1);
  AdamW opt(m.params());
  NamedTensors s = opt.state();
  EXPECT_EQ(keys_of(s),
            (std::vector<std::string>{"adamw.steps", "adamw.step.layer.w", "adamw.m.layer.w",
                                      "adamw.v.layer.w", "adamw.step.layer.b", "adamw.m.layer.b",
                                      "adamw.v.layer.b"}));
  EXPECT_EQ(s[0].second.shape(), Shape({1}));
  EXPECT_EQ(s[0].second.dtype(), DType::I32);
  EXPECT_EQ(s[2].second.shape(), Shape({3, 4}));
  EXPECT_EQ(s[6].second.shape(), Shape({4}));
  SGD sgd(m.params(), {.momentum = 0.9});
  EXPECT_EQ(keys_of(sgd.state()), (std::vector<std::string>{"sgd.steps", "sgd.momentum.layer.w",
                                                            "sgd.momentum.layer.b"}));
}

// Runs 3 steps, saves, runs 2 more; a fresh optimizer on a copy of the saved parameters, loaded
// with the saved state, must reproduce the last 2 steps bit for bit.
template <class Opt, class Options>
void round_trip(const Options& options) {
  Model a = make_model(2);
  Opt opt_a(a.params(), options);
  for (int s = 0; s < 3; ++s) {
    set_grads(a, s);
    opt_a.step(1e-2 * (s + 1));
  }
  NamedTensors saved = snapshot(opt_a.state());
  Model b = copy_model(a);
  for (int s = 3; s < 5; ++s) {
    set_grads(a, s);
    opt_a.step(1e-2);
  }
  Opt opt_b(b.params(), options);
  opt_b.load_state(saved);
  EXPECT_EQ(opt_b.steps_taken(), 3);
  for (int s = 3; s < 5; ++s) {
    set_grads(b, s);
    opt_b.step(1e-2);
  }
  EXPECT_EQ(a.w.to_vector<float>(), b.w.to_vector<float>());
  EXPECT_EQ(a.b.to_vector<float>(), b.b.to_vector<float>());
  EXPECT_EQ(opt_b.steps_taken(), 5);
  NamedTensors sa = opt_a.state(), sb = opt_b.state();
  for (size_t k = 0; k < sa.size(); ++k)
    EXPECT_EQ(test::max_abs_diff(sa[k].second, sb[k].second), 0) << sa[k].first;
}

TEST(OptimizerState, AdamWRoundTripIsBitwise) {
  round_trip<AdamW>(AdamWOptions{.weight_decay = 0.1});
}
TEST(OptimizerState, SgdRoundTripIsBitwise) {
  round_trip<SGD>(SGDOptions{.momentum = 0.9, .weight_decay = 0.1});
}

TEST(OptimizerState, LoadAcceptsAMapAndConvertsFloat64) {
  Model a = make_model(3);
  AdamW opt_a(a.params());
  set_grads(a, 0);
  opt_a.step(1e-2);
  std::map<std::string, Tensor> saved;
  for (const auto& [key, t] : opt_a.state())
    saved[key] = t.dtype() == DType::F32 ? t.to(DType::F64) : t.clone();
  Model b = make_model(3);
  AdamW opt_b(b.params());
  opt_b.load_state(saved);
  NamedTensors sa = opt_a.state(), sb = opt_b.state();
  for (size_t k = 0; k < sa.size(); ++k) {
    EXPECT_EQ(sb[k].second.dtype(), sa[k].second.dtype()) << sa[k].first;
    EXPECT_EQ(test::max_abs_diff(sa[k].second, sb[k].second), 0) << sa[k].first;
  }
}

TEST(OptimizerState, LoadErrorsNameTheKeyAndShapesAndChangeNothing) {
  Model m = make_model(4);
  AdamW opt(m.params());
  set_grads(m, 0);
  opt.step(1e-2);
  const NamedTensors good = snapshot(opt.state());
  auto with = [&](const std::string& key, const Tensor& t) {
    NamedTensors s = good;
    for (auto& [k, v] : s)
      if (k == key) v = t;
    return s;
  };
  auto without = [&](const std::string& key) {
    NamedTensors s;
    for (const auto& [k, v] : good)
      if (k != key) s.emplace_back(k, v);
    return s;
  };
  auto load = [&](const NamedTensors& s) { return [&opt, s] { opt.load_state(s); }; };
  EXPECT_TRUE(test::ThrowsWith(load(with("adamw.m.layer.w", Tensor::zeros({4, 3}))),
                               {"[adamw] load_state", "'adamw.m.layer.w'", "(4, 3)", "(3, 4)"}));
  EXPECT_TRUE(test::ThrowsWith(load(without("adamw.v.layer.b")),
                               {"[adamw] load_state", "missing", "'adamw.v.layer.b'", "(4)"}));
  NamedTensors extra = good;
  extra.emplace_back("adamw.m.layer.c", Tensor::zeros({2}));
  EXPECT_TRUE(
      test::ThrowsWith(load(extra), {"[adamw] load_state", "unexpected", "'adamw.m.layer.c'"}));
  NamedTensors twice = good;
  twice.push_back(good[1]);
  EXPECT_TRUE(
      test::ThrowsWith(load(twice), {"[adamw] load_state", "'adamw.step.layer.w'", "twice"}));
  EXPECT_TRUE(test::ThrowsWith(load(with("adamw.steps", Tensor::full({1}, -1, DType::I32))),
                               {"[adamw] load_state", "'adamw.steps'", "-1"}));
  EXPECT_TRUE(test::ThrowsWith(load(with("adamw.step.layer.b", Tensor::full({1}, 2.5))),
                               {"[adamw] load_state", "'adamw.step.layer.b'", "2.5"}));
  EXPECT_TRUE(test::ThrowsWith(load(with("adamw.m.layer.b", Tensor::zeros({4}, DType::I32))),
                               {"[adamw] load_state", "'adamw.m.layer.b'", "int32"}));
  EXPECT_TRUE(test::ThrowsWith(load(with("adamw.m.layer.b", Tensor())),
                               {"[adamw] load_state", "'adamw.m.layer.b'", "undefined"}));
  // SGD state into AdamW: the first missing key is named.
  SGD sgd(m.params());
  EXPECT_TRUE(
      test::ThrowsWith(load(sgd.state()), {"[adamw] load_state", "missing", "'adamw.steps'"}));
  // A valid key before the faulty one was not copied: the state is still the one from the step.
  NamedTensors half = with("adamw.v.layer.b", Tensor::zeros({5}));
  for (auto& [k, v] : half) v = Tensor::full(v.shape(), 7, v.dtype());
  EXPECT_TRUE(test::ThrowsWith(load(half), {"'adamw.v.layer.b'", "(5)", "(4)"}));
  NamedTensors now = opt.state();
  for (size_t k = 0; k < now.size(); ++k)
    EXPECT_EQ(test::max_abs_diff(now[k].second, good[k].second), 0) << now[k].first;
  EXPECT_EQ(opt.steps_taken(), 1);
}

TEST(OptimizerState, ConstructionErrors) {
  Tensor a = Tensor::zeros({2, 3}).requires_grad_();
  EXPECT_TRUE(test::ThrowsWith([] { AdamW opt(NamedTensors{}); }, {"[adamw]", "empty"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        AdamW opt({{"a", a}, {"a", Tensor::zeros({2})}});
      },
      {"[adamw]", "'a'", "twice"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        SGD opt({{"a", a}, {"tied", a}});
      },
      {"[sgd]", "'a'", "'tied'", "share storage"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        AdamW opt({{"ids", Tensor::zeros({2}, DType::I32)}});
      },
      {"[adamw]", "'ids'", "int32"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        AdamW opt({{"t", a.detach().transpose(0, 1)}});
      },
      {"[adamw]", "'t'", "(3, 2)", "contiguous"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        AdamW opt({{"u", Tensor()}});
      },
      {"[adamw]", "'u'", "undefined"}));
}

TEST(OptimizerState, BadGradientThrowsBeforeAnyParameterChanges) {
  Model m = make_model(5);
  AdamW opt(m.params());
  const std::vector<float> w0 = m.w.to_vector<float>();
  m.w.set_grad(Tensor::ones({3, 4}));
  m.b.set_grad(Tensor::ones({4}, DType::F64));
  EXPECT_TRUE(
      test::ThrowsWith([&] { opt.step(0.1); }, {"[adamw]", "'layer.b'", "float64", "float32"}));
  EXPECT_EQ(m.w.to_vector<float>(), w0);
  EXPECT_EQ(opt.steps_taken(), 0);
  for (const auto& [key, t] : opt.state())
    EXPECT_EQ(t.to(DType::F64).to_vector<double>()[0], 0) << key;
}

TEST(OptimizerState, NonContiguousGradientIsAccepted) {
  Tensor w = Tensor::zeros({2, 3}).requires_grad_();
  SGD opt({{"w", w}});
  Tensor g = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {3, 2}).transpose(0, 1);
  w.set_grad(g);
  opt.step(1);
  EXPECT_EQ(w.to_vector<float>(), (std::vector<float>{-1, -3, -5, -2, -4, -6}));
}

TEST(OptimizerState, ZeroGradDropsEveryGradient) {
  Model m = make_model(6);
  SGD opt(m.params());
  set_grads(m, 0);
  opt.zero_grad();
  EXPECT_FALSE(m.w.grad().defined());
  EXPECT_FALSE(m.b.grad().defined());
  const std::vector<float> w0 = m.w.to_vector<float>();
  opt.step(0.1);  // nothing to update
  EXPECT_EQ(m.w.to_vector<float>(), w0);
  EXPECT_EQ(opt.steps_taken(), 1);
}

}  // namespace
