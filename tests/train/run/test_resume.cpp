// The resume check (train/run/resume.h): what may change between a checkpoint's config and the
// config that resumes it, and the messages that say what to do otherwise.
#include <gtest/gtest.h>

#include "autograd/error.h"
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

TEST(ResumeCheck, TheModelDataAndOptimizerMustStay) {
  const TrainConfig saved = tiny();
  for (auto change :
       {+[](TrainConfig& c) { c.optim.lr *= 2; }, +[](TrainConfig& c) { c.model.n_layer += 1; },
        +[](TrainConfig& c) { c.data.val_fraction = 0.2; },
        +[](TrainConfig& c) { c.train.seed += 1; }}) {
    TrainConfig now = saved;
    change(now);
    const std::string e = resume_error(saved, 1, now, 1);
    EXPECT_NE(e.find("run/ckpt.safetensors was written with a different config"), std::string::npos)
        << e;
    EXPECT_NE(e.find("(see run/config.yaml)"), std::string::npos) << e;
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
}  // namespace lmlab::train
