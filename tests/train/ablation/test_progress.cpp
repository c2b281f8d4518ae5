// What `lmlab ablate` prints while it runs (train/ablation/progress.h): the ETA, a pure function of
// the runs' progress, on hand-made inputs; the progress line and the line of a run that ended.
#include <gtest/gtest.h>

#include "train/ablation/progress.h"

namespace lmlab::train {
namespace {

RunProgress at(int64_t step, double elapsed, int64_t max_iters) {
  return {step, elapsed, max_iters};
}

TEST(AblationEta, NoEstimateBeforeAnyRunCanBeProjected) {
  EXPECT_FALSE(ablation_eta({}, {}, 8, 2));
  // 39 of 800 steps: under 5%, its start-up would dominate a projection.
  EXPECT_FALSE(ablation_eta({}, {at(39, 20, 800), at(-1, 0, 800)}, 6, 2));
}

TEST(AblationEta, RunningRunsProjectFromTheirStepTimeAndPendingRunsAtTheMean) {
  // 100 of 800 steps in 50 s: 0.5 s/step, 350 s left, 400 s long; 2 pending runs at 400 s each.
  EXPECT_DOUBLE_EQ(*ablation_eta({}, {at(100, 50, 800)}, 2, 1), 350.0 + 2 * 400.0);
  // The same with 2 jobs at a time: half.
  EXPECT_DOUBLE_EQ(*ablation_eta({}, {at(100, 50, 800)}, 2, 2), (350.0 + 800.0) / 2);
  // The threshold is max(10, 5% of the steps): 10 of 100 counts, 9 of 100 does not.
  EXPECT_DOUBLE_EQ(*ablation_eta({}, {at(10, 5, 100)}, 0, 1), 45.0);
  EXPECT_FALSE(ablation_eta({}, {at(9, 5, 100)}, 0, 1));
  EXPECT_DOUBLE_EQ(*ablation_eta({}, {at(50, 25, 1000)}, 0, 1), 475.0);
  EXPECT_FALSE(ablation_eta({}, {at(49, 25, 1000)}, 0, 1));
}

TEST(AblationEta, EarlyRunsCountAtTheMeanOfTheFinishedOnes) {
  // Finished runs took 30 s and 50 s (mean 40): a run 15 s in but still in its first steps has
  // 25 s left, one without a metrics row 40 s; the pending run takes the mean of 30 and 50.
  EXPECT_DOUBLE_EQ(*ablation_eta({30, 50}, {at(2, 15, 100), at(-1, 0, 100)}, 1, 1),
                   25.0 + 40.0 + 40.0);
  // A slow start past the mean leaves nothing negative.
  EXPECT_DOUBLE_EQ(*ablation_eta({30, 50}, {at(3, 70, 100)}, 0, 1), 0.0);
  // Finished and projected runs together give the pending runs' length: (40 + 30 + 50) / 3.
  EXPECT_DOUBLE_EQ(*ablation_eta({30, 50}, {at(50, 20, 100)}, 3, 3), (20.0 + 3 * 40.0) / 3);
}

TEST(AblationProgress, ProgressLineAndRunEndedLine) {
  EXPECT_EQ(running_label("pre", 2, at(120, 60, 800)), "pre/seed2 120/800");
  EXPECT_EQ(running_label("post", 1, at(-1, 0, 800)), "post/seed1 0/800");
  const AblationCounts counts{3, 1, 0, 8};
  EXPECT_EQ(progress_line(counts, {"pre/seed2 120/800", "post/seed1 40/800"}, 130.0, false),
            "ablate: 3/8 done (1 diverged) | running pre/seed2 120/800, post/seed1 40/800 | ETA "
            "2m10s");
  EXPECT_EQ(progress_line({0, 0, 2, 8}, {"a/seed1 0/10"}, std::nullopt, true),
            "ablate: 0/8 done (2 failed) | running a/seed1 0/10 | stopping");
  EXPECT_EQ(run_ended_line(counts, "pre", 2, "val 2.2928", 191),
            "ablate: [3/8] pre/seed2: val 2.2928 (3m11s)\n");
}

}  // namespace
}  // namespace lmlab::train
