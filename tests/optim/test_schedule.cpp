// LrSchedule: warmup + cosine values at the key iterations against hand values, the constant
// schedule, the degenerate spans, kind names, and every validation error.
#include <cmath>
#include <numbers>

#include "optim/schedule.h"
#include "tests/test_util.h"

using namespace lmlab;
using namespace lmlab::optim;

namespace {

LrSchedule cosine() {
  return {.kind = LrSchedule::Cosine,
          .lr = 6e-4,
          .min_lr = 6e-5,
          .warmup_iters = 100,
          .decay_iters = 1100};
}

TEST(LrSchedule, CosineAtKeyIterations) {
  const LrSchedule s = cosine();
  EXPECT_DOUBLE_EQ(s.at(0), 6e-4 * 1 / 100);                // first warmup step
  EXPECT_DOUBLE_EQ(s.at(49), 6e-4 * 50 / 100);              // half way up
  EXPECT_DOUBLE_EQ(s.at(99), 6e-4);                         // warmup - 1 reaches the peak
  EXPECT_DOUBLE_EQ(s.at(100), 6e-4);                        // warmup: cosine starts at the peak
  EXPECT_DOUBLE_EQ(s.at(600), 6e-5 + 0.5 * (6e-4 - 6e-5));  // mid-way: cos(pi / 2) = 0
  // A quarter of the way: coeff = 0.5 (1 + cos(pi / 4)).
  EXPECT_DOUBLE_EQ(s.at(350), 6e-5 + 0.5 * (1 + std::sqrt(0.5)) * (6e-4 - 6e-5));
  EXPECT_DOUBLE_EQ(s.at(1100), 6e-5);  // decay_iters: the floor
  EXPECT_DOUBLE_EQ(s.at(5000), 6e-5);  // beyond
}

TEST(LrSchedule, CosineIsMonotoneAfterWarmup) {
  const LrSchedule s = cosine();
  for (int64_t it = 100; it < 1200; ++it) EXPECT_LE(s.at(it + 1), s.at(it)) << it;
  for (int64_t it = 0; it < 99; ++it) EXPECT_LT(s.at(it), s.at(it + 1)) << it;
}

TEST(LrSchedule, NoWarmup) {
  LrSchedule s{
      .kind = LrSchedule::Cosine, .lr = 1.0, .min_lr = 0.0, .warmup_iters = 0, .decay_iters = 4};
  EXPECT_DOUBLE_EQ(s.at(0), 1.0);
  EXPECT_DOUBLE_EQ(s.at(1), 0.5 * (1 + std::cos(std::numbers::pi / 4)));
  EXPECT_NEAR(s.at(2), 0.5, 1e-16);
  EXPECT_DOUBLE_EQ(s.at(4), 0.0);
}

TEST(LrSchedule, ZeroLengthDecayGoesStraightToTheFloor) {
  LrSchedule s{
      .kind = LrSchedule::Cosine, .lr = 1.0, .min_lr = 0.1, .warmup_iters = 10, .decay_iters = 10};
  EXPECT_DOUBLE_EQ(s.at(9), 1.0);
  EXPECT_DOUBLE_EQ(s.at(10), 0.1);  // no 0 / 0
  EXPECT_DOUBLE_EQ(s.at(11), 0.1);
}

TEST(LrSchedule, ConstantWithAndWithoutWarmup) {
  LrSchedule s{
      .kind = LrSchedule::Constant, .lr = 3e-4, .min_lr = 0.0, .warmup_iters = 4, .decay_iters = 4};
  EXPECT_DOUBLE_EQ(s.at(0), 3e-4 / 4);
  EXPECT_DOUBLE_EQ(s.at(2), 3e-4 * 3 / 4);
  EXPECT_DOUBLE_EQ(s.at(3), 3e-4);
  EXPECT_DOUBLE_EQ(s.at(4), 3e-4);
  EXPECT_DOUBLE_EQ(s.at(1000000), 3e-4);
  s.warmup_iters = 0;
  EXPECT_DOUBLE_EQ(s.at(0), 3e-4);
}

TEST(LrSchedule, KindNames) {
  EXPECT_EQ(schedule_kind_from_string("cosine"), LrSchedule::Cosine);
  EXPECT_EQ(schedule_kind_from_string("constant"), LrSchedule::Constant);
  EXPECT_EQ(to_string(LrSchedule::Cosine), "cosine");
  EXPECT_EQ(to_string(LrSchedule::Constant), "constant");
  EXPECT_TRUE(test::ThrowsWith([] { schedule_kind_from_string("linear"); },
                               {"[lr_schedule]", "'linear'", "cosine", "constant"}));
}

TEST(LrSchedule, ValidationErrorsNameTheValue) {
  auto with = [](auto change) {
    LrSchedule s = cosine();
    change(s);
    return [s] { s.at(0); };
  };
  EXPECT_TRUE(
      test::ThrowsWith(with([](LrSchedule& s) { s.lr = 0; }), {"[lr_schedule]", "lr", "0"}));
  EXPECT_TRUE(test::ThrowsWith(with([](LrSchedule& s) { s.lr = -0.5; }),
                               {"[lr_schedule]", "lr must be", "-0.5"}));
  EXPECT_TRUE(test::ThrowsWith(with([](LrSchedule& s) { s.min_lr = 1e-3; }),
                               {"[lr_schedule]", "min_lr", "0.001", "0.0006"}));
  EXPECT_TRUE(test::ThrowsWith(with([](LrSchedule& s) { s.min_lr = -1e-5; }),
                               {"[lr_schedule]", "min_lr", "-1e-05"}));
  EXPECT_TRUE(test::ThrowsWith(with([](LrSchedule& s) { s.warmup_iters = -3; }),
                               {"[lr_schedule]", "warmup_iters", "-3"}));
  EXPECT_TRUE(test::ThrowsWith(with([](LrSchedule& s) { s.decay_iters = 50; }),
                               {"[lr_schedule]", "decay_iters", "50", "warmup_iters 100"}));
  EXPECT_TRUE(test::ThrowsWith([] { cosine().at(-1); }, {"[lr_schedule]", "iteration", "-1"}));
  EXPECT_NO_THROW(cosine().validate());
}

}  // namespace
