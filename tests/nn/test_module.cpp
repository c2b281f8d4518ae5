// Tests of Module: hierarchical parameter names of a TransformerLM, exact parameter counts,
// train()/eval() propagation (and the Dropout layer), state dict round trips and their errors, and
// Module::to(F64).
#include <algorithm>
#include <set>

#include "nn/transformer.h"
#include "tests/test_util.h"

using namespace lmlab;
using namespace lmlab::nn;

namespace {

ModelConfig small_config() {
  ModelConfig c;
  c.vocab_size = 11;
  c.block_size = 6;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_kv_head = 2;
  c.n_embd = 16;
  return c;
}

std::vector<std::string> names_of(const Module& m) {
  std::vector<std::string> out;
  for (auto& [name, t] : m.named_parameters()) out.push_back(name);
  return out;
}

bool has(const std::vector<std::string>& names, const std::string& n) {
  return std::find(names.begin(), names.end(), n) != names.end();
}

Tensor ids_of(const std::vector<int32_t>& v, int64_t B, int64_t T) {
  return Tensor::from_vector(v, {B, T});
}

// A module that registers one tensor under two names (as tied weights do).
class Tied : public Module {
 public:
  Tied() {
    w = register_parameter("a", Tensor::ones({3, 2}));
    register_parameter("b", w);
  }
  Tensor w;
};

}  // namespace

TEST(NnModule, HierarchicalNamesPreNormGeluTied) {
  Generator gen(1);
  TransformerLM m(small_config(), gen);
  const std::vector<std::string> n = names_of(m);
  EXPECT_EQ(n.front(), "wte.weight");
  for (const char* want :
       {"wpe.weight", "blocks.0.norm1.weight", "blocks.0.norm1.bias", "blocks.1.attn.wq.weight",
        "blocks.1.attn.wk.bias", "blocks.1.attn.wv.weight", "blocks.0.attn.wo.weight",
        "blocks.0.norm2.weight", "blocks.0.mlp.fc.weight", "blocks.1.mlp.proj.bias",
        "norm_f.weight", "norm_f.bias"})
    EXPECT_TRUE(has(n, want)) << want;
  EXPECT_FALSE(has(n, "lm_head.weight"));
  EXPECT_FALSE(has(n, "blocks.0.mlp.w1.weight"));
  EXPECT_FALSE(has(n, "blocks.2.attn.wq.weight"));
  // Names are unique and every tensor appears once.
  EXPECT_EQ(std::set<std::string>(n.begin(), n.end()).size(), n.size());
  std::set<const TensorImpl*> impls;
  for (const Tensor& t : m.parameters()) impls.insert(t.impl_ptr());
  EXPECT_EQ(impls.size(), n.size());
}

TEST(NnModule, HierarchicalNamesPostSwigluRopeRmsUntied) {
  ModelConfig c = small_config();
  c.norm_placement = NormPlacement::Post;
  c.norm = NormType::RMSNorm;
  c.mlp = MlpType::SwiGlu;
  c.position = PositionType::Rope;
  c.tie_embeddings = false;
  c.bias = false;
  Generator gen(1);
  TransformerLM m(c, gen);
  const std::vector<std::string> n = names_of(m);
  for (const char* want : {"wte.weight", "blocks.0.mlp.w1.weight", "blocks.0.mlp.w2.weight",
                           "blocks.1.mlp.w3.weight", "blocks.1.norm2.weight", "lm_head.weight"})
    EXPECT_TRUE(has(n, want)) << want;
  for (const char* absent : {"wpe.weight", "norm_f.weight", "blocks.0.norm1.bias",
                             "blocks.0.attn.wq.bias", "blocks.0.mlp.fc.weight", "lm_head.bias"})
    EXPECT_FALSE(has(n, absent)) << absent;
  EXPECT_EQ(n.back(), "lm_head.weight");
}

TEST(NnModule, TiedTensorListedOnce) {
  Tied t;
  const NamedTensors p = t.named_parameters();
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].first, "a");
  EXPECT_EQ(t.num_parameters(), 6);
  EXPECT_EQ(t.state_dict().size(), 1u);
}

