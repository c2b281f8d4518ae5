// The resume check (train/run/resume.h): what may change between a checkpoint's config and the
// config that resumes it, and the messages that say what to do otherwise; --init-from's partial
// load (load_init_weights) and its notes.
#include <gtest/gtest.h>

#include "autograd/error.h"
#include "nn/transformer.h"
#include "tests/test_util.h"
#include "train/config/config.h"
#include "train/run/resume.h"

namespace lmlab::train {
namespace {

TrainConfig tiny() { return load_config(std::string(LMLAB_SOURCE_DIR) + "/configs/tiny.yaml"); }

// The message of check_resume's error, or "" when it accepts.
std::string resume_error(const TrainConfig& saved, int64_t saved_ranks, const TrainConfig& now,
                         int64_t world) {
  try {
    check_resume(saved, saved_ranks, now, world, "run/ckpt.safetensors", "run");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ResumeCheck, LoopLengthLoggingThreadsAndPlaceMayChange) {
  const TrainConfig saved = tiny();
  TrainConfig now = saved;
  EXPECT_EQ(resume_error(saved, 1, now, 1), "");
  now.train.max_iters *= 2;
  now.train.eval_interval += 1;
  now.train.checkpoint_interval += 1;
  now.train.log_interval += 1;
  now.train.threads = 3;
  now.train.bucket_mb += 1;
  now.train.run_dir = "elsewhere";
  now.source = "another.yaml";
  EXPECT_EQ(resume_error(saved, 1, now, 1), "");
}

// Each refusal names the first key that differs with its value in the checkpoint and now.
TEST(ResumeCheck, TheModelDataAndOptimizerMustStay) {
  const TrainConfig saved = tiny();
  struct Change {
    void (*apply)(TrainConfig&);
    std::string says;
  };
  const Change changes[] = {{+[](TrainConfig& c) { c.optim.lr *= 2; },
                             "with optim.lr 0.001, this config has optim.lr 0.002"},
                            {+[](TrainConfig& c) { c.model.n_layer += 1; },
                             "with model.n_layer 2, this config has model.n_layer 3"},
                            {+[](TrainConfig& c) { c.data.val_fraction = 0.2; },
                             "with data.val_fraction 0.1, this config has data.val_fraction 0.2"},
                            {+[](TrainConfig& c) { c.train.seed += 1; },
                             "with train.seed 1337, this config has train.seed 1338"},
                            {+[](TrainConfig& c) { c.model.extra["qk_norm"] = true; },
                             "with model.qk_norm false, this config has model.qk_norm true"}};
  for (const Change& change : changes) {
    TrainConfig now = saved;
    change.apply(now);
    const std::string e = resume_error(saved, 1, now, 1);
    EXPECT_NE(e.find("run/ckpt.safetensors was written " + change.says), std::string::npos) << e;
    EXPECT_NE(e.find("(see run/config.yaml; start a new run, or --init-from"), std::string::npos)
        << e;
  }
}

TEST(ResumeCheck, TheGlobalBatchMayBeSplitOverOtherRanks) {
  const TrainConfig saved = tiny();  // batch_size x 1 rank
  TrainConfig now = saved;
  now.train.batch_size = saved.train.batch_size / 2;
  EXPECT_EQ(resume_error(saved, 1, now, 2), "");
  const std::string e = resume_error(saved, 1, saved, 2);  // twice the global batch
  EXPECT_NE(e.find("resume needs the same global batch"), std::string::npos) << e;
  EXPECT_NE(e.find("(set train.batch_size=" + std::to_string(saved.train.batch_size / 2) + ")"),
            std::string::npos)
      << e;
}

TEST(ResumeCheck, ARankCountThatCannotSplitTheBatchIsNamed) {
  TrainConfig saved = tiny();
  saved.train.batch_size = 6;
  TrainConfig now = saved;
  now.train.batch_size = 1;
  const std::string e = resume_error(saved, 1, now, 4);
  EXPECT_NE(e.find("(use a rank count that divides 6)"), std::string::npos) << e;
}

// A tiny model; `seed` draws its init.
struct TinyModel {
  explicit TinyModel(uint64_t seed) : gen(seed), model(config(), gen) {}
  static nn::ModelConfig config() {
    nn::ModelConfig c;
    c.vocab_size = 7;
    c.block_size = 4;
    c.n_layer = 1;
    c.n_head = 2;
    c.n_kv_head = 2;
    c.n_embd = 8;
    return c;
  }
  std::vector<float> at(const std::string& name) const {
    return model.state_dict().at(name).to_vector<float>();
  }
  Generator gen;
  nn::TransformerLM model;
};

// A checkpoint of `source`'s parameters (with AdamW state, which is never read as a parameter).
Checkpoint checkpoint_of(const nn::TransformerLM& source) {
  Checkpoint ckpt;
  ckpt.file.path = "c.safetensors";
  ckpt.file.metadata["optimizer"] = "adamw";
  for (const auto& [name, t] : source.state_dict()) ckpt.file.tensors[name] = t;
  ckpt.file.tensors["adamw.m.wte.weight"] = Tensor::ones({1});
  return ckpt;
}

const char* kDropped = "blocks.0.attn.wk.weight";  // drawn at random: its init depends on the seed

// --init-from into a model the checkpoint only partly covers: without init_missing an error naming
// the parameter (and the model untouched); with it the parameter keeps this model's init, every
// other one is the checkpoint's, and the notes say which.
TEST(InitFrom, ParametersTheCheckpointLacksKeepTheirInitWithInitMissing) {
  const TinyModel source(1);
  TinyModel target(2);
  Checkpoint ckpt = checkpoint_of(source.model);
  ASSERT_EQ(ckpt.file.tensors.erase(kDropped), 1u);
  const std::vector<float> init = target.at(kDropped), wte = target.at("wte.weight");
  ASSERT_NE(init, source.at(kDropped));
  EXPECT_TRUE(test::ThrowsWith([&] { load_init_weights(ckpt, target.model, false); },
                               {"[checkpoint] c.safetensors lacks 1 parameter of this model: " +
                                std::string(kDropped) + " (--init-missing starts them"}));
  EXPECT_EQ(target.at("wte.weight"), wte);  // nothing copied
  const InitFromLoad load = load_init_weights(ckpt, target.model, true);
  EXPECT_EQ(load.missing, std::vector<std::string>{kDropped});
  EXPECT_TRUE(load.unused.empty());
  EXPECT_EQ(target.at(kDropped), init);
  for (const auto& [name, t] : source.model.state_dict())
    EXPECT_EQ(target.at(name), name == kDropped ? init : source.at(name)) << name;
  EXPECT_EQ(init_from_notes(load, "c.safetensors"),
            "init-from: 1 parameter not in c.safetensors starts at its init: " +
                std::string(kDropped) + "\n");
}

// The checkpoint's parameters the model lacks are not used, and named; its optimizer state is not
// a parameter.
TEST(InitFrom, TheCheckpointsExtraParametersAreNamedAsUnused) {
  const TinyModel source(1);
  TinyModel target(2);
  Checkpoint ckpt = checkpoint_of(source.model);
  ckpt.file.tensors["blocks.9.norm1.weight"] = Tensor::ones({8});
  ckpt.file.tensors["blocks.9.norm1.bias"] = Tensor::ones({8});
  const InitFromLoad load = load_init_weights(ckpt, target.model, false);
  EXPECT_TRUE(load.missing.empty());
  EXPECT_EQ(load.unused,
            (std::vector<std::string>{"blocks.9.norm1.bias", "blocks.9.norm1.weight"}));
  EXPECT_EQ(target.at("wte.weight"), source.at("wte.weight"));
  EXPECT_EQ(init_from_notes(load, "c.safetensors"),
            "init-from: 2 parameters of c.safetensors are not in this model and are not used: "
            "blocks.9.norm1.bias, blocks.9.norm1.weight\n");
}

// Another shape is an error naming the parameter and both shapes, even with init_missing, and
// nothing is copied.
TEST(InitFrom, AnotherShapeIsAnErrorNamingBothShapes) {
  const TinyModel source(1);
  TinyModel target(2);
  Checkpoint ckpt = checkpoint_of(source.model);
  ckpt.file.tensors.erase(kDropped);
  ckpt.file.tensors["wpe.weight"] = Tensor::ones({5, 8});
  const std::vector<float> wte = target.at("wte.weight");
  for (bool init_missing : {false, true})
    EXPECT_TRUE(test::ThrowsWith([&] { load_init_weights(ckpt, target.model, init_missing); },
                                 {"[checkpoint] c.safetensors: parameter 'wpe.weight' has shape "
                                  "(5, 8) in the checkpoint but (4, 8) in the model"}));
  EXPECT_EQ(target.at("wte.weight"), wte);
}

TEST(InitFrom, NameListsShowEightThenACount) {
  std::vector<std::string> names;
  for (int i = 0; i < 10; ++i) names.push_back("p" + std::to_string(i));
  EXPECT_EQ(name_list(names), "p0, p1, p2, p3, p4, p5, p6, p7, and 2 more");
  names.resize(8);
  EXPECT_EQ(name_list(names), "p0, p1, p2, p3, p4, p5, p6, p7");
  EXPECT_EQ(name_list({"a"}), "a");
}

}  // namespace
}  // namespace lmlab::train
