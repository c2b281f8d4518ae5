// Tests of Block and TransformerLM: float64 gradchecks of every block variant and of a whole tiny
// model, DeepNorm (alpha in the forward, beta in the init; Wang et al. 2022), and bad input.
#include <cmath>

#include "nn/transformer.h"
#include "tests/test_util.h"

using namespace lmlab;
using namespace lmlab::nn;

namespace {

ModelConfig tiny() {
  ModelConfig c;
  c.vocab_size = 5;
  c.block_size = 4;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_kv_head = 2;
  c.n_embd = 8;
  c.mlp_hidden = 8;
  c.init_std = 0.3;
  return c;
}

void randomize(const Tensor& t, uint64_t seed, double mean, double std) {
  NoGradGuard guard;
  Generator gen(seed);
  Tensor dst = t;
  dst.copy_(Tensor::randn(t.shape(), gen, t.dtype(), mean, std));
}

// Norm weights N(1, 0.3) and biases N(0, 0.3), so the checks do not sit at the identity init.
void randomize_norms(const Module& m) {
  uint64_t seed = 100;
  for (auto& [name, t] : m.named_parameters()) {
    if (name.find("norm") != std::string::npos)
      randomize(t, seed++, name.find(".weight") != std::string::npos ? 1.0 : 0.0, 0.3);
    else if (name.find(".bias") != std::string::npos)
      randomize(t, seed++, 0, 0.3);
  }
}

Tensor ids_of(const std::vector<int32_t>& v, int64_t B, int64_t T) {
  return Tensor::from_vector(v, {B, T});
}

// y = x W^T + b with the weights of `prefix` in the state dict.
Tensor lin(const StateDict& s, const std::string& prefix, const Tensor& x) {
  return add(matmul(x, transpose(s.at(prefix + ".weight"), 0, 1)), s.at(prefix + ".bias"));
}

// One post-norm style block written out by hand from primitive ops (LayerNorm, GELU, no RoPE):
// x = LN1(alpha x + attn(x)); x = LN2(alpha x + mlp(x)).
Tensor manual_block(const StateDict& s, const ModelConfig& c, const Tensor& x_in, double alpha) {
  const int64_t B = x_in.size(0), T = x_in.size(1), HS = c.head_size();
  auto heads = [&](const Tensor& t, int64_t h) {
    return transpose(reshape(t, {B, T, h, HS}), 1, 2);
  };
  Tensor q = heads(lin(s, "attn.wq", x_in), c.n_head);
  Tensor k = heads(lin(s, "attn.wk", x_in), c.n_kv_head);
  Tensor v = heads(lin(s, "attn.wv", x_in), c.n_kv_head);
  Tensor a = reshape(transpose(causal_attention_composed(q, k, v), 1, 2), {B, T, c.n_embd});
  Tensor x = layer_norm_composed(add(mul(x_in, alpha), lin(s, "attn.wo", a)), s.at("norm1.weight"),
                                 s.at("norm1.bias"), c.norm_eps);
  Tensor m = lin(s, "mlp.proj", gelu(lin(s, "mlp.fc", x)));
  return layer_norm_composed(add(mul(x, alpha), m), s.at("norm2.weight"), s.at("norm2.bias"),
                             c.norm_eps);
}

}  // namespace

// ---------------------------------------------------------------- gradchecks (float64)

// Every placement x norm, with x and every block weight checked.
TEST(NnTransformer, GradcheckBlockVariants) {
  for (NormPlacement pl : {NormPlacement::Pre, NormPlacement::Post, NormPlacement::DeepNorm})
    for (NormType nt : {NormType::LayerNorm, NormType::RMSNorm}) {
      ModelConfig c = tiny();
      c.norm_placement = pl;
      c.norm = nt;
      Generator gen(1);
      Block block(c, gen);
      block.to(DType::F64);
      randomize_norms(block);
      std::vector<Tensor> in = block.parameters();
      in.push_back(test::randn64({1, 3, 8}, 2));
      auto f = [&](const std::vector<Tensor>& xs) { return block.forward(xs.back(), nullptr); };
      EXPECT_TRUE(test::Gradcheck(f, in)) << to_string(pl) << " " << to_string(nt);
    }
}

