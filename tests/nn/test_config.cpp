// ModelConfig's rules (nn::check_model, the one place they are written): the exact messages of
// ModelConfig::validate(), the key prefix and the auto zeros a config file uses, the order the
// problems come in, and format_real, the one number format of the messages.
#include <cmath>
#include <limits>

#include "nn/config.h"
#include "tests/test_util.h"

using namespace lmlab;
using namespace lmlab::nn;

namespace {

// The message validate() throws for a default config edited by `edit` ("" when it passes).
template <class Edit>
std::string message_of(Edit edit) {
  ModelConfig c;
  edit(c);
  try {
    c.validate();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::vector<ConfigProblem> problems_of(const ModelConfig& c, const ModelCheck& how) {
  ConfigChecks checks;
  check_model(c, how, checks);
  return checks.problems();
}

TEST(NnConfig, ValidateNamesTheKeyAndTheValue) {
  EXPECT_EQ(message_of([](ModelConfig&) {}), "");
  EXPECT_EQ(message_of([](ModelConfig& c) { c.vocab_size = 0; }),
            "[model] vocab_size must be > 0, got 0");
  EXPECT_EQ(message_of([](ModelConfig& c) { c.mlp_hidden = -1; }),
            "[model] mlp_hidden must be >= 0, got -1");
  EXPECT_EQ(message_of([](ModelConfig& c) { c.n_embd = int64_t{1} << 40; }),
            "[model] n_embd must be <= 2147483647, got 1099511627776");
  EXPECT_EQ(message_of([](ModelConfig& c) { c.rope_base = -1.5; }),
            "[model] rope_base must be > 0, got -1.5");
  EXPECT_EQ(
      message_of([](ModelConfig& c) { c.norm_eps = std::numeric_limits<double>::infinity(); }),
      "[model] norm_eps must be a finite number, got inf");
  EXPECT_EQ(message_of([](ModelConfig& c) { c.dropout = 1; }),
            "[model] dropout must be in [0, 1), got 1");
  EXPECT_EQ(message_of([](ModelConfig& c) { c.init_std = -1e-300; }),
            "[model] init_std must be > 0, got -1e-300");
  EXPECT_EQ(message_of([](ModelConfig& c) {
              c.n_embd = 100;
              c.n_head = c.n_kv_head = 3;
            }),
            "[model] n_embd 100 is not divisible by n_head 3");
  EXPECT_EQ(message_of([](ModelConfig& c) { c.n_kv_head = 3; }),
            "[model] n_head 4 is not divisible by n_kv_head 3");
  EXPECT_EQ(message_of([](ModelConfig& c) {
              c.n_embd = 12;
              c.position = PositionType::Rope;
            }),
            "[model] position rope needs an even head size, got n_embd / n_head = 3");
}

TEST(NnConfig, AConfigFilePrefixesTheKeysAndMayLeaveZerosForLater) {
  ModelConfig c;
  c.vocab_size = 0;
  c.n_kv_head = 0;
  EXPECT_TRUE(problems_of(c, {.prefix = "model.", .zero_is_auto = true}).empty());
  const std::vector<ConfigProblem> strict = problems_of(c, {.prefix = "model."});
  ASSERT_EQ(strict.size(), 2u);
  EXPECT_EQ(strict[0].keys, std::vector<std::string>{"model.vocab_size"});
  EXPECT_EQ(strict[0].what, "model.vocab_size must be > 0, got 0");
  EXPECT_EQ(strict[1].what, "model.n_kv_head must be > 0, got 0");
  // auto zeros still refuse negative values, and n_kv_head 0 divides like n_head
  c.n_kv_head = -1;
  EXPECT_EQ(problems_of(c, {.prefix = "model.", .zero_is_auto = true}).at(0).what,
            "model.n_kv_head must be >= 0, got -1");
  c.n_kv_head = 3;
  const auto between = problems_of(c, {.prefix = "model.", .zero_is_auto = true});
  ASSERT_EQ(between.size(), 1u);
  EXPECT_EQ(between[0].keys, (std::vector<std::string>{"model.n_head", "model.n_kv_head"}));
  EXPECT_EQ(between[0].what, "model.n_head 4 is not divisible by model.n_kv_head 3");
}

TEST(NnConfig, RulesBetweenKeysWaitForValidSizes) {
  ModelConfig c;
  c.n_head = 0;  // n_embd % n_head would divide by zero
  c.position = PositionType::Rope;
  const auto problems = problems_of(c, {});
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].what, "n_head must be > 0, got 0");
  // every single-key problem is listed, in member order
  c = ModelConfig{};
  c.block_size = 0;
  c.dropout = -0.5;
  const auto two = problems_of(c, {});
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].what, "block_size must be > 0, got 0");
  EXPECT_EQ(two[1].what, "dropout must be in [0, 1), got -0.5");
}

TEST(NnConfig, ChecksWordEveryRuleOneWay) {
  ConfigChecks k;
  k.one_of("train.device", "tpu", {"cpu", "cuda"});
  k.one_of("train.device", "cuda", {"cpu", "cuda"});
  k.in_range("data.val_fraction", 0, 0, 1, true);
  k.at_least("train.grad_accum", int64_t{0}, int64_t{1});
  k.require(false, {"a.x", "a.y"}, "a.x must be <= a.y");
  ASSERT_EQ(k.problems().size(), 4u);
  EXPECT_EQ(k.problems()[0].what, "train.device must be one of cpu, cuda, got 'tpu'");
  EXPECT_EQ(k.problems()[1].what, "data.val_fraction must be in (0, 1), got 0");
  EXPECT_EQ(k.problems()[2].what, "train.grad_accum must be >= 1, got 0");
  EXPECT_EQ(k.problems()[3].keys, (std::vector<std::string>{"a.x", "a.y"}));
}

TEST(NnConfig, FormatRealIsTheShortestExactDecimal) {
  EXPECT_EQ(format_real(0), "0");
  EXPECT_EQ(format_real(0.001), "0.001");
  EXPECT_EQ(format_real(500000), "500000");
  EXPECT_EQ(format_real(-0.25), "-0.25");
  EXPECT_EQ(format_real(1e-8), "1e-8");
  EXPECT_EQ(format_real(1.5e-300), "1.5e-300");
  EXPECT_EQ(format_real(1e20), "1e20");
  EXPECT_EQ(format_real(0.1 + 0.2), "0.30000000000000004");
  for (double v : {0.1, 1e-5, 3e-4, 0.3333333333333333, 1.7976931348623157e308})
    EXPECT_EQ(std::stod(format_real(v)), v) << format_real(v);
}

}  // namespace
