// The one whole-file read (data/read_file.h): contents byte for byte, and each reason it refuses.
#include <gtest/gtest.h>

#include "data/read_file.h"
#include "tests/temp_dir.h"

namespace lmlab::test {
namespace {
using namespace lmlab::data;

TEST(ReadWholeFile, ReturnsEveryByte) {
  TempDir dir("read");
  const std::string bytes("a\0b\r\n\xff", 6);
  EXPECT_EQ(read_whole_file(dir.write("f.bin", bytes)), bytes);
  EXPECT_EQ(read_whole_file(dir.write("empty", "")), "");
}

TEST(ReadWholeFile, SaysWhyItCannotRead) {
  TempDir dir("read");
  std::string why;
  EXPECT_FALSE(read_whole_file(dir / "missing", &why));
  EXPECT_EQ(why, "no such file");
  EXPECT_FALSE(read_whole_file(dir.str(), &why));
  EXPECT_EQ(why, "it is a directory");
  EXPECT_FALSE(read_whole_file(dir / "missing"));  // the reason is optional
}

}  // namespace
}  // namespace lmlab::test
