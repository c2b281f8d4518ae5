// The one median and the one signal scope of train/ (train/common/stats.h,
// train/common/signal_scope.h).
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <stdexcept>

#include "train/common/signal_scope.h"
#include "train/common/stats.h"

namespace lmlab::test {
namespace {
using namespace lmlab::train;

TEST(Median, MiddleValueOrMeanOfTheTwoMiddleOnes) {
  EXPECT_EQ(median({}), 0.0);
  EXPECT_EQ(median({3}), 3.0);
  EXPECT_EQ(median({5, 1, 3}), 3.0);
  EXPECT_EQ(median({4, 1, 3, 2}), 2.5);
  EXPECT_EQ(median({7, 7, 1, 9, 2, 8}), 7.0);
}

// SIGINT inside the scope is recorded, not fatal; the handler before the scope comes back when it
// ends, also through an exception.
TEST(StopSignalScope, RecordsSignalsAndRestoresTheHandlerBefore) {
  struct sigaction ignore {
  }, before{}, now{};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  sigaction(SIGINT, &ignore, &before);
  {
    StopSignalScope scope;
    EXPECT_EQ(StopSignalScope::received(), 0);
    std::raise(SIGINT);
    EXPECT_EQ(StopSignalScope::received(), SIGINT);
  }
  EXPECT_EQ(StopSignalScope::received(), SIGINT);  // still readable after the scope
  sigaction(SIGINT, nullptr, &now);
  EXPECT_EQ(now.sa_handler, SIG_IGN);
  try {
    StopSignalScope scope;
    EXPECT_EQ(StopSignalScope::received(), 0);  // a new scope starts clear
    throw std::runtime_error("the run failed");
  } catch (const std::runtime_error&) {
  }
  sigaction(SIGINT, nullptr, &now);
  EXPECT_EQ(now.sa_handler, SIG_IGN);
  sigaction(SIGINT, &before, nullptr);
}

}  // namespace
}  // namespace lmlab::test