// Loss of a whole tiny model with respect to every parameter (two architectures).
TEST(NnTransformer, GradcheckWholeModelLoss) {
  const Tensor ids = ids_of({1, 4, 0, 2, 2, 3}, 2, 3), targets = ids_of({4, 0, 2, 3, 1, 1}, 2, 3);
  for (int variant = 0; variant < 2; ++variant) {
    ModelConfig c = tiny();
    c.block_size = 3;
    if (variant == 1) {  // post-norm RMSNorm, SwiGLU, RoPE, MQA, untied, no biases
      c.n_layer = 1;
      c.norm_placement = NormPlacement::Post;
      c.norm = NormType::RMSNorm;
      c.mlp = MlpType::SwiGlu;
      c.position = PositionType::Rope;
      c.n_kv_head = 1;
      c.tie_embeddings = false;
      c.bias = false;
    }
    Generator gen(3);
    TransformerLM m(c, gen);
    m.to(DType::F64);
    randomize_norms(m);
    auto f = [&](const std::vector<Tensor>&) { return m.loss(ids, targets); };
    EXPECT_TRUE(test::Gradcheck(f, m.parameters())) << "variant " << variant;
  }
}

// ---------------------------------------------------------------- DeepNorm

// One DeepNorm block equals the hand composition with alpha = (2N)^(1/4); a post-norm block equals
// it with alpha = 1 (so the composition itself is right and alpha is what differs).
TEST(NnTransformer, DeepNormForwardAppliesAlpha) {
  ModelConfig c = tiny();
  c.n_layer = 3;
  c.n_kv_head = 1;
  c.mlp_hidden = 0;
  const Tensor x = test::randn64({2, 3, 8}, 5);
  const double alpha = std::pow(2.0 * 3, 0.25);
  for (NormPlacement pl : {NormPlacement::DeepNorm, NormPlacement::Post}) {
    c.norm_placement = pl;
    Generator gen(4);
    Block block(c, gen);
    block.to(DType::F64);
    randomize_norms(block);
    const StateDict s = block.state_dict();
    NoGradGuard guard;
    const Tensor y = block.forward(x, nullptr);
    const double a = pl == NormPlacement::DeepNorm ? alpha : 1.0;
    EXPECT_LT(test::max_abs_diff(y, manual_block(s, c, x, a)), 1e-10) << to_string(pl);
    EXPECT_GT(test::max_abs_diff(y, manual_block(s, c, x, a == 1.0 ? alpha : 1.0)), 1e-3);
  }
}

// DeepNorm draws the same numbers as post-norm (same seed) with wv, wo and every MLP weight scaled
// by beta = (8N)^(-1/4); wq, wk, embeddings and norms are untouched; neither has a final norm.
TEST(NnTransformer, DeepNormInitScalesByBeta) {
  for (MlpType mt : {MlpType::Gelu, MlpType::SwiGlu}) {
    ModelConfig c;
    c.n_layer = 3;
    c.n_embd = 64;
    c.mlp = mt;
    c.norm_placement = NormPlacement::Post;
    Generator g1(9), g2(9);
    TransformerLM post(c, g1);
    c.norm_placement = NormPlacement::DeepNorm;
    TransformerLM deep(c, g2);
    const double beta = std::pow(8.0 * 3, -0.25);
    NoGradGuard guard;
    const StateDict sp = post.state_dict(), sd = deep.state_dict();
    ASSERT_EQ(sp.size(), sd.size());
    EXPECT_EQ(sd.count("norm_f.weight"), 0u);
    int scaled = 0;
    for (auto& [name, p] : sp) {
      const Tensor& d = sd.at(name);
      const bool weight = name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0;
      const bool is_scaled = weight && (name.find("attn.wv") != std::string::npos ||
                                        name.find("attn.wo") != std::string::npos ||
                                        name.find(".mlp.") != std::string::npos);
      const double r = is_scaled ? beta : 1.0;
      const double scale = std::max(1e-30, test::max_abs_diff(p, mul(p, 0.0)));
      EXPECT_LE(test::max_abs_diff(d, mul(p.detach(), r)), 1e-6 * scale) << name;
      if (is_scaled) {
        ++scaled;
        auto std_of = [](const Tensor& t) { return std::sqrt(mean(mul(t, t)).item()); };
        EXPECT_NEAR(std_of(d) / std_of(p), beta, 1e-5) << name;
      }
    }
    EXPECT_EQ(scaled, 3 * (mt == MlpType::Gelu ? 4 : 5));
  }
}

