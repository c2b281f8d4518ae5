// Regression tests for what hardening (tests/fuzz/, tests/train/cli/test_faults.cpp) found in the
// readers of user input: checkpoint metadata that threw a non-lmlab exception or was accepted
// half-parsed, shapes whose strides overflow, model sizes that overflow, and a fuzz seed replay.
#include <limits>

#include "tests/test_util.h"
#include "tests/train/cli_util.h"
#include "train/config/config.h"
#include "train/io/checkpoint.h"

namespace lmlab::train {
namespace {

using test::TempDir;
using test::ThrowsWith;

// A one-tensor safetensors file with the given header entry for tensor "t" and `data` bytes.
std::string one_tensor(const std::string& entry, const std::string& data) {
  std::string header = "{\"t\":" + entry + "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  const uint64_t n = header.size();
  return std::string(reinterpret_cast<const char*>(&n), 8) + header + data;
}

TEST(Hardening, EmptyTensorWithHugeDimsIsRefusedNotOverflowed) {
  // Zero elements, but strides of 2^62 * 4 would overflow int64.
  TempDir dir("hardening");
  const std::string path = dir / "x.safetensors";
  test::write_file(
      path,
      one_tensor(R"({"dtype":"F32","shape":[0,4611686018427387904,4],"data_offsets":[0,0]})", ""));
  EXPECT_TRUE(ThrowsWith([&] { load_safetensors(path); }, {path, "'t'", "is too large"}));
  test::write_file(path,
                   one_tensor(R"({"dtype":"F32","shape":[0,1000000],"data_offsets":[0,0]})", ""));
  EXPECT_EQ(load_safetensors(path).at("t").shape(), (Shape{0, 1000000}));
}

class CheckpointMetadata : public ::testing::Test {
 protected:
  void SetUp() override {
    // A valid weights-only checkpoint of a 1-layer model, built in memory from a tiny run's config.
    TrainConfig cfg = load_config(test::tiny_config(), {"model.n_layer=1", "model.vocab_size=3"});
    Generator gen(1);
    nn::TransformerLM model(cfg.model, gen);
    save_checkpoint(path_, model, nullptr, cfg, R"({"kind":"char","vocab_size":3,"vocab":"abc"})",
                    {});
    good_ = load_safetensors(path_);
  }
  // load_checkpoint of the good file with metadata `key` set to `value`.
  void load_with(const std::string& key, const std::string& value) const {
    SafeTensors st = good_;
    st.metadata[key] = value;
    save_safetensors(path_, st);
    load_checkpoint(path_);
  }

  TempDir dir_{"hardening"};
  std::string path_ = dir_ / "ckpt.safetensors";
  SafeTensors good_;
};

TEST_F(CheckpointMetadata, BadNumbersAreLmlabErrorsNamingTheKey) {
  // best_val_loss went through std::stod: std::invalid_argument escaped as "unexpected error".
  EXPECT_TRUE(ThrowsWith([&] { load_with("best_val_loss", "lowish"); },
                         {path_, "'best_val_loss'", "'lowish'"}));
  EXPECT_TRUE(ThrowsWith([&] { load_with("best_val_loss", "0.5x"); }, {path_, "'best_val_loss'"}));
  EXPECT_NO_THROW(load_with("best_val_loss", "nan"));  // what a diverged eval writes
  // std::stoull read "-1" as 2^64 - 1 and ignored anything after the digits.
  for (const char* v : {"-1,5", "1,2x", "1,", ",2", "7", " 1,2"})
    EXPECT_TRUE(ThrowsWith([&] { load_with("data_rng", v); }, {path_, "'data_rng'", "seed,offset"}))
        << v;
  EXPECT_NO_THROW(load_with("data_rng", "18446744073709551615,0"));
}

TEST_F(CheckpointMetadata, TokenizerIsCheckedAtLoadNamingTheFile) {
  EXPECT_TRUE(
      ThrowsWith([&] { load_with("tokenizer", "{}"); }, {path_, "tokenizer metadata", "corrupt"}));
  EXPECT_TRUE(ThrowsWith([&] { load_with("tokenizer", R"({"kind":"byte","vocab_size":256})"); },
                         {path_, "model.vocab_size 3", "256 symbols"}));
}

TEST(Hardening, ModelSizesPastInt32AreConfigErrors) {
  // hidden_size() computes 8 * n_embd: past 2^31 a config could overflow int64 arithmetic later.
  EXPECT_TRUE(ThrowsWith(
      [] { load_config_text("model:\n  n_embd: 4611686018427387904\n  n_head: 1\n", "x.yaml"); },
      {"x.yaml:2", "model.n_embd must be <= 2147483647"}));
  EXPECT_TRUE(ThrowsWith([] { load_config_text("", "x.yaml", {"model.vocab_size=3000000000"}); },
                         {"--set model.vocab_size=3000000000", "<= 2147483647"}));
  EXPECT_NO_THROW(load_config_text("", "x.yaml", {"model.vocab_size=2147483647"}));
}

}  // namespace
}  // namespace lmlab::train
