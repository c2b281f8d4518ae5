// Tests of the layers: every layer gradient-checked in float64 (via Module::to), the init
// conventions (std, residual scaling, norm weights, MLP widths), RoPE's relative-position property
// and the layers' error messages.
#include <cmath>

#include "nn/transformer.h"
#include "tests/test_util.h"

using namespace lmlab;
using namespace lmlab::nn;

namespace {

// Overwrites a parameter with N(0, std) values (so gradchecks do not sit at w = 1, b = 0).
void randomize(const Tensor& t, uint64_t seed, double std = 1) {
  NoGradGuard guard;
  Generator gen(seed);
  Tensor dst = t;
  dst.copy_(Tensor::randn(t.shape(), gen, t.dtype(), 0, std));
}

// The module's parameters followed by x: f reads the parameters through the module itself.
std::vector<Tensor> with_params(const Module& m, const Tensor& x) {
  std::vector<Tensor> in = m.parameters();
  in.push_back(x);
  return in;
}

struct Stats {
  double mean, std;
};
Stats stats(const Tensor& t) {
  const std::vector<double> v = t.to(DType::F64).to_vector<double>();
  double s = 0, s2 = 0;
  for (double x : v) s += x;
  const double m = s / double(v.size());
  for (double x : v) s2 += (x - m) * (x - m);
  return {m, std::sqrt(s2 / double(v.size()))};
}

ModelConfig tiny(int64_t n_head, int64_t n_kv_head, PositionType pos) {
  ModelConfig c;
  c.vocab_size = 5;
  c.block_size = 4;
  c.n_layer = 2;
  c.n_head = n_head;
  c.n_kv_head = n_kv_head;
  c.n_embd = 8;
  c.position = pos;
  c.init_std = 0.3;  // large enough that attention is far from uniform
  return c;
}

}  // namespace

// ---------------------------------------------------------------- gradchecks (float64)

TEST(NnLayers, GradcheckLinear) {
  for (bool bias : {true, false}) {
    Generator gen(1);
    Linear lin(3, 4, bias, gen, 0.5);
    lin.to(DType::F64);
    if (bias) randomize(lin.bias, 2);
    EXPECT_EQ(lin.parameters().size(), bias ? 2u : 1u);
    auto f = [&](const std::vector<Tensor>& in) { return lin.forward(in.back()); };
    EXPECT_TRUE(test::Gradcheck(f, with_params(lin, test::randn64({2, 3}, 3)))) << bias;
    EXPECT_TRUE(test::Gradcheck(f, with_params(lin, test::randn64({2, 2, 3}, 4)))) << bias;
  }
}

TEST(NnLayers, GradcheckEmbedding) {
  Generator gen(1);
  Embedding emb(5, 3, gen, 1.0);
  emb.to(DType::F64);
  const Tensor ids = Tensor::from_vector(std::vector<int32_t>{4, 0, 4, 2, 1, 4}, {2, 3});
  auto f = [&](const std::vector<Tensor>&) { return emb.forward(ids); };
  EXPECT_TRUE(test::Gradcheck(f, emb.parameters()));
}

TEST(NnLayers, GradcheckLayerNormAndRmsNorm) {
  for (bool bias : {true, false}) {
    LayerNorm ln(4, 1e-5, bias);
    ln.to(DType::F64);
    for (size_t i = 0; i < ln.parameters().size(); ++i) randomize(ln.parameters()[i], 10 + i);
    auto f = [&](const std::vector<Tensor>& in) { return ln.forward(in.back()); };
    EXPECT_TRUE(test::Gradcheck(f, with_params(ln, test::randn64({2, 3, 4}, 5)))) << bias;
  }
  RMSNorm rms(4);
  rms.to(DType::F64);
  randomize(rms.weight, 11);
  auto f = [&](const std::vector<Tensor>& in) { return rms.forward(in.back()); };
  EXPECT_TRUE(test::Gradcheck(f, with_params(rms, test::randn64({3, 4}, 6))));
}

TEST(NnLayers, GradcheckNormFromConfig) {
  for (NormType t : {NormType::LayerNorm, NormType::RMSNorm}) {
    ModelConfig c = tiny(2, 2, PositionType::Learned);
    c.n_embd = 5;
    c.norm = t;
    Norm n(c);
    n.to(DType::F64);
    for (size_t i = 0; i < n.parameters().size(); ++i) randomize(n.parameters()[i], 20 + i);
    auto f = [&](const std::vector<Tensor>& in) { return n.forward(in.back()); };
    EXPECT_TRUE(test::Gradcheck(f, with_params(n, test::randn64({2, 5}, 7)))) << to_string(t);
  }
}

TEST(NnLayers, GradcheckMlpGeluAndSwiglu) {
  for (MlpType t : {MlpType::Gelu, MlpType::SwiGlu}) {
    ModelConfig c = tiny(2, 2, PositionType::Learned);
    c.n_embd = 4;
    c.mlp = t;
    c.mlp_multiple_of = 4;  // swiglu: int(32 / 3) = 10 -> 12; gelu: 16
    Generator gen(2);
    Mlp mlp(c, gen);
    mlp.to(DType::F64);
    auto f = [&](const std::vector<Tensor>& in) { return mlp.forward(in.back()); };
    EXPECT_TRUE(test::Gradcheck(f, with_params(mlp, test::randn64({2, 4}, 8)))) << to_string(t);
  }
}

