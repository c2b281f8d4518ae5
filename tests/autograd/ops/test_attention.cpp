// Tests for causal_attention (ops/attention.cpp): float64 gradchecks for MHA / GQA / MQA and
// decode-style Tq < Tk, fused == composed in float32, hand-checked values, decoding consistency,
// GQA == MHA on explicitly repeated K/V, thread-count determinism, and the error paths.
#include <omp.h>

#include <cmath>
#include <vector>

#include "tests/test_util.h"

using namespace lmlab;

namespace {

struct Case {
  int64_t B, NH, KVH, Tq, Tk, HS;
};

std::vector<Tensor> qkv64(const Case& c, uint64_t seed) {
  return {test::randn64({c.B, c.NH, c.Tq, c.HS}, seed),
          test::randn64({c.B, c.KVH, c.Tk, c.HS}, seed + 1),
          test::randn64({c.B, c.KVH, c.Tk, c.HS}, seed + 2)};
}

// A float64 leaf of shape (B, H, T, HS) viewing a (B, T, H, HS) buffer: the layout a projection
// followed by a head split produces.
Tensor heads_transposed64(int64_t B, int64_t H, int64_t T, int64_t HS, uint64_t seed) {
  Generator gen(seed);
  Tensor t = Tensor::randn({B, T, H, HS}, gen, DType::F64).transpose(1, 2).detach();
  t.requires_grad_();
  return t;
}

Tensor randn32(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  return Tensor::randn(shape, gen, DType::F32).requires_grad_();
}

// max |a - b| relative to max(1, max |b|).
double rel_diff(const Tensor& a, const Tensor& b) {
  double scale = 1;
  for (double x : b.to(DType::F64).to_vector<double>()) scale = std::max(scale, std::abs(x));
  return test::max_abs_diff(a, b) / scale;
}

Tensor fused(const std::vector<Tensor>& x) { return causal_attention(x[0], x[1], x[2]); }
Tensor composed(const std::vector<Tensor>& x) {
  return causal_attention_composed(x[0], x[1], x[2]);
}

}  // namespace

TEST(CausalAttention, GradcheckMhaGqaMqaAndDecode) {
  const std::vector<Case> cases = {
      {1, 2, 2, 3, 3, 3},  // MHA
      {1, 4, 2, 3, 3, 2},  // GQA
      {2, 3, 1, 3, 3, 2},  // MQA
      {1, 4, 2, 1, 4, 3},  // decode one token against a cache of 4
      {2, 3, 1, 2, 4, 4},  // decode two tokens, MQA
      {2, 2, 2, 2, 4, 2},  // decode two tokens, MHA
  };
  uint64_t seed = 10;
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << "B " << c.B << " NH " << c.NH << " KVH " << c.KVH << " Tq "
                                      << c.Tq << " Tk " << c.Tk << " HS " << c.HS);
    EXPECT_TRUE(test::Gradcheck(fused, qkv64(c, seed)));
    seed += 3;
  }
}

TEST(CausalAttention, GradcheckNonContiguousInputs) {
  // GQA with q, k, v all strided views (B, T, H, HS) -> (B, H, T, HS).
  std::vector<Tensor> x = {heads_transposed64(1, 4, 3, 2, 1), heads_transposed64(1, 2, 3, 2, 2),
                           heads_transposed64(1, 2, 3, 2, 3)};
  ASSERT_FALSE(x[0].is_contiguous());
  EXPECT_TRUE(test::Gradcheck(fused, x));
}

TEST(CausalAttention, GradcheckComposedTwin) {
  EXPECT_TRUE(test::Gradcheck(composed, qkv64({1, 4, 2, 3, 3, 2}, 40)));
  EXPECT_TRUE(test::Gradcheck(composed, qkv64({2, 3, 1, 2, 4, 2}, 43)));
}