// Parameter counts by hand formula, for MHA/GQA, both MLPs, learned/rope, tied/untied.
TEST(NnModule, NumParametersMatchesHandFormula) {
  for (MlpType mlp : {MlpType::Gelu, MlpType::SwiGlu})
    for (bool tied : {true, false})
      for (PositionType pos : {PositionType::Learned, PositionType::Rope})
        for (NormPlacement pl : {NormPlacement::Pre, NormPlacement::Post}) {
          ModelConfig c = small_config();
          c.mlp = mlp;
          c.tie_embeddings = tied;
          c.position = pos;
          c.norm_placement = pl;
          const int64_t V = c.vocab_size, d = c.n_embd, L = c.n_layer, Tb = c.block_size;
          const int64_t kv = c.n_kv_head * c.head_size();
          const int64_t h = mlp == MlpType::Gelu ? 4 * d : 48;  // int(2*64/3) = 42 -> 48
          const int64_t norm = 2 * d;                           // LayerNorm weight + bias
          const int64_t attn = (d * d + d) + 2 * (d * kv + kv) + (d * d + d);
          const int64_t ffn =
              mlp == MlpType::Gelu ? (d * h + h) + (h * d + d) : 2 * (d * h + h) + (h * d + d);
          int64_t want = V * d + L * (2 * norm + attn + ffn);
          if (pos == PositionType::Learned) want += Tb * d;
          if (pl == NormPlacement::Pre) want += norm;
          if (!tied) want += V * d;
          Generator gen(3);
          TransformerLM m(c, gen);
          EXPECT_EQ(m.num_parameters(), want) << to_string(mlp) << " tied " << tied << " "
                                              << to_string(pos) << " " << to_string(pl);
          int64_t summed = 0;
          for (const Tensor& t : m.parameters()) summed += t.numel();
          EXPECT_EQ(summed, want);
        }
}

TEST(NnModule, ParametersAreLeavesThatRequireGrad) {
  Generator gen(1);
  TransformerLM m(small_config(), gen);
  for (auto& [name, t] : m.named_parameters()) {
    EXPECT_TRUE(t.requires_grad()) << name;
    EXPECT_TRUE(t.is_leaf()) << name;
    EXPECT_EQ(t.dtype(), DType::F32) << name;
  }
}

// Dropout is active only in train mode; eval() reaches every block (the eval model equals the
// same-seed model without dropout) and train() turns it back on.
TEST(NnModule, TrainEvalPropagates) {
  ModelConfig c = small_config();
  c.dropout = 0.5;
  ModelConfig c0 = c;
  c0.dropout = 0;
  Generator g1(7), g2(7);
  TransformerLM m(c, g1), ref(c0, g2);
  const Tensor ids = ids_of({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 2, 5);
  NoGradGuard guard;
  EXPECT_TRUE(m.is_training());
  m.eval();
  EXPECT_FALSE(m.is_training());
  EXPECT_EQ(test::max_abs_diff(m.forward(ids), ref.forward(ids)), 0.0);
  m.train();
  EXPECT_TRUE(m.is_training());
  const Tensor a = m.forward(ids), b = m.forward(ids);
  EXPECT_GT(test::max_abs_diff(a, ref.forward(ids)), 1e-3);
  EXPECT_GT(test::max_abs_diff(a, b), 1e-3);  // fresh masks each call
}

TEST(NnModule, DropoutLayerEvalIsIdentity) {
  Generator gen(1), xgen(2);
  Dropout drop(0.5, gen);
  const Tensor x = Tensor::randn({64, 32}, xgen);
  drop.eval();
  EXPECT_EQ(test::max_abs_diff(drop.forward(x), x), 0.0);
  drop.train();
  const std::vector<float> y = drop.forward(x).to_vector<float>(), xv = x.to_vector<float>();
  int zeros = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    if (y[i] == 0) {
      ++zeros;
    } else {
      EXPECT_FLOAT_EQ(y[i], 2 * xv[i]);
    }
  }
  EXPECT_NEAR(double(zeros) / double(y.size()), 0.5, 0.05);
  Dropout none(0, gen);
  EXPECT_EQ(test::max_abs_diff(none.forward(x), x), 0.0);
}

TEST(NnModule, StateDictRoundTripCopiesValues) {
  Generator g1(1), g2(2);
  TransformerLM a(small_config(), g1), b(small_config(), g2);
  const Tensor ids = ids_of({0, 3, 5, 7, 9, 10}, 1, 6);
  NoGradGuard guard;
  ASSERT_GT(test::max_abs_diff(a.forward(ids), b.forward(ids)), 1e-4);
  const StateDict sa = a.state_dict();
  EXPECT_EQ(sa.size(), a.named_parameters().size());
  // state_dict hands out the live tensors.
  EXPECT_EQ(sa.at("wte.weight").impl_ptr(), a.named_parameters()[0].second.impl_ptr());
  b.load_state_dict(sa);
  const Tensor la = a.forward(ids);
  EXPECT_EQ(test::max_abs_diff(la, b.forward(ids)), 0.0);
  // Copied, not aliased: changing a's weights leaves b alone.
  for (auto& [name, t] : b.state_dict()) EXPECT_FALSE(t.same_storage(sa.at(name))) << name;
  Tensor w = sa.at("wte.weight");
  w.mul_(5.0);
  EXPECT_GT(test::max_abs_diff(a.forward(ids), la), 1e-4);
  EXPECT_EQ(test::max_abs_diff(b.forward(ids), la), 0.0);
}