TEST(NnLayers, GradcheckRopeApply) {
  Rope rope(4, 8, 10000);
  for (int64_t pos0 : {0, 3}) {
    auto f = [&](const std::vector<Tensor>& in) { return rope.apply(in[0], pos0); };
    EXPECT_TRUE(test::Gradcheck(f, {test::randn64({1, 2, 3, 4}, 9)})) << pos0;
  }
}

// MHA, GQA and MQA, each with and without RoPE; x and every weight are checked.
TEST(NnLayers, GradcheckCausalSelfAttention) {
  for (int64_t kvh : {4, 2, 1})
    for (PositionType pos : {PositionType::Learned, PositionType::Rope}) {
      ModelConfig c = tiny(4, kvh, pos);
      Generator gen(3);
      CausalSelfAttention attn(c, gen);
      attn.to(DType::F64);
      for (const Tensor& p : attn.parameters())
        if (p.dim() == 1) randomize(p, 30, 0.3);
      Rope rope(c.head_size(), c.block_size, c.rope_base);
      const Rope* r = pos == PositionType::Rope ? &rope : nullptr;
      auto f = [&](const std::vector<Tensor>& in) { return attn.forward(in.back(), r, 1); };
      EXPECT_TRUE(test::Gradcheck(f, with_params(attn, test::randn64({1, 3, 8}, 10))))
          << "n_kv_head " << kvh << " " << to_string(pos);
    }
}

// ---------------------------------------------------------------- init conventions

TEST(NnLayers, LinearAndEmbeddingInit) {
  Generator gen(5);
  Linear lin(256, 256, true, gen);
  const Stats w = stats(lin.weight);
  EXPECT_NEAR(w.std, 0.02, 0.02 * 0.03);
  EXPECT_NEAR(w.mean, 0, 0.001);
  EXPECT_EQ(stats(lin.bias).std, 0.0);
  EXPECT_EQ(stats(lin.bias).mean, 0.0);
  Embedding emb(512, 64, gen);
  EXPECT_NEAR(stats(emb.weight).std, 0.02, 0.02 * 0.03);
  EXPECT_EQ(emb.weight.shape(), (Shape{512, 64}));
}

TEST(NnLayers, NormInitIsOneAndZero) {
  LayerNorm ln(7);
  EXPECT_EQ(stats(ln.weight).mean, 1.0);
  EXPECT_EQ(stats(ln.weight).std, 0.0);
  EXPECT_EQ(stats(ln.bias).mean, 0.0);
  EXPECT_EQ(stats(ln.bias).std, 0.0);
  RMSNorm rms(7);
  EXPECT_EQ(stats(rms.weight).mean, 1.0);
  EXPECT_EQ(rms.parameters().size(), 1u);
  EXPECT_EQ(LayerNorm(7, 1e-5, false).parameters().size(), 1u);
}

// In a model: input projections N(0, 0.02), residual projections (attn.wo, mlp.proj / mlp.w2)
// N(0, 0.02 / sqrt(2 n_layer)), all biases 0, all norm weights 1.
TEST(NnLayers, TransformerInitStds) {
  for (MlpType t : {MlpType::Gelu, MlpType::SwiGlu}) {
    ModelConfig c;
    c.n_layer = 4;
    c.n_embd = 128;
    c.mlp = t;
    Generator gen(6);
    TransformerLM m(c, gen);
    const StateDict s = m.state_dict();
    const double resid = 0.02 / std::sqrt(8.0);
    const std::string out = t == MlpType::Gelu ? "mlp.proj" : "mlp.w2";
    const std::string in = t == MlpType::Gelu ? "mlp.fc" : "mlp.w1";
    for (int l = 0; l < 4; ++l) {
      const std::string b = "blocks." + std::to_string(l) + ".";
      EXPECT_NEAR(stats(s.at(b + "attn.wo.weight")).std, resid, resid * 0.05) << b;
      EXPECT_NEAR(stats(s.at(b + out + ".weight")).std, resid, resid * 0.05) << b;
      EXPECT_NEAR(stats(s.at(b + "attn.wq.weight")).std, 0.02, 0.02 * 0.05) << b;
      EXPECT_NEAR(stats(s.at(b + "attn.wv.weight")).std, 0.02, 0.02 * 0.05) << b;
      EXPECT_NEAR(stats(s.at(b + in + ".weight")).std, 0.02, 0.02 * 0.05) << b;
    }
    EXPECT_NEAR(stats(s.at("wte.weight")).std, 0.02, 0.02 * 0.05);
    for (auto& [name, p] : s) {
      const bool is_norm = name.find("norm") != std::string::npos;
      if (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0) {
        EXPECT_EQ(stats(p).std + std::abs(stats(p).mean), 0.0) << name;
      } else if (is_norm) {
        EXPECT_EQ(stats(p).mean, 1.0) << name;
        EXPECT_EQ(stats(p).std, 0.0) << name;
      }
    }
  }
}