TEST(CausalAttention, FusedEqualsComposedFloat32) {
  for (int64_t KVH : {4, 2, 1}) {
    for (int64_t Tq : {9, 3}) {
      SCOPED_TRACE(::testing::Message() << "KVH " << KVH << " Tq " << Tq);
      const Shape qs = {2, 4, Tq, 8}, kvs = {2, KVH, 9, 8};
      Tensor q1 = randn32(qs, 1), k1 = randn32(kvs, 2), v1 = randn32(kvs, 3);
      Tensor q2 = randn32(qs, 1), k2 = randn32(kvs, 2), v2 = randn32(kvs, 3);
      Generator gen(4);
      Tensor dout = Tensor::randn(qs, gen, DType::F32);
      Tensor y1 = causal_attention(q1, k1, v1);
      tape::backward(y1, dout);
      Tensor y2 = causal_attention_composed(q2, k2, v2);
      tape::backward(y2, dout);
      EXPECT_LT(rel_diff(y1, y2), 1e-5);
      EXPECT_LT(rel_diff(q1.grad(), q2.grad()), 1e-5);
      EXPECT_LT(rel_diff(k1.grad(), k2.grad()), 1e-5);
      EXPECT_LT(rel_diff(v1.grad(), v2.grad()), 1e-5);
    }
  }
}

TEST(CausalAttention, HandCheckedValues) {
  // T = 2, HS = 2. Query 0 sees only key 0, so its output is v[0] exactly. Query 1 = (0.5, 1)
  // against keys (1, 2), (3, -1): scores 2.5 / sqrt(2) and 0.5 / sqrt(2), which differ by sqrt(2).
  Tensor q = Tensor::from_vector(std::vector<double>{0.3, -0.7, 0.5, 1.0}, {1, 1, 2, 2});
  Tensor k = Tensor::from_vector(std::vector<double>{1, 2, 3, -1}, {1, 1, 2, 2});
  Tensor v = Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {1, 1, 2, 2});
  Tensor y = causal_attention(q, k, v);
  EXPECT_EQ(y.at({0, 0, 0, 0}), 1.0);
  EXPECT_EQ(y.at({0, 0, 0, 1}), 2.0);
  const double a0 = 1 / (1 + std::exp(-std::sqrt(2.0))), a1 = 1 - a0;
  EXPECT_NEAR(y.at({0, 0, 1, 0}), a0 * 1 + a1 * 3, 1e-14);
  EXPECT_NEAR(y.at({0, 0, 1, 1}), a0 * 2 + a1 * 4, 1e-14);
}

TEST(CausalAttention, GroupsAreContiguousAsRepeatInterleave) {
  // T = 1: every query sees one key, so head h outputs v of its kv head h / (NH / KVH) exactly.
  Generator gen(5);
  Tensor q = Tensor::randn({1, 4, 1, 3}, gen, DType::F64);
  Tensor k = Tensor::randn({1, 2, 1, 3}, gen, DType::F64);
  Tensor v = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {1, 2, 1, 3});
  Tensor y = causal_attention(q, k, v);
  for (int64_t h = 0; h < 4; ++h)
    for (int64_t c = 0; c < 3; ++c) EXPECT_EQ(y.at({0, h, 0, c}), v.at({0, h / 2, 0, c}));
}

TEST(CausalAttention, DecodingMatchesTheLastRowsOfAFullForward) {
  Generator gen(6);
  Tensor q = Tensor::randn({1, 4, 6, 8}, gen);
  Tensor k = Tensor::randn({1, 2, 6, 8}, gen);
  Tensor v = Tensor::randn({1, 2, 6, 8}, gen);
  Tensor full = causal_attention(q, k, v);
  // Equal to rounding: a one-row product may take another kernel than the full one (oneDNN's
  // GEMV for M = 1 sums in another order; with LMLAB_GEMM=openblas they are bitwise equal).
  for (int64_t Tq : {1, 2}) {
    Tensor last = causal_attention(narrow(q, 2, 6 - Tq, Tq).contiguous(), k, v);
    const std::vector<float> a = last.to_vector<float>();
    const std::vector<float> b = narrow(full, 2, 6 - Tq, Tq).contiguous().to_vector<float>();
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i)
      EXPECT_NEAR(a[i], b[i], 1e-6) << "Tq " << Tq << " at " << i;
  }
}

