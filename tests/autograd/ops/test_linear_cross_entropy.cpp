// linear_cross_entropy (the chunked LM head + cross-entropy): gradchecks across chunks with ignored
// targets, equal to cross_entropy(matmul(h, w^T)) (bitwise with one chunk), no-grad evaluation,
// the all-ignored case, thread-count independence, errors naming the shapes.
#include <omp.h>

#include "tests/test_util.h"

using namespace lmlab;

namespace {

Tensor ids(const std::vector<int32_t>& v) { return Tensor::from_vector(v, {int64_t(v.size())}); }

Tensor composed(const Tensor& h, const Tensor& w, const Tensor& t) {
  return cross_entropy(matmul(h, transpose(w, 0, 1)), t);
}

struct LossAndGrads {
  double loss;
  std::vector<double> dh, dw;
};

LossAndGrads run(const Tensor& h0, const Tensor& w0, const Tensor& t, int64_t chunk) {
  Tensor h = h0.detach().requires_grad_(), w = w0.detach().requires_grad_();
  Tensor loss = chunk < 0 ? composed(h, w, t) : linear_cross_entropy(h, w, t, -100, chunk);
  tape::backward(mul(loss, 1.5));  // an upstream gradient other than 1
  return {loss.item(), h.grad().to(DType::F64).to_vector<double>(),
          w.grad().to(DType::F64).to_vector<double>()};
}

}  // namespace

TEST(LinearCrossEntropy, GradcheckAcrossChunksWithIgnored) {
  Tensor h = test::randn64({5, 3}, 21), w = test::randn64({7, 3}, 22);
  Tensor t = ids({6, -100, 0, 3, 2});
  for (int64_t chunk : {1, 2, 4})
    EXPECT_TRUE(test::Gradcheck(
        [chunk](const std::vector<Tensor>& in) {
          return linear_cross_entropy(in[0], in[1], in[2], -100, chunk);
        },
        {h, w, t}))
        << "chunk " << chunk;
}

TEST(LinearCrossEntropy, GradcheckTransposedWeightView) {
  Tensor h = test::randn64({4, 3}, 23), wt = test::randn64_transposed({3, 6}, 24);
  Tensor t = ids({5, 0, -100, 1});
  EXPECT_TRUE(test::Gradcheck(
      [](const std::vector<Tensor>& in) {
        return linear_cross_entropy(in[0], transpose(in[1], 0, 1), in[2], -100, 3);
      },
      {h, wt, t}));
}

// Chunks of 4 over 9 rows (a partial last one) against the composition: equal to float64
// rounding; with one chunk for all rows it is the composition, bit for bit, in float32 too.
TEST(LinearCrossEntropy, EqualsTheComposition) {
  const Tensor h = test::randn64({9, 4}, 25), w = test::randn64({11, 4}, 26);
  const Tensor t = ids({1, 10, -100, 0, 5, 5, -100, 7, 3});
  const LossAndGrads ref = run(h, w, t, -1), chunked = run(h, w, t, 4);
  EXPECT_NEAR(chunked.loss, ref.loss, 1e-14);
  for (size_t i = 0; i < ref.dh.size(); ++i) EXPECT_NEAR(chunked.dh[i], ref.dh[i], 1e-14);
  for (size_t i = 0; i < ref.dw.size(); ++i) EXPECT_NEAR(chunked.dw[i], ref.dw[i], 1e-14);
  const Tensor h32 = h.to(DType::F32), w32 = w.to(DType::F32);
  const LossAndGrads a = run(h32, w32, t, -1), b = run(h32, w32, t, 9), c = run(h32, w32, t, 0);
  EXPECT_EQ(a.loss, b.loss);
  EXPECT_EQ(a.dh, b.dh);
  EXPECT_EQ(a.dw, b.dw);
  EXPECT_EQ(a.loss, c.loss) << "the default chunk holds 9 rows of 11 classes";
}

TEST(LinearCrossEntropy, WithoutGradientsOnlyTheLoss) {
  const Tensor h = test::randn64({6, 3}, 27), w = test::randn64({5, 3}, 28);
  const Tensor t = ids({0, 1, 2, 3, 4, -100});
  const double ref = composed(h, w, t).item();
  NoGradGuard guard;
  EXPECT_NEAR(linear_cross_entropy(h, w, t, -100, 2).item(), ref, 1e-14);
}

TEST(LinearCrossEntropy, AllIgnoredGivesZeroLossAndZeroGrads) {
  Tensor h = test::randn64({4, 3}, 29), w = test::randn64({5, 3}, 30);
  Tensor loss = linear_cross_entropy(h, w, ids({-100, -100, -100, -100}), -100, 2);
  EXPECT_EQ(loss.item(), 0.0);
  tape::backward(loss);
  for (double g : h.grad().to_vector<double>()) EXPECT_EQ(g, 0.0);
  for (double g : w.grad().to_vector<double>()) EXPECT_EQ(g, 0.0);
}

TEST(LinearCrossEntropy, BitwiseIdenticalForAnyThreadCount) {
  Generator gen(31);
  const Tensor h = Tensor::randn({96, 32}, gen),
               w = Tensor::randn({700, 32}, gen, DType::F32, 0, 0.1);
  std::vector<int32_t> t(96);
  for (int32_t i = 0; i < 96; ++i) t[size_t(i)] = i % 7 == 0 ? -100 : (i * 53) % 700;
  const int saved = omp_get_max_threads();
  std::vector<LossAndGrads> out;
  for (int threads : {1, 3}) {
    omp_set_num_threads(threads);
    out.push_back(run(h, w, ids(t), 40));
  }
  omp_set_num_threads(saved);
  EXPECT_EQ(out[0].loss, out[1].loss);
  EXPECT_EQ(out[0].dh, out[1].dh);
  EXPECT_EQ(out[0].dw, out[1].dw);
}

TEST(LinearCrossEntropy, Errors) {
  const Tensor h = Tensor::zeros({4, 8}), w = Tensor::zeros({65, 8});
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        linear_cross_entropy(h, w, ids({1, 2, 3, 70}), -100, 2);
      },
      {"target 70 at position 3 is out of range for 65 classes", "h w^T (4, 65)",
       "h (4, 8), w (65, 8)"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        linear_cross_entropy(h, Tensor::zeros({65, 7}), ids({1, 2, 3, 4}), -100, 2);
      },
      {"[linear_cross_entropy] needs h (N, C) and w (V, C)", "h (4, 8), w (65, 7)"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        linear_cross_entropy(reshape(h, {2, 2, 8}), w, ids({1, 2, 3, 4}), -100, 2);
      },
      {"needs h (N, C)", "h (2, 2, 8)"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        linear_cross_entropy(h, w.to(DType::F64), ids({1, 2, 3, 4}), -100, 2);
      },
      {"[linear_cross_entropy] h is float32 on cpu, w float64"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        linear_cross_entropy(h, w, ids({1, 2, 3}), -100, 2);
      },
      {"targets must have the logits shape without its last dim (4)"}));
}
