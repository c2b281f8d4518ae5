// The one atomic write, the one median and the one signal scope of train/ (train/atomic_write.h,
// train/stats.h, train/signal_scope.h).
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <stdexcept>

#include "tests/test_util.h"
#include "tests/train/cli_util.h"
#include "train/atomic_write.h"
#include "train/signal_scope.h"
#include "train/stats.h"

namespace lmlab::test {
namespace {

// Regular files in dir whose names contain ".tmp".
size_t temp_files(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp") != std::string::npos) ++n;
  return n;
}

TEST(AtomicWrite, WritesAndReplacesAWholeFile) {
  TempDir dir("atomic");
  const std::string path = dir / "a.txt";
  write_file_atomic(path, "first\n");
  EXPECT_EQ(read_file(path), "first\n");
  write_file_atomic(
      path,
      [](const ByteSink& sink) {
        sink("sec", 3);
        sink("ond\n", 4);
      },
      "test");
  EXPECT_EQ(read_file(path), "second\n");
  EXPECT_EQ(temp_files(dir.str()), 0u);
}

// A producer that fails halfway leaves the old file as it was and no temp file behind.
TEST(AtomicWrite, AFailingProducerLeavesTheOldFile) {
  TempDir dir("atomic");
  const std::string path = dir / "a.txt";
  write_file_atomic(path, "old\n");
  EXPECT_THROW(write_file_atomic(
                   path,
                   [](const ByteSink& sink) {
                     sink("half", 4);
                     throw std::runtime_error("producer failed");
                   },
                   "test"),
               std::runtime_error);
  EXPECT_EQ(read_file(path), "old\n");
  EXPECT_EQ(temp_files(dir.str()), 0u);
}

TEST(AtomicWrite, AMissingDirectoryNamesTheFile) {
  TempDir dir("atomic");
  const std::string path = dir / "no/such/dir/a.txt";
  EXPECT_TRUE(ThrowsWith([&] { write_file_atomic(path, "x", "report"); },
                         {"[report]", "cannot create", path + ".tmp.", "No such file"}));
}

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
