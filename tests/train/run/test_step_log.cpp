// What the trainer reports per step (train/run/step_log.h): the tokens/s medians, the ETA, the
// progress line and the metrics.csv row, pinned on hand-made values.
#include <gtest/gtest.h>

#include <cmath>

#include "train/run/step_log.h"

namespace lmlab::train {
namespace {

TEST(StepRates, MedianOfAllAndOfTheMostRecentSteps) {
  StepRates r;
  for (double x : {100.0, 1.0, 2.0, 3.0, 4.0}) r.add(x);
  EXPECT_DOUBLE_EQ(r.median_all(), 3.0);
  EXPECT_DOUBLE_EQ(r.median_recent(4), 2.5);  // 1 2 3 4: the mean of the two middle ones
  EXPECT_DOUBLE_EQ(r.median_recent(1), 4.0);
  EXPECT_DOUBLE_EQ(r.median_recent(20), 3.0);  // fewer steps than asked: all of them
  EXPECT_DOUBLE_EQ(r.last(), 4.0);
}

TEST(StepRates, ASlowFirstStepLeavesTheRecentMedianAlone) {
  StepRates r;
  r.add(10.0);  // a warm-up step
  for (int i = 0; i < 20; ++i) r.add(1000.0);
  EXPECT_DOUBLE_EQ(r.median_recent(), 1000.0);
}

TEST(Eta, StepsLeftTimesTokensOverRate) {
  EXPECT_DOUBLE_EQ(eta_seconds(10, 1000, 500.0), 20.0);
  EXPECT_DOUBLE_EQ(eta_seconds(0, 1000, 500.0), 0.0);
  EXPECT_DOUBLE_EQ(eta_seconds(-3, 1000, 500.0), 0.0);
  EXPECT_TRUE(std::isfinite(eta_seconds(5, 1000, 0.0)));  // no rate yet: large, not inf
}

TEST(ProgressLine, NamesStepLossValLrRateAndEta) {
  EXPECT_EQ(progress_line(12, 400, 2.34567, 2.4, 1e-3, 52000.4, 187),
            "step     12/400 | loss 2.3457 | val 2.4000 | lr 1.00e-03 |   52000 tok/s | ETA 3m07s");
  EXPECT_NE(progress_line(1, 10, 3.0, NAN, 0.1, 1.0, 1).find("val nan"), std::string::npos);
}

TEST(MetricsRow, SevenSignificantDigitsAndAnEmptyValWithoutEvaluation) {
  MetricsRow r{.step = 3,
               .tokens = 512,
               .lr = 0.000123456789,
               .train_loss = 2.123456789,
               .val_loss = 9.0,
               .val_bpb = 3.25,
               .grad_norm = 0.5,
               .has_val = false,
               .clipped = true,
               .tokens_per_s = 12345.678,
               .elapsed_s = 1.5};
  EXPECT_EQ(metrics_row(r), "3,512,0.0001234568,2.123457,,,,0.5,1,12345.68,1.5");
  r.has_val = true;
  r.clipped = false;
  EXPECT_EQ(metrics_row(r), "3,512,0.0001234568,2.123457,9,3.25,,0.5,0,12345.68,1.5");
  r.val_bpb = NAN;  // no bytes per token known: the column stays empty
  EXPECT_EQ(metrics_row(r), "3,512,0.0001234568,2.123457,9,,,0.5,0,12345.68,1.5");
  r.has_val = false;
  r.val_subset_loss = 2.5;  // a subset estimate has its own column, never val_loss's
  EXPECT_EQ(metrics_row(r), "3,512,0.0001234568,2.123457,,,2.5,0.5,0,12345.68,1.5");
  EXPECT_EQ(std::string(kMetricsHeader),
            "step,tokens,lr,train_loss,val_loss,val_bpb,val_subset_loss,grad_norm,clipped,"
            "tokens_per_s,elapsed_s");
}

}  // namespace
}  // namespace lmlab::train
