// The tape: recording rules, accumulation, freeing, NoGradGuard, version-counter checks, errors.
#include <cmath>

#include "tests/test_util.h"

using namespace lmlab;

namespace {
Tensor leaf(std::vector<double> v, Shape s) { return Tensor::from_vector(v, s).requires_grad_(); }
}  // namespace

TEST(Tape, RecordsOnlyWhenAnInputRequiresGrad) {
  tape::clear();
  Tensor a = Tensor::ones({3}, DType::F64), b = Tensor::ones({3}, DType::F64);
  Tensor c = add(a, b);
  EXPECT_FALSE(c.requires_grad());
  EXPECT_EQ(tape::size(), 0u);
  a.requires_grad_();
  Tensor d = add(a, b);
  EXPECT_TRUE(d.requires_grad());
  EXPECT_FALSE(d.is_leaf());
  EXPECT_EQ(tape::size(), 1u);
  tape::clear();
}

TEST(Tape, NoGradGuardStopsRecordingAndRestores) {
  tape::clear();
  Tensor a = leaf({1, 2}, {2});
  {
    NoGradGuard guard;
    EXPECT_FALSE(tape::grad_enabled());
    { NoGradGuard nested; }
    EXPECT_FALSE(tape::grad_enabled());
    Tensor y = mul(a, a);
    EXPECT_FALSE(y.requires_grad());
  }
  EXPECT_TRUE(tape::grad_enabled());
  EXPECT_EQ(tape::size(), 0u);
}

TEST(Tape, GradientsOfAProductByHand) {
  // loss = sum(a * b + a) -> dloss/da = b + 1, dloss/db = a
  Tensor a = leaf({1, 2, 3}, {3}), b = leaf({4, 5, 6}, {3});
  tape::backward(sum(add(mul(a, b), a)));
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{5, 6, 7}));
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(tape::size(), 0u);  // freed after backward
}

TEST(Tape, ATensorUsedSeveralTimesGetsTheSumOfItsGradients) {
  Tensor x = leaf({3}, {1});
  // y = x*x + x*x*x + x  -> dy/dx = 2x + 3x^2 + 1 = 6 + 27 + 1
  Tensor y = add(add(mul(x, x), mul(mul(x, x), x)), x);
  tape::backward(sum(y));
  EXPECT_DOUBLE_EQ(x.grad().item(), 34.0);
}

TEST(Tape, GradsAccumulateAcrossBackwardsUntilZeroGrad) {
  Tensor x = leaf({1, 2}, {2});
  tape::backward(sum(mul(x, 3.0)));
  tape::backward(sum(mul(x, 3.0)));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{6, 6}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
  tape::backward(sum(x));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{1, 1}));
}

TEST(Tape, LeafGradsDoNotAliasEachOther) {
  // add's backward hands the same dy to both inputs; each leaf must own its own buffer.
  Tensor a = leaf({1, 1}, {2}), b = leaf({1, 1}, {2});
  tape::backward(sum(add(a, b)));
  EXPECT_FALSE(a.grad().same_storage(b.grad()));
  {
    NoGradGuard g;
    a.grad().mul_(10);
  }
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{1, 1}));
}

TEST(Tape, ALeafTakesAFreshGradientAsItIsAndCopiesAShared) {
  // A Linear's weight gradient comes fresh from one GEMM (formed as the weight's own layout, not
  // as a transposed view): the leaf keeps it, contiguous and with the right values.
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {3, 2});
  Tensor w = leaf({1, 0, 0, 1, 1, 1}, {3, 2});  // (out 3, in 2)
  tape::backward(sum(matmul(x, transpose(w, 0, 1))));
  ASSERT_TRUE(w.grad().is_contiguous());
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{9, 12, 9, 12, 9, 12}));
  // A gradient something else still references (here: the same seed handed to both inputs of
  // add and kept by the first leaf) is copied, so writing one leaf's gradient leaves the other's.
  Tensor a = leaf({1, 1}, {2}), b = leaf({2, 2}, {2});
  tape::backward(sum(add(a, b)));
  {
    NoGradGuard g;
    a.grad().mul_(10);
  }
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{1, 1}));
}