TEST(NnModule, LoadStateDictConvertsDtype) {
  Generator g1(1), g2(2);
  TransformerLM a(small_config(), g1), b(small_config(), g2);
  StateDict s;
  for (auto& [name, t] : a.state_dict()) s[name] = t.to(DType::F64);
  b.load_state_dict(s);
  for (auto& [name, t] : b.state_dict()) {
    EXPECT_EQ(t.dtype(), DType::F32);
    EXPECT_EQ(test::max_abs_diff(t, a.state_dict().at(name)), 0.0) << name;
  }
}

TEST(NnModule, LoadStateDictErrorsNameKeyAndShapes) {
  Generator g(1);
  TransformerLM m(small_config(), g);
  StateDict missing = m.state_dict();
  missing.erase("blocks.1.mlp.fc.bias");
  EXPECT_TRUE(test::ThrowsWith([&] { m.load_state_dict(missing); },
                               {"[load_state_dict]", "missing", "blocks.1.mlp.fc.bias", "(64)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { m.load_state_dict(missing, /*strict=*/false); },
                               {"blocks.1.mlp.fc.bias"}));

  StateDict extra = m.state_dict();
  extra["lm_head.weight"] = Tensor::zeros({11, 16});
  EXPECT_TRUE(test::ThrowsWith([&] { m.load_state_dict(extra); },
                               {"[load_state_dict]", "unexpected", "lm_head.weight", "(11, 16)"}));
  EXPECT_NO_THROW(m.load_state_dict(extra, /*strict=*/false));

  StateDict wrong = m.state_dict();
  wrong["blocks.0.attn.wk.weight"] = Tensor::zeros({16, 16});
  EXPECT_TRUE(
      test::ThrowsWith([&] { m.load_state_dict(wrong); },
                       {"[load_state_dict]", "blocks.0.attn.wk.weight", "(16, 16)", "(8, 16)"}));
}

// A load that fails (here on its last check, the unexpected key) copies nothing.
TEST(NnModule, FailedLoadLeavesModelUntouched) {
  Generator g1(1), g2(2);
  TransformerLM a(small_config(), g1), b(small_config(), g2);
  const Tensor ids = ids_of({0, 3, 5, 7}, 1, 4);
  NoGradGuard guard;
  const Tensor before = b.forward(ids);
  StateDict s = a.state_dict();
  s["extra.weight"] = Tensor::zeros({2});
  EXPECT_TRUE(test::ThrowsWith([&] { b.load_state_dict(s); }, {"extra.weight"}));
  EXPECT_EQ(test::max_abs_diff(b.forward(ids), before), 0.0);
  s.erase("extra.weight");
  s["wte.weight"] = Tensor::zeros({3, 16});
  EXPECT_TRUE(test::ThrowsWith([&] { b.load_state_dict(s, /*strict=*/false); }, {"wte.weight"}));
  EXPECT_EQ(test::max_abs_diff(b.forward(ids), before), 0.0);
}

// Module::to(F64) converts every parameter in place: the layers' own handles see float64, the
// forward runs in float64 and matches float32, and gradients are dropped.
TEST(NnModule, ToFloat64) {
  ModelConfig c = small_config();
  c.position = PositionType::Rope;
  c.tie_embeddings = false;
  Generator g1(4), g2(4);
  TransformerLM m(c, g1), ref(c, g2);
  const Tensor ids = ids_of({1, 2, 3, 4, 5, 6, 7, 8}, 2, 4);
  tape::backward(m.loss(ids, ids));
  EXPECT_TRUE(m.parameters()[0].grad().defined());
  m.to(DType::F64);
  for (auto& [name, t] : m.named_parameters()) {
    EXPECT_EQ(t.dtype(), DType::F64) << name;
    EXPECT_TRUE(t.requires_grad()) << name;
    EXPECT_FALSE(t.grad().defined()) << name;
  }
  Tensor l64 = m.forward(ids);
  EXPECT_EQ(l64.dtype(), DType::F64);
  NoGradGuard guard;
  EXPECT_LT(test::max_abs_diff(l64, ref.forward(ids)), 1e-5);
  m.to(DType::F32);
  EXPECT_EQ(m.forward(ids).dtype(), DType::F32);
}

TEST(NnModule, ZeroGradDropsEveryGradient) {
  Generator g(1);
  TransformerLM m(small_config(), g);
  const Tensor ids = ids_of({1, 2, 3, 4}, 1, 4);
  tape::backward(m.loss(ids, ids));
  for (auto& [name, t] : m.named_parameters()) EXPECT_TRUE(t.grad().defined()) << name;
  m.zero_grad();
  for (auto& [name, t] : m.named_parameters()) EXPECT_FALSE(t.grad().defined()) << name;
}
