// The model option table (nn/options.h): its rows agree with ModelConfig, values round-trip through
// their config text, config text with missing or unknown keys, and registration's refusals.
#include <set>

#include "nn/options.h"
#include "tests/test_util.h"

using namespace lmlab;
using namespace lmlab::nn;

namespace {

TEST(ModelOptions, EveryBuiltInMemberHasOneRowInFileOrder) {
  std::vector<std::string> names;
  for (const ModelOption& o : model_options()) names.push_back(o.name);
  const std::vector<std::string> first = {"vocab_size", "block_size", "n_layer", "n_head",
                                          "n_kv_head",  "n_embd",     "norm",    "norm_placement"};
  ASSERT_GE(names.size(), first.size());
  EXPECT_EQ(std::vector<std::string>(names.begin(), names.begin() + 8), first);
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), names.size())
      << "two rows share a name";
  for (const ModelOption& o : model_options()) {
    EXPECT_FALSE(o.doc.empty()) << o.name << " has no doc";
    EXPECT_TRUE(o.get && o.set) << o.name;
  }
}

TEST(ModelOptions, DefaultsAreModelConfigsOrAutoZero) {
  const ModelConfig code;
  const ModelConfig file = model_defaults();
  for (const ModelOption& o : model_options()) {
    EXPECT_EQ(o.get(file), o.default_value) << o.name;
    if (!o.range.zero_is_auto) {
      EXPECT_EQ(o.get(code), o.default_value) << o.name;
    }
  }
  EXPECT_EQ(file.vocab_size, 0);
  EXPECT_EQ(file.n_kv_head, 0);
  EXPECT_EQ(file.n_embd, code.n_embd);
}

TEST(ModelOptions, EnumNamesAreTheChoices) {
  EXPECT_EQ(find_model_option("norm")->choices, (std::vector<std::string>{"layernorm", "rmsnorm"}));
  EXPECT_EQ(to_string(NormType::RMSNorm), "rmsnorm");
  EXPECT_EQ(to_string(NormPlacement::DeepNorm), "deepnorm");
  EXPECT_EQ(to_string(MlpType::SwiGlu), "swiglu");
  EXPECT_EQ(to_string(PositionType::Rope), "rope");
}

TEST(ModelOptions, ValuesRoundTripThroughText) {
  ModelConfig c;
  c.n_embd = 96;
  c.norm = NormType::RMSNorm;
  c.dropout = 0.1;
  c.bias = false;
  c.rope_base = 500000;
  std::map<std::string, std::string> text;
  for (const ModelOption& o : model_options()) text[o.name] = option_text(o.get(c));
  EXPECT_EQ(text["n_embd"], "96");
  EXPECT_EQ(text["norm"], "rmsnorm");
  EXPECT_EQ(text["dropout"], "0.1");
  EXPECT_EQ(text["bias"], "false");
  const ModelConfig back = model_config_from_text(text, "test");
  for (const ModelOption& o : model_options()) EXPECT_EQ(o.get(back), o.get(c)) << o.name;
}

TEST(ModelOptions, ParseRefusesTextOfTheWrongType) {
  OptionValue v;
  EXPECT_FALSE(parse_option(*find_model_option("n_embd"), "1e3", &v));
  EXPECT_FALSE(parse_option(*find_model_option("n_embd"), "", &v));
  EXPECT_FALSE(parse_option(*find_model_option("dropout"), "nan", &v));
  EXPECT_FALSE(parse_option(*find_model_option("bias"), "yes", &v));
  EXPECT_FALSE(parse_option(*find_model_option("norm"), "batchnorm", &v));
  EXPECT_TRUE(parse_option(*find_model_option("norm_eps"), "+1e-6", &v));
  EXPECT_EQ(v, OptionValue(1e-6));
  EXPECT_EQ(option_expects(*find_model_option("norm_placement")), "one of pre, post, deepnorm");
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        model_config_from_text({{"n_layer", "two"}}, "f.safetensors");
      },
      {"f.safetensors", "n_layer must be an integer, got 'two'"}));
}

TEST(ModelOptions, MissingKeysKeepTheBaseUnknownOnesAreReported) {
  std::vector<std::string> unknown;
  const ModelConfig c = model_config_from_text({{"n_layer", "3"}, {"flux_capacitor", "on"}}, "x",
                                               ModelConfig{}, &unknown);
  EXPECT_EQ(c.n_layer, 3);
  EXPECT_EQ(c.n_embd, ModelConfig{}.n_embd);
  EXPECT_EQ(unknown, std::vector<std::string>{"flux_capacitor"});
  EXPECT_TRUE(test::ThrowsWith(
      [] {
        model_config_from_text({{"flux_capacitor", "on"}}, "old.safetensors");
      },
      {"old.safetensors", "'flux_capacitor' is not a model option"}));
}

TEST(ModelOptions, RangesAreWrittenAsTheDocsWriteThem) {
  EXPECT_EQ(range_text(*find_model_option("n_embd")), "> 0");
  EXPECT_EQ(range_text(*find_model_option("vocab_size")), ">= 0");
  EXPECT_EQ(range_text(*find_model_option("n_head")), "> 0, divides `n_embd`");
  EXPECT_EQ(range_text(*find_model_option("mlp_hidden")), ">= 0");
  EXPECT_EQ(range_text(*find_model_option("dropout")), "[0, 1)");
  EXPECT_EQ(range_text(*find_model_option("mlp")), "gelu, swiglu");
  EXPECT_EQ(range_text(*find_model_option("bias")), "");
}

TEST(ModelOptions, RegistrationRefusesDuplicatesBadDefaultsAndPlugsOnNonBools) {
  ModelOption dup;
  dup.name = "n_embd";
  dup.default_value = false;
  EXPECT_TRUE(test::ThrowsWith([&] { register_model_option(dup); },
                               {"'n_embd'", "already has an option of that name"}));
  ModelOption typed;
  typed.name = "test_width";
  typed.type = OptionType::Int;
  typed.default_value = 1.5;
  EXPECT_TRUE(test::ThrowsWith([&] { register_model_option(typed); },
                               {"'test_width'", "not of its type, int"}));
  ModelOption plugged;
  plugged.name = "test_plugged";
  plugged.type = OptionType::Real;
  plugged.default_value = 0.0;
  plugged.plugs = {{Site::Final, "x", nullptr}};
  EXPECT_TRUE(test::ThrowsWith([&] { register_model_option(plugged); }, {"only a bool option"}));
  EXPECT_EQ(find_model_option("test_width"), nullptr);
  EXPECT_EQ(find_model_option("test_plugged"), nullptr);
}

TEST(ModelOptions, ReadingAnOptionAsTheWrongTypeNamesIt) {
  EXPECT_TRUE(test::ThrowsWith([] { (void)ModelConfig{}.option<int64_t>("qk_norm"); },
                               {"'qk_norm'", "is a bool"}));
  EXPECT_TRUE(test::ThrowsWith([] { (void)ModelConfig{}.option<bool>("no_such"); },
                               {"'no_such' is not a model option"}));
}

}  // namespace