// A gradient that reaches a leaf through a view's backward (a transposed weight's, as every
// Linear's) views the storage its op made; once that op's own dy is dropped it is that storage's
// only handle, and the leaf takes the storage itself (no copy of every weight gradient per step).
TEST(Tape, ALeafTakesAGradientThatCameThroughAViewWithoutACopy) {
  Tensor w = leaf({1, 2, 3, 4, 5, 6}, {3, 2});
  const Tensor wt = transpose(w, 0, 1);
  const void* made = nullptr;
  Tensor out = Tensor::zeros({2, 3}, DType::F64);
  tape::record("probe", {wt}, out, [&made](const Tensor&) {
    Tensor g = Tensor::ones({3, 2}, DType::F64);  // the op's fresh gradient, in w's layout
    made = g.raw_data();
    return Grads{transpose(g, 0, 1)};  // handed out as a (2, 3) view, as dy's shape says
  });
  tape::backward(sum(out));
  ASSERT_NE(made, nullptr);
  EXPECT_EQ(w.grad().raw_data(), made);
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>(6, 1.0)));
}

TEST(Tape, BackwardTwiceWithoutRetainIsAClearError) {
  Tensor x = leaf({1, 2}, {2});
  Tensor loss = sum(mul(x, x));
  tape::backward(loss);
  EXPECT_TRUE(test::ThrowsWith([&] { tape::backward(loss); }, {"[backward]", "retain_graph"}));
}

TEST(Tape, RetainGraphAllowsASecondBackward) {
  Tensor x = leaf({1, 2}, {2});
  Tensor loss = sum(mul(x, x));
  tape::backward(loss, /*retain_graph=*/true);
  tape::backward(loss);
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{4, 8}));  // 2 * 2x
}

TEST(Tape, BackwardOnANonScalarIsAnError) {
  Tensor x = leaf({1, 2}, {2});
  Tensor y = mul(x, 2.0);
  EXPECT_TRUE(test::ThrowsWith([&] { tape::backward(y); }, {"[backward]", "scalar", "(2)"}));
  // With an explicit upstream gradient it works.
  tape::backward(y, Tensor::from_vector(std::vector<double>{1, 10}, {2}));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2, 20}));
  EXPECT_TRUE(test::ThrowsWith([&] { tape::backward(mul(x, 2.0), Tensor::ones({3}, DType::F64)); },
                               {"[backward]", "(3)", "(2)"}));
  // The seed must have the root's dtype (and device: backward rules read it where the root lives).
  EXPECT_TRUE(test::ThrowsWith([&] { tape::backward(mul(x, 2.0), Tensor::ones({2}, DType::F32)); },
                               {"[backward]", "gradient is float32 on cpu", "float64 on cpu"}));
  tape::clear();
}

TEST(Tape, BackwardOnATensorWithoutGradIsAnError) {
  Tensor x = Tensor::ones({2}, DType::F64);
  EXPECT_TRUE(
      test::ThrowsWith([&] { tape::backward(sum(x)); }, {"[backward]", "does not require grad"}));
}

TEST(Tape, InPlaceChangeOfASavedTensorIsDetected) {
  Tensor a = leaf({1, 2}, {2});
  Tensor b = Tensor::from_vector(std::vector<double>{3, 4}, {2});
  Tensor y = mul(a, b);  // saves b for da
  b.fill_(0);            // b does not require grad: the in-place update itself is allowed
  EXPECT_TRUE(
      test::ThrowsWith([&] { tape::backward(sum(y)); }, {"[mul]", "modified in place", "(2)"}));
  tape::clear();
}

TEST(Tape, InPlaceOnATensorThatRequiresGradIsRefusedInGradMode) {
  Tensor a = leaf({1, 2}, {2});
  EXPECT_TRUE(test::ThrowsWith([&] { a.fill_(0); }, {"[fill_]", "NoGradGuard"}));
  NoGradGuard guard;
  a.fill_(0);  // the optimizer's path
  EXPECT_EQ(a.at({0}), 0.0);
}

TEST(Tape, RequiresGradOnlyOnFloatLeaves) {
  Tensor ids = Tensor::zeros({2}, DType::I32);
  EXPECT_TRUE(test::ThrowsWith([&] { ids.requires_grad_(); }, {"[requires_grad_]", "int32"}));
  Tensor a = leaf({1}, {1});
  Tensor y = mul(a, 2.0);
  EXPECT_TRUE(test::ThrowsWith([&] { y.requires_grad_(false); }, {"[requires_grad_]", "leaf"}));
  tape::clear();
}

TEST(Tape, DetachCutsTheGraph) {
  Tensor a = leaf({2}, {1});
  Tensor y = mul(mul(a, a).detach(), a);  // d/da = (a*a) treated as a constant = 4
  tape::backward(sum(y));
  EXPECT_DOUBLE_EQ(a.grad().item(), 4.0);
}

TEST(Tape, GradientFlowsThroughViewsToTheBase) {
  Tensor w = test::randn64({3, 4}, 5);
  EXPECT_TRUE(test::Gradcheck(
      [](const std::vector<Tensor>& x) {
        Tensor t = x[0].transpose(0, 1);                        // (4, 3) view
        return sum(mul(t.narrow(0, 1, 2), t.narrow(0, 2, 2)));  // overlapping views of one leaf
      },
      {w}));
}