TEST(CausalAttention, GqaEqualsMhaOnRepeatedKv) {
  const int64_t B = 2, NH = 4, KVH = 2, G = 2, T = 5, HS = 3;
  std::vector<Tensor> x = qkv64({B, NH, KVH, T, T, HS}, 50);
  auto repeat = [&](const Tensor& t) {  // (B, KVH, T, HS) -> (B, NH, T, HS), kv head h / G
    std::vector<Tensor> parts;
    for (int64_t h = 0; h < NH; ++h) parts.push_back(narrow(t.detach(), 1, h / G, 1));
    return concat(parts, 1).requires_grad_();
  };
  Tensor q_rep = x[0].detach().requires_grad_(), k_rep = repeat(x[1]), v_rep = repeat(x[2]);
  Generator gen(7);
  Tensor dout = Tensor::randn({B, NH, T, HS}, gen, DType::F64);
  Tensor y = causal_attention(x[0], x[1], x[2]);
  tape::backward(y, dout);
  Tensor y_rep = causal_attention(q_rep, k_rep, v_rep);
  tape::backward(y_rep, dout);
  EXPECT_LT(test::max_abs_diff(y, y_rep), 1e-14);
  EXPECT_LT(test::max_abs_diff(x[0].grad(), q_rep.grad()), 1e-13);
  Tensor dk_sum = sum(reshape(k_rep.grad(), {B, KVH, G, T, HS}), {2});
  Tensor dv_sum = sum(reshape(v_rep.grad(), {B, KVH, G, T, HS}), {2});
  EXPECT_LT(test::max_abs_diff(x[1].grad(), dk_sum), 1e-13);
  EXPECT_LT(test::max_abs_diff(x[2].grad(), dv_sum), 1e-13);
}

TEST(CausalAttention, BitwiseIdenticalAcrossThreadCounts) {
  // Large enough for the parallel path: B * NH * Tq * Tk * HS = 2 * 4 * 48 * 64 * 16.
  const int saved = omp_get_max_threads();
  std::vector<std::vector<float>> first;
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    Tensor q = randn32({2, 4, 48, 16}, 8), k = randn32({2, 2, 64, 16}, 9);
    Tensor v = randn32({2, 2, 64, 16}, 10);
    Generator gen(11);
    Tensor y = causal_attention(q, k, v);
    tape::backward(y, Tensor::randn(y.shape(), gen));
    std::vector<std::vector<float>> got = {y.to_vector<float>(), q.grad().to_vector<float>(),
                                           k.grad().to_vector<float>(),
                                           v.grad().to_vector<float>()};
    if (first.empty()) first = got;
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], first[i]) << threads << " threads";
  }
  omp_set_num_threads(saved);
}

TEST(CausalAttention, PartialGradsNoGradAndEmptyQueries) {
  // Only q requires grad: its gradient is the one a run with all three requiring grad gives.
  std::vector<Tensor> x = qkv64({1, 2, 1, 3, 3, 2}, 60);
  Tensor q_only = x[0].detach().requires_grad_();
  tape::backward(sum(causal_attention(q_only, x[1].detach(), x[2].detach())));
  tape::backward(sum(causal_attention(x[0], x[1], x[2])));
  EXPECT_EQ(q_only.grad().to_vector<double>(), x[0].grad().to_vector<double>());
  EXPECT_TRUE(x[1].grad().defined() && x[2].grad().defined());
  {
    NoGradGuard guard;
    const size_t before = tape::size();
    causal_attention(x[0], x[1], x[2]);
    EXPECT_EQ(tape::size(), before);
  }
  // Tq = 0 against a cache of 3: an empty output, and zero gradients for k and v.
  Tensor q0 = test::randn64({1, 2, 0, 2}, 61), k0 = test::randn64({1, 1, 3, 2}, 62);
  Tensor v0 = test::randn64({1, 1, 3, 2}, 63);
  Tensor y0 = causal_attention(q0, k0, v0);
  EXPECT_EQ(y0.shape(), (Shape{1, 2, 0, 2}));
  tape::backward(y0, Tensor::zeros(y0.shape(), DType::F64));
  EXPECT_EQ(k0.grad().to_vector<double>(), std::vector<double>(6, 0.0));
  EXPECT_EQ(v0.grad().to_vector<double>(), std::vector<double>(6, 0.0));
}

