// Tests of QK-norm (model.qk_norm, nn/qk_norm.cpp): its row in the option table, where it plugs
// in, float64 gradchecks of the layer and of a whole model with it, its effect (each head's query
// and key rows at unit RMS before RoPE), and the KV cache agreeing with the full forward.
#include <cmath>

#include "nn/options.h"
#include "nn/transformer.h"
#include "tests/test_util.h"

using namespace lmlab;
using namespace lmlab::nn;

namespace {

ModelConfig tiny(bool qk_norm) {
  ModelConfig c;
  c.vocab_size = 7;
  c.block_size = 4;
  c.n_layer = 1;
  c.n_head = 2;
  c.n_kv_head = 1;
  c.n_embd = 8;
  c.mlp_hidden = 8;
  c.init_std = 0.3;
  c.position = PositionType::Rope;
  c.extra["qk_norm"] = qk_norm;
  return c;
}

// Every norm weight N(1, 0.3), so a check is not at the identity init.
void randomize_norm_weights(const Module& m) {
  NoGradGuard guard;
  Generator gen(11);
  for (auto& [name, t] : m.named_parameters())
    if (name.find("norm") != std::string::npos) {
      Tensor dst = t;
      dst.copy_(Tensor::randn(t.shape(), gen, t.dtype(), 1.0, 0.3));
    }
}

TEST(QkNorm, IsARowOfTheOptionTable) {
  const ModelOption* o = find_model_option("qk_norm");
  ASSERT_NE(o, nullptr);
  EXPECT_EQ(o->type, OptionType::Bool);
  EXPECT_EQ(o->default_value, OptionValue(false));
  ASSERT_EQ(o->plugs.size(), 2u);
  EXPECT_EQ(o->plugs[0].site, Site::Query);
  EXPECT_EQ(o->plugs[1].site, Site::Key);
  EXPECT_FALSE(ModelConfig{}.option<bool>("qk_norm"));
  EXPECT_TRUE(tiny(true).option<bool>("qk_norm"));
}

TEST(QkNorm, AddsOneHeadSizeWeightPerProjectionAndLayer) {
  Generator g1(1), g2(1);
  ModelConfig c = tiny(true);
  c.n_layer = 2;
  TransformerLM with(c, g1);
  c.extra["qk_norm"] = false;
  TransformerLM without(c, g2);
  const StateDict s = with.state_dict();
  for (const char* name : {"blocks.0.attn.q_norm.weight", "blocks.0.attn.k_norm.weight",
                           "blocks.1.attn.q_norm.weight", "blocks.1.attn.k_norm.weight"}) {
    ASSERT_TRUE(s.count(name)) << name;
    EXPECT_EQ(s.at(name).shape(), Shape({c.head_size()})) << name;
  }
  EXPECT_EQ(with.num_parameters(), without.num_parameters() + 4 * c.head_size());
  // The weights start at 1 and draw nothing: the shared weights are the same as without.
  for (const auto& [name, t] : without.state_dict())
    EXPECT_EQ(t.to_vector<float>(), s.at(name).to_vector<float>()) << name;
}

TEST(QkNorm, LayerGradcheck) {
  Generator gen(2);
  const ModelConfig c = tiny(true);
  auto layers = plugged_layers(Site::Query, c, gen);
  ASSERT_EQ(layers.size(), 1u);
  EXPECT_EQ(layers[0].first, "q_norm");
  SiteLayer& norm = *layers[0].second;
  norm.to(DType::F64);
  randomize_norm_weights(norm);
  std::vector<Tensor> inputs = norm.parameters();
  inputs.push_back(test::randn64({2, 2, 3, c.head_size()}, 3));  // (B, H, T, HS)
  auto f = [&](const std::vector<Tensor>& in) { return norm.forward(in.back()); };
  EXPECT_TRUE(test::Gradcheck(f, inputs));
}

TEST(QkNorm, RowsComeOutAtUnitRms) {
  Generator gen(2);
  const ModelConfig c = tiny(true);
  auto layers = plugged_layers(Site::Key, c, gen);
  ASSERT_EQ(layers.size(), 1u);
  const Tensor x = test::randn64({1, 1, 5, c.head_size()}, 4).to(DType::F32);
  const std::vector<float> y = layers[0].second->forward(mul(x, 7.0)).to_vector<float>();
  const size_t hs = size_t(c.head_size());
  for (size_t row = 0; row < 5; ++row) {
    double ss = 0;
    for (size_t i = 0; i < hs; ++i) ss += double(y[row * hs + i]) * y[row * hs + i];
    EXPECT_NEAR(ss / double(hs), 1.0, 1e-4) << "row " << row;  // weights 1 at init
  }
}

TEST(QkNorm, GradcheckWholeModelLoss) {
  const Tensor ids = Tensor::from_vector(std::vector<int32_t>{1, 4, 0, 2, 6, 3}, {2, 3});
  const Tensor targets = Tensor::from_vector(std::vector<int32_t>{4, 0, 2, 3, 1, 5}, {2, 3});
  Generator gen(3);
  TransformerLM m(tiny(true), gen);
  m.to(DType::F64);
  randomize_norm_weights(m);
  auto f = [&](const std::vector<Tensor>&) { return m.loss(ids, targets); };
  EXPECT_TRUE(test::Gradcheck(f, m.parameters()));
}

TEST(QkNorm, ChangesTheOutputAndTheCacheAgreesWithTheFullForward) {
  Generator g1(5), g2(5);
  TransformerLM with(tiny(true), g1), without(tiny(false), g2);
  const Tensor ids = Tensor::from_vector(std::vector<int32_t>{1, 4, 0, 2}, {1, 4});
  NoGradGuard guard;
  const std::vector<float> full = with.forward(ids).to_vector<float>();
  EXPECT_NE(full, without.forward(ids).to_vector<float>());
  KVCache cache = with.make_cache(1);
  std::vector<float> stepped;
  for (int64_t t = 0; t < 4; ++t) {
    const std::vector<float> v = with.forward_cached(ids.narrow(1, t, 1), cache).to_vector<float>();
    stepped.insert(stepped.end(), v.begin(), v.end());
  }
  ASSERT_EQ(stepped.size(), full.size());
  for (size_t i = 0; i < full.size(); ++i) EXPECT_NEAR(stepped[i], full[i], 1e-5) << i;
}

}  // namespace