TEST(Tape, IntermediateGradsAreFreedDuringBackward) {
  Tensor x = leaf({1, 2, 3}, {3});
  Tensor h = mul(x, 2.0);
  Tensor loss = sum(mul(h, h));
  tape::backward(loss);
  EXPECT_FALSE(h.grad().defined());  // only leaves keep gradients
  EXPECT_TRUE(x.grad().defined());
}

// Two graphs recorded, then differentiated one after the other (two losses, as in a custom loop
// or a harness that runs one function on two devices): each backward frees only its own graph,
// and each gives exactly the gradients of a run on its own.
TEST(Tape, TwoGraphsBuiltThenDifferentiatedGiveTheGradientsOfSeparateRuns) {
  auto f = [](const Tensor& a, const Tensor& b) { return sum(mul(exp(mul(a, b)), a)); };
  const std::vector<double> va = {0.5, -1, 2}, vb = {1.5, 0.25, -0.75};
  Tensor a1 = leaf(va, {3}), b1 = leaf(vb, {3});
  tape::backward(f(a1, b1));  // the reference: one graph alone
  Tensor a2 = leaf(va, {3}), b2 = leaf(vb, {3}), a3 = leaf(va, {3}), b3 = leaf(vb, {3});
  Tensor l2 = f(a2, b2), l3 = f(a3, b3);
  tape::backward(l2);
  EXPECT_GT(tape::size(), 0u);  // l3's graph is still there
  tape::backward(l3);
  EXPECT_EQ(tape::size(), 0u);
  for (const Tensor* a : {&a2, &a3})
    EXPECT_EQ(a->grad().to_vector<double>(), a1.grad().to_vector<double>());
  for (const Tensor* b : {&b2, &b3})
    EXPECT_EQ(b->grad().to_vector<double>(), b1.grad().to_vector<double>());
  // In the other order too, and with the two graphs sharing their leaves.
  Tensor x = leaf(va, {3});
  Tensor first = sum(mul(x, x)), second = sum(mul(x, 3.0));
  tape::backward(second);
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{3, 3, 3}));
  tape::backward(first);
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{3 + 1, 3 - 2, 3 + 4}));
}

// Two losses that share a node: the first backward frees it, so the second cannot pass through it.
// That is an error naming the op (before any gradient is touched), never a silent missing gradient.
TEST(Tape, BackwardThroughAFreedSharedNodeIsAClearError) {
  Tensor x = leaf({1, 2}, {2});
  Tensor h = mul(x, x);
  Tensor l1 = sum(h), l2 = sum(mul(h, 3.0));
  tape::backward(l1);
  const std::vector<double> after_first = x.grad().to_vector<double>();
  EXPECT_TRUE(test::ThrowsWith([&] { tape::backward(l2); },
                               {"[backward]", "'mul'", "freed", "retain_graph=true"}));
  EXPECT_EQ(x.grad().to_vector<double>(), after_first);  // untouched by the failed backward
  tape::clear();
  // The documented fix: retain the shared graph in the first backward.
  Tensor y = leaf({1, 2}, {2});
  Tensor g = mul(y, y);
  Tensor m1 = sum(g), m2 = sum(mul(g, 3.0));
  tape::backward(m1, /*retain_graph=*/true);
  tape::backward(m2);
  EXPECT_EQ(y.grad().to_vector<double>(), (std::vector<double>{2 + 6, 4 + 12}));  // 2y + 6y
  tape::clear();
}

TEST(Tape, BackwardThroughAClearedGraphIsAClearError) {
  Tensor x = leaf({1, 2}, {2});
  Tensor y = tanh(x);
  tape::clear();
  Tensor loss = sum(y);  // recorded after the clear: its input's node is gone
  EXPECT_TRUE(test::ThrowsWith([&] { tape::backward(loss); }, {"[backward]", "'tanh'", "freed"}));
  EXPECT_FALSE(x.grad().defined());
  tape::clear();
}

// A graph built in grad mode and dropped without a backward (an evaluation that forgot its
// NoGradGuard) does not stay on the tape: the next backward drops it, and so does recording once
// the tape is large, also for nodes that save their own output (exp saves y).
TEST(Tape, AbandonedGraphsAreDropped) {
  tape::clear();
  Tensor x = leaf({0.5, 1}, {2});
  { Tensor abandoned = sum(exp(mul(x, x))); }
  Tensor kept = tanh(x);
  EXPECT_GT(tape::size(), 3u);  // both graphs recorded
  tape::backward(sum(mul(x, 2.0)));
  EXPECT_EQ(tape::size(), 1u);  // only tanh, whose output is alive
  for (int i = 0; i < 20000; ++i) Tensor y = exp(mul(x, 2.0));
  EXPECT_LE(tape::size(), 2u * 4096u);
  tape::backward(sum(kept));  // still differentiable after all that dropping
  EXPECT_NEAR(x.grad().at({0}), 2 + (1 - std::tanh(0.5) * std::tanh(0.5)), 1e-12);
  EXPECT_EQ(tape::size(), 0u);
}

