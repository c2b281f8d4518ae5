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

}  // namespace
// --init-from into a model the checkpoint only partly covers: the missing parameters keep their
// init (with init_missing), the checkpoint's extra ones are listed as unused, and the notes say so.
TEST(InitFrom, MissingKeepTheirInitUnusedAreListed) {
  nn::ModelConfig c;
  c.vocab_size = 7;
  c.block_size = 4;
  c.n_layer = 1;
  c.n_head = 2;
  c.n_kv_head = 2;
  c.n_embd = 8;
  Generator g1(1), g2(2);
  nn::TransformerLM source(c, g1), target(c, g2);
  Checkpoint ckpt;
  ckpt.file.path = "c.safetensors";
  for (const auto& [name, t] : source.state_dict()) ckpt.file.tensors[name] = t;
  ckpt.file.tensors.erase("blocks.0.norm1.weight");
  ckpt.file.tensors["blocks.9.norm1.weight"] = Tensor::ones({8});
  const std::vector<float> init =
      target.state_dict().at("blocks.0.norm1.weight").to_vector<float>();
  EXPECT_TRUE(test::ThrowsWith([&] { load_init_weights(ckpt, target, false); },
                               {"c.safetensors lacks 1 parameter of this model: "
                                "blocks.0.norm1.weight (--init-missing"}));
  const InitFromLoad load = load_init_weights(ckpt, target, true);
  EXPECT_EQ(load.missing, std::vector<std::string>{"blocks.0.norm1.weight"});
  EXPECT_EQ(load.unused, std::vector<std::string>{"blocks.9.norm1.weight"});
  EXPECT_EQ(target.state_dict().at("blocks.0.norm1.weight").to_vector<float>(), init);
  EXPECT_EQ(target.state_dict().at("wte.weight").to_vector<float>(),
            source.state_dict().at("wte.weight").to_vector<float>());
  EXPECT_EQ(init_from_notes(load, "c.safetensors"),
            "init-from: 1 parameter not in c.safetensors starts at its init: "
            "blocks.0.norm1.weight\n"
            "init-from: 1 parameter of c.safetensors is not in this model and is not used: "
            "blocks.9.norm1.weight\n");
  std::vector<std::string> ten;
  for (int i = 0; i < 10; ++i) ten.push_back("p" + std::to_string(i));
  EXPECT_EQ(name_list(ten), "p0, p1, p2, p3, p4, p5, p6, p7, and 2 more");
}

}  // namespace lmlab::train
