// The one atomic write of train/ (data/atomic_write.h): whole files or nothing.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <stdexcept>

#include "data/atomic_write.h"
#include "tests/test_util.h"
#include "tests/train/cli_util.h"

namespace lmlab::test {
namespace {
using namespace lmlab::data;

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
  data::write_file_atomic(path, "first\n");
  EXPECT_EQ(read_file(path), "first\n");
  data::write_file_atomic(
      path,
      [](const data::ByteSink& sink) {
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
  data::write_file_atomic(path, "old\n");
  EXPECT_THROW(data::write_file_atomic(
                   path,
                   [](const data::ByteSink& sink) {
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
  EXPECT_TRUE(ThrowsWith([&] { data::write_file_atomic(path, "x", "report"); },
                         {"[report]", "cannot create", path + ".tmp.", "No such file"}));
}

}  // namespace
}  // namespace lmlab::test