TEST(Gradcheck, CatchesAWrongBackwardRule) {
  // A deliberately wrong op: forward 2x, backward claims 3.
  auto wrong = [](const std::vector<Tensor>& in) {
    Tensor y;
    {
      NoGradGuard g;
      y = mul(in[0], 2.0);
    }
    tape::record("wrong", {in[0]}, y, [](const Tensor& dy) { return Grads{mul(dy, 3.0)}; });
    return y;
  };
  GradcheckResult r = gradcheck(wrong, {test::randn64({3}, 1)});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("analytic 3"), std::string::npos) << r.message;
}

TEST(Gradcheck, RefusesFloat32Inputs) {
  Tensor x = Tensor::ones({2}).requires_grad_();
  EXPECT_TRUE(
      test::ThrowsWith([&] { gradcheck([](const std::vector<Tensor>& i) { return i[0]; }, {x}); },
                       {"[gradcheck]", "float64"}));
}

// The hook data-parallel training starts its all-reduces from: each leaf is reported once, after
// the last node that uses it, with its final gradient; the order is the reverse of first use.
TEST(Tape, LeafReadyHookReportsEachLeafOnceWithItsFinalGradient) {
  tape::clear();
  Tensor a = leaf({1, 2}, {2}), b = leaf({3, 4}, {2}), c = leaf({5, 6}, {2}),
         unused = leaf({1}, {1});
  // a is used first and last (a * b, then + a): it must be reported only after both uses.
  Tensor h = mul(a, b);
  Tensor y = add(mul(h, c), a);
  std::vector<std::pair<std::string, std::vector<double>>> seen;
  auto name_of = [&](const AutogradMeta& m) -> std::string {
    if (&m == a.impl_ptr()->meta.get()) return "a";
    if (&m == b.impl_ptr()->meta.get()) return "b";
    if (&m == c.impl_ptr()->meta.get()) return "c";
    return "?";
  };
  tape::backward(
      sum(y), [&](AutogradMeta& m) { seen.emplace_back(name_of(m), m.grad.to_vector<double>()); });
  ASSERT_EQ(seen.size(), 3u);  // `unused` never reached: not reported
  EXPECT_EQ(seen[0].first, "c");
  // b and a are both final after node 0 (a * b); a's last use is also node 0.
  EXPECT_EQ(seen[1].first, "a");
  EXPECT_EQ(seen[2].first, "b");
  for (const auto& [name, g] : seen) {
    const Tensor& t = name == "a" ? a : name == "b" ? b : c;
    EXPECT_EQ(g, t.grad().to_vector<double>()) << name << " changed after it was reported";
  }
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{3 * 5 + 1, 4 * 6 + 1}));
  EXPECT_FALSE(unused.grad().defined());
  EXPECT_EQ(tape::size(), 0u);
}

TEST(Tape, AnEmptyLeafReadyHookIsAPlainBackward) {
  Tensor a = leaf({1, 2, 3}, {3}), b = leaf({4, 5, 6}, {3});
  tape::backward(sum(mul(a, b)), tape::LeafReadyHook{});
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{4, 5, 6}));
}

// Data-parallel ranks: partitions of a generator draw, together, exactly what one generator draws.
TEST(Generator, PartitionsTogetherDrawWhatOneGeneratorDraws) {
  Generator whole(42), p0(42), p1(42), p2(42);
  p0.set_partition(0, 3), p1.set_partition(1, 3), p2.set_partition(2, 3);
  for (uint64_t n : {5u, 1u, 7u}) {
    const uint64_t first = whole.advance(3 * n);
    EXPECT_EQ(p0.advance(n), first);
    EXPECT_EQ(p1.advance(n), first + n);
    EXPECT_EQ(p2.advance(n), first + 2 * n);
    EXPECT_EQ(p0.offset(), whole.offset());  // the shared total: what a checkpoint stores
    EXPECT_EQ(p2.offset(), whole.offset());
  }
  EXPECT_EQ(p1.parts(), 3u);
  Generator plain(42);
  EXPECT_EQ(plain.advance(4), 0u);
  EXPECT_EQ(plain.advance(4), 4u);  // unpartitioned: as before
}
