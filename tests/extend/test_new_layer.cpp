// A new layer added the way docs/extending.md says, and nothing else: this file is the layer (a
// LayerScale, Touvron et al. 2021: a learned per-channel scale on each residual branch, started
// small), its one row in the model option table with the sites it plugs into, and its test, which
// trains it from a config file like any built-in option. It is linked only into this test binary
// (test_extend), so the shipped table, docs and configs never see it; if the documented path rots
// (the row, the sites, the config parse and writing, checkpoints), this test fails.
#include <cmath>

#include "nn/options.h"
#include "tests/temp_dir.h"
#include "tests/test_util.h"
#include "tests/train/cli_util.h"
#include "train/config/config.h"
#include "train/io/checkpoint.h"
#include "train/run/trainer.h"

namespace lmlab::nn {
namespace {

// ---------------------------------------------------------------- the layer (docs step 1)

// y = gamma * x over the last dim; gamma (C) starts at 0.1.
class LayerScale : public SiteLayer {
 public:
  explicit LayerScale(const ModelConfig& c) {
    gamma_ = register_parameter("gamma", Tensor::full({c.n_embd}, 0.1));
  }
  Tensor forward(const Tensor& x) const override { return mul(x, gamma_); }

 private:
  Tensor gamma_;
};

// ---------------------------------------------------------------- its row (docs step 2)

ModelOption layer_scale_option() {
  ModelOption o;
  o.name = "test_layer_scale";
  o.type = OptionType::Bool;
  o.default_value = false;
  o.doc = "a learned per-channel scale on each residual branch, started at 0.1 (test only)";
  auto make = [](const ModelConfig& c, Generator&) -> std::shared_ptr<SiteLayer> {
    return std::make_shared<LayerScale>(c);
  };
  o.plugs = {{Site::AttentionOut, "ls_attn", make}, {Site::MlpOut, "ls_mlp", make}};
  return o;
}

const RegisterModelOption kLayerScale(layer_scale_option());

// ---------------------------------------------------------------- its test (docs step 3)

using train::TrainConfig;

train::TrainOptions quiet() {
  train::TrainOptions o;
  o.quiet = true;
  return o;
}

class NewLayer : public ::testing::Test {
 protected:
  void SetUp() override { test::write_file(corpus_, test::small_corpus()); }
  // configs/tiny.yaml with the new key set in a config file, as a user would.
  TrainConfig config(bool on, const std::string& run) {
    const std::string file = dir_ / (run + ".yaml");
    test::write_file(file, std::string("model:\n  test_layer_scale: ") + (on ? "true" : "false") +
                               "\n  n_layer: 2\n  n_embd: 32\n  n_head: 4\n  block_size: 16\n"
                               "optim:\n  lr: 0.003\n  warmup_iters: 5\ntrain:\n  max_iters: 30\n  "
                               "eval_interval: 30\n  batch_size: 4\n"
                               "  threads: 1\n  sample_tokens: 0\n");
    return train::load_config(file, {"data.corpus=" + corpus_, "train.run_dir=" + (dir_ / run)});
  }
  test::TempDir dir_{"new_layer"};
  std::string corpus_ = dir_ / "corpus.txt";
};

TEST_F(NewLayer, ItsKeyIsAConfigKeyWithTypeChecksAndIsWrittenBack) {
  EXPECT_TRUE(config(true, "a").model.option<bool>("test_layer_scale"));
  EXPECT_FALSE(config(false, "b").model.option<bool>("test_layer_scale"));
  EXPECT_NE(train::to_yaml(config(true, "c")).find("  test_layer_scale: true"), std::string::npos);
  EXPECT_TRUE(test::ThrowsWith(
      [&] { train::load_config(test::tiny_config(), {"model.test_layer_scale=maybe"}); },
      {"model.test_layer_scale must be true or false, got 'maybe'"}));
}

TEST_F(NewLayer, TrainsFromAConfigAndItsWeightsLearnAndAreCheckpointed) {
  const train::TrainResult with = train::train(config(true, "with"), quiet());
  const train::TrainResult without = train::train(config(false, "without"), quiet());
  ASSERT_EQ(with.steps, 30);
  EXPECT_TRUE(std::isfinite(with.final_val_loss));
  EXPECT_NE(with.final_val_loss, without.final_val_loss);  // the layer is in the model

  const train::Checkpoint ck = train::load_checkpoint(with.run_dir + "/ckpt.safetensors");
  EXPECT_TRUE(ck.config.model.option<bool>("test_layer_scale"));
  for (const char* name : {"blocks.0.ls_attn.gamma", "blocks.1.ls_mlp.gamma"}) {
    ASSERT_TRUE(ck.file.contains(name)) << name;
    const std::vector<float> g = ck.file.at(name).to_vector<float>();
    ASSERT_EQ(g.size(), 32u);
    double moved = 0;
    for (float v : g) moved = std::max(moved, std::abs(double(v) - 0.1));
    EXPECT_GT(moved, 1e-4) << name << " did not train";
  }
  EXPECT_FALSE(train::load_checkpoint(without.run_dir + "/ckpt.safetensors")
                   .file.contains("blocks.0.ls_attn.gamma"));
  EXPECT_NE(test::read_file(with.run_dir + "/config.yaml").find("test_layer_scale: true"),
            std::string::npos);
}

}  // namespace
}  // namespace lmlab::nn