TEST(CausalAttention, ErrorPaths) {
  auto call = [](const Shape& qs, const Shape& ks, const Shape& vs) {
    return [=] { causal_attention(Tensor::zeros(qs), Tensor::zeros(ks), Tensor::zeros(vs)); };
  };
  EXPECT_TRUE(test::ThrowsWith(call({1, 6, 3, 2}, {1, 4, 3, 2}, {1, 4, 3, 2}),
                               {"[causal_attention]", "n_head 6 is not divisible by n_kv_head 4",
                                "q is (1, 6, 3, 2)", "k is (1, 4, 3, 2)", "v is (1, 4, 3, 2)"}));
  EXPECT_TRUE(test::ThrowsWith(call({1, 2, 3, 2}, {1, 0, 3, 2}, {1, 0, 3, 2}),
                               {"[causal_attention]", "not divisible by n_kv_head 0"}));
  EXPECT_TRUE(test::ThrowsWith(
      call({1, 2, 3, 4}, {1, 2, 3, 2}, {1, 2, 3, 2}),
      {"[causal_attention]", "head sizes differ", "q is (1, 2, 3, 4)", "k is (1, 2, 3, 2)"}));
  EXPECT_TRUE(test::ThrowsWith(
      call({1, 2, 5, 2}, {1, 2, 3, 2}, {1, 2, 3, 2}),
      {"[causal_attention]", "query length 5 exceeds key length 3", "q is (1, 2, 5, 2)"}));
  EXPECT_TRUE(test::ThrowsWith(call({2, 2, 3, 2}, {1, 2, 3, 2}, {1, 2, 3, 2}),
                               {"[causal_attention]", "batch sizes differ", "q is (2, 2, 3, 2)"}));
  EXPECT_TRUE(
      test::ThrowsWith(call({1, 2, 3, 2}, {1, 2, 3, 2}, {1, 2, 4, 2}),
                       {"[causal_attention]", "k and v shapes differ", "v is (1, 2, 4, 2)"}));
  EXPECT_TRUE(test::ThrowsWith(call({2, 3, 2}, {1, 2, 3, 2}, {1, 2, 3, 2}),
                               {"[causal_attention]", "must be 4-D", "q is (2, 3, 2)"}));
  EXPECT_TRUE(test::ThrowsWith(
      [] {
        causal_attention(Tensor::zeros({1, 2, 3, 2}), Tensor::zeros({1, 2, 3, 2}, DType::F64),
                         Tensor::zeros({1, 2, 3, 2}));
      },
      {"[causal_attention]"}));
  EXPECT_TRUE(test::ThrowsWith(
      [] {
        causal_attention(Tensor::zeros({1, 2, 3, 2}, DType::I32), Tensor::zeros({1, 2, 3, 2}),
                         Tensor::zeros({1, 2, 3, 2}));
      },
      {"[causal_attention]", "q"}));
  EXPECT_TRUE(test::ThrowsWith(
      [] {
        causal_attention(Tensor::zeros({1, 2, 3, 2}), Tensor::zeros({1, 2, 3, 2}), Tensor());
      },
      {"[causal_attention]", "v"}));
  EXPECT_TRUE(test::ThrowsWith(
      [] {
        causal_attention_composed(Tensor::zeros({1, 3, 3, 2}), Tensor::zeros({1, 2, 3, 2}),
                                  Tensor::zeros({1, 2, 3, 2}));
      },
      {"[causal_attention_composed]", "n_head 3 is not divisible by n_kv_head 2"}));
}