// SwiGLU hidden = int(2 * 4d / 3) rounded up to mlp_multiple_of; GELU 4d; mlp_hidden overrides.
TEST(NnLayers, MlpHiddenWidths) {
  struct Case {
    MlpType t;
    int64_t d, multiple, hidden_override, want;
  };
  const Case cases[] = {
      {MlpType::SwiGlu, 64, 16, 0, 176},   // 512 / 3 = 170.67 -> 170 -> 176
      {MlpType::SwiGlu, 48, 32, 0, 128},   // 384 / 3 = 128, already a multiple
      {MlpType::SwiGlu, 100, 64, 0, 320},  // 800 / 3 = 266.67 -> 266 -> 320
      {MlpType::SwiGlu, 64, 16, 40, 40},  {MlpType::Gelu, 64, 16, 0, 256},
      {MlpType::Gelu, 12, 16, 0, 48},
  };
  for (const Case& k : cases) {
    ModelConfig c;
    c.n_embd = k.d;
    c.n_head = 4;
    c.n_kv_head = 4;
    c.mlp = k.t;
    c.mlp_multiple_of = k.multiple;
    c.mlp_hidden = k.hidden_override;
    EXPECT_EQ(c.hidden_size(), k.want) << k.d;
    Generator gen(1);
    Mlp mlp(c, gen);
    const StateDict s = mlp.state_dict();
    const std::string up = k.t == MlpType::Gelu ? "fc.weight" : "w1.weight";
    const std::string down = k.t == MlpType::Gelu ? "proj.weight" : "w2.weight";
    EXPECT_EQ(s.at(up).shape(), (Shape{k.want, k.d}));
    EXPECT_EQ(s.at(down).shape(), (Shape{k.d, k.want}));
    if (k.t == MlpType::SwiGlu) {
      EXPECT_EQ(s.at("w3.weight").shape(), (Shape{k.want, k.d}));
    }
  }
}

// ---------------------------------------------------------------- RoPE

TEST(NnLayers, RopePositionZeroIsIdentity) {
  Rope rope(6, 10, 10000);
  Generator gen(1);
  const Tensor x = Tensor::randn({2, 3, 1, 6}, gen);
  EXPECT_LT(test::max_abs_diff(rope.apply(x, 0), x), 1e-7);
  EXPECT_GT(test::max_abs_diff(rope.apply(x, 1), x), 1e-3);
}

// Hand-computed: HS 4, theta = (1, base^(-1/2)); position m rotates the pairs (0, 2) and (1, 3).
TEST(NnLayers, RopeValues) {
  Rope rope(4, 8, 100);
  const Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {1, 1, 1, 4});
  const Tensor y = rope.apply(x, 2);
  const double a0 = 2.0, a1 = 2.0 * 0.1;
  const std::vector<double> want{
      1 * std::cos(a0) - 3 * std::sin(a0), 2 * std::cos(a1) - 4 * std::sin(a1),
      3 * std::cos(a0) + 1 * std::sin(a0), 4 * std::cos(a1) + 2 * std::sin(a1)};
  EXPECT_LT(test::max_abs_diff(y, Tensor::from_vector(want, {1, 1, 1, 4})), 1e-12);
}

// <R_m q, R_n k> depends only on m - n.
TEST(NnLayers, RopeDotProductDependsOnlyOnOffset) {
  Rope rope(8, 32, 10000);
  Generator gen(2);
  const Tensor q = Tensor::randn({1, 1, 1, 8}, gen, DType::F64);
  const Tensor k = Tensor::randn({1, 1, 1, 8}, gen, DType::F64);
  auto dot = [&](int64_t m, int64_t n) {
    return sum(mul(rope.apply(q, m), rope.apply(k, n))).item();
  };
  for (int64_t off : {0, 1, 3, 7}) {
    const double ref = dot(off, 0);
    for (int64_t n : {1, 5, 20}) EXPECT_NEAR(dot(n + off, n), ref, 1e-12) << off << " " << n;
  }
  EXPECT_GT(std::abs(dot(3, 0) - dot(1, 0)), 1e-4);
  // float32 follows the float64 table.
  EXPECT_LT(test::max_abs_diff(rope.apply(q.to(DType::F32), 9), rope.apply(q, 9)), 1e-6);
}

TEST(NnLayers, RopeErrors) {
  Rope rope(4, 8, 10000);
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        rope.apply(Tensor::zeros({1, 1, 2, 6}), 0);
      },
      {"[rope]", "head size 6", "4", "(1, 1, 2, 6)"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        rope.apply(Tensor::zeros({1, 1, 3, 4}), 6);
      },
      {"[rope]", "[6, 9)", "8"}));
}

// ---------------------------------------------------------------- errors

TEST(NnLayers, LinearRejectsWrongWidth) {
  Generator gen(1);
  Linear lin(3, 4, true, gen);
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        lin.forward(Tensor::zeros({2, 5}));
      },
      {"[linear]", "5", "3", "(2, 5)", "(4, 3)"}));
}