// ---------------------------------------------------------------- dropout streams

// Dropout masks come from the model's own stream: a training forward does not advance the init
// generator, and the model does not keep a reference to it.
TEST(NnTransformer, DropoutDoesNotDrawFromInitGenerator) {
  ModelConfig c = tiny();
  c.dropout = 0.3;
  Generator gen(1);
  TransformerLM m(c, gen);
  const uint64_t offset = gen.offset();
  m.loss(ids_of({1, 2, 3, 4}, 1, 4), ids_of({2, 3, 4, 0}, 1, 4));
  EXPECT_EQ(gen.offset(), offset);
}

// ---------------------------------------------------------------- bad input

TEST(NnTransformer, ConfigValidationNamesParameterAndValue) {
  auto bad = [](auto edit, std::initializer_list<std::string> parts) {
    ModelConfig c;
    edit(c);
    EXPECT_TRUE(test::ThrowsWith([&] { c.validate(); }, parts));
    Generator gen(1);
    EXPECT_TRUE(test::ThrowsWith([&] { TransformerLM m(c, gen); }, parts));
  };
  bad(
      [](ModelConfig& c) {
        c.n_embd = 100;
        c.n_head = 3;
        c.n_kv_head = 3;
      },
      {"[model]", "n_embd 100", "n_head 3"});
  bad(
      [](ModelConfig& c) {
        c.n_head = 4;
        c.n_kv_head = 3;
      },
      {"[model]", "n_head 4", "n_kv_head 3"});
  bad(
      [](ModelConfig& c) {
        c.n_embd = 12;
        c.position = PositionType::Rope;
      },
      {"[model]", "position rope", "head size", "3"});
  bad([](ModelConfig& c) { c.vocab_size = 0; }, {"[model]", "vocab_size", "0"});
  bad([](ModelConfig& c) { c.n_kv_head = 0; }, {"[model]", "n_kv_head", "0"});
  bad([](ModelConfig& c) { c.dropout = 1; }, {"[model]", "dropout", "1"});
  ModelConfig ok;
  ok.n_embd = 12;  // odd head size is fine with learned positions
  EXPECT_NO_THROW(ok.validate());
}

TEST(NnTransformer, ForwardRejectsBadIds) {
  ModelConfig c = tiny();
  Generator gen(1);
  TransformerLM m(c, gen);
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        m.forward(ids_of({1, 2, 3, 4, 0}, 1, 5));
      },
      {"[model]", "sequence length 5", "block_size 4"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        m.forward(ids_of({1, 2, 7, 4}, 2, 2));
      },
      {"[embedding]", "token id 7", "vocabulary of 5"}));
  EXPECT_TRUE(test::ThrowsWith([&] { m.forward(ids_of({1, -1}, 1, 2)); }, {"[embedding]", "-1"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        m.forward(Tensor::zeros({1, 3}));
      },
      {"[model]", "ids", "int32", "float32", "(1, 3)"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        m.forward(Tensor::from_vector(std::vector<int32_t>{1, 2, 3}, {3}));
      },
      {"[model]", "ids", "(3)"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        m.loss(ids_of({1, 2}, 1, 2), ids_of({1, 2, 3}, 1, 3));
      },
      {"[model]", "targets", "(1, 3)", "(1, 2)"}));
}

// At init the logits are small, so the loss is close to log V (tied embeddings lift each input
// token's own logit a little, hence the loose tolerance).
TEST(NnTransformer, LossIsNearLogVocabAtSmallInit) {
  ModelConfig c = tiny();
  c.init_std = 0.02;
  Generator gen(1);
  TransformerLM m(c, gen);
  const double l = m.loss(ids_of({1, 2, 3, 4}, 1, 4), ids_of({2, 3, 4, 0}, 1, 4)).item();
  EXPECT_NEAR(l, std::log(5.0), 0.1);
}
