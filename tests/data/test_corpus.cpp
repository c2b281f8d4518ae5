// Corpus loading: files, directories (sorted, .dat/symlink/subdir/hidden skipped), the default
// fortunes corpus, and every error with the file and byte offset it names.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "autograd/error.h"
#include "data/corpus.h"
#include "data/utf8.h"
#include "tests/temp_dir.h"
#include "tests/test_util.h"

namespace lmlab::data {
namespace {

namespace fs = std::filesystem;
using test::TempDir;
using test::ThrowsWith;

TEST(Corpus, LoadsOneFileVerbatim) {
  TempDir dir;
  const std::string text = "héllo 世界\nno trailing newline";
  const std::string path = dir.write("one.txt", text);
  Corpus c = read_corpus(path);
  EXPECT_EQ(c.text, text);
  ASSERT_EQ(c.files.size(), 1u);
  EXPECT_EQ(c.files[0], path);
  EXPECT_EQ(load_corpus(path), text);
}

TEST(Corpus, DirectoryIsSortedAndSkipsSymlinksDatSubdirsAndHiddenFiles) {
  TempDir dir;
  dir.write("b", "second\n");
  dir.write("a", "first\n");
  dir.write("C", "upper case sorts first\n");  // byte order: 'C' (0x43) < 'a' (0x61)
  dir.write("a.dat", std::string("\0\0\0\x02\xff\xfe", 6));
  dir.write(".hidden", "never read\n");
  dir.write("empty", "");
  fs::create_symlink("a", dir.path() / "a.u8");
  fs::create_directory(dir.path() / "sub");
  dir.write("sub/inner", "never read either\n");

  Corpus c = read_corpus(dir.path().string());
  EXPECT_EQ(c.text, "upper case sorts first\nfirst\nsecond\n");
  const std::vector<std::string> files = {(dir.path() / "C").string(), (dir.path() / "a").string(),
                                          (dir.path() / "b").string(),
                                          (dir.path() / "empty").string()};
  EXPECT_EQ(c.files, files);
  ASSERT_EQ(c.skipped.size(), 4u);  // .hidden, a.dat, a.u8, sub
  EXPECT_NE(c.skipped[0].find(".hidden (hidden file)"), std::string::npos);
  EXPECT_NE(c.skipped[1].find("a.dat (strfile index)"), std::string::npos);
  EXPECT_NE(c.skipped[2].find("a.u8 (symlink)"), std::string::npos);
  EXPECT_NE(c.skipped[3].find("sub (directory)"), std::string::npos);
  // Same directory, same bytes: the order never depends on the directory listing.
  EXPECT_EQ(load_corpus(dir.path().string()), c.text);
}

TEST(Corpus, APathThatIsASymlinkToAFileIsFollowed) {
  TempDir dir;
  dir.write("target", "linked text\n");
  fs::create_symlink("target", dir.path() / "link");
  EXPECT_EQ(load_corpus((dir.path() / "link").string()), "linked text\n");
}

TEST(Corpus, HandlesASingleHundredMegabyteLine) {
  TempDir dir;
  std::string line(100u << 20, 'x');
  line += "é";  // a multibyte character that ends exactly at end of file
  const std::string path = dir.write("long", line);
  const std::string text = load_corpus(path);
  EXPECT_EQ(text.size(), line.size());
  EXPECT_TRUE(text == line);
}

TEST(Corpus, DefaultFortunesCorpus) {
  if (!fs::exists(kDefaultCorpusPath))
    GTEST_SKIP() << kDefaultCorpusPath << " is missing (apt-get install fortunes)";
  Corpus c = read_corpus(kDefaultCorpusPath);
  EXPECT_GT(c.text.size(), 100000u);
  EXPECT_FALSE(utf8::first_problem(c.text).has_value());
  EXPECT_EQ(c.text.find('\0'), std::string::npos);
  // Exactly the regular non-.dat files, each once: the X.u8 symlinks add nothing.
  uintmax_t expected_bytes = 0;
  size_t expected_files = 0;
  for (const fs::directory_entry& e : fs::directory_iterator(kDefaultCorpusPath)) {
    if (e.is_symlink() || !e.is_regular_file() || e.path().extension() == ".dat") continue;
    if (e.path().filename().string()[0] == '.') continue;
    expected_bytes += e.file_size();
    ++expected_files;
  }
  EXPECT_EQ(c.text.size(), expected_bytes);
  EXPECT_EQ(c.files.size(), expected_files);
  EXPECT_TRUE(std::is_sorted(c.files.begin(), c.files.end()));
  for (const std::string& f : c.files) {
    EXPECT_NE(fs::path(f).extension(), ".dat") << f;
    EXPECT_NE(fs::path(f).extension(), ".u8") << f;
  }
}

TEST(CorpusErrors, MissingPath) {
  EXPECT_TRUE(ThrowsWith([] { load_corpus("/nonexistent/lmlab/corpus"); },
                         {"[corpus]", "/nonexistent/lmlab/corpus", "does not exist"}));
}

TEST(CorpusErrors, EmptyFileAndEmptyDirectory) {
  TempDir dir;
  const std::string empty = dir.write("empty.txt", "");
  EXPECT_TRUE(ThrowsWith([&] { load_corpus(empty); }, {"[corpus]", empty, "is empty"}));
  TempDir none;
  EXPECT_TRUE(ThrowsWith([&] { load_corpus(none.path().string()); },
                         {"[corpus]", none.path().string(), "holds no text"}));
  // Only skipped entries and empty files: still no text.
  TempDir skipped;
  skipped.write("x.dat", "index");
  skipped.write("blank", "");
  fs::create_symlink("blank", skipped.path() / "blank.u8");
  EXPECT_TRUE(ThrowsWith([&] { load_corpus(skipped.path().string()); },
                         {"[corpus]", "holds no text", "files read: 1", "entries skipped: 2"}));
}

TEST(CorpusErrors, NulByteNamesFileAndOffset) {
  TempDir dir;
  const std::string path = dir.write("bin", std::string("abc\0def", 7));
  EXPECT_TRUE(ThrowsWith([&] { load_corpus(path); }, {"[corpus]", path, "NUL byte at offset 3"}));
}

TEST(CorpusErrors, InvalidUtf8NamesFileByteAndOffset) {
  TempDir dir;
  std::string text(1234, 'a');
  text += "\xff tail";
  const std::string path = dir.write("latin", text);
  EXPECT_TRUE(
      ThrowsWith([&] { load_corpus(path); },
                 {"[corpus] " + path + " is not UTF-8 text: invalid byte 0xff at offset 1234"}));
  // Latin-1 'é' (0xe9) followed by ASCII: a bad continuation byte.
  const std::string latin1 = dir.write("latin1", "caf\xe9 au lait");
  EXPECT_TRUE(ThrowsWith([&] { load_corpus(latin1); },
                         {latin1, "invalid byte 0xe9 at offset 3", "invalid continuation byte"}));
}

TEST(CorpusErrors, TruncatedMultibyteSequenceAtEndOfFile) {
  TempDir dir;
  const std::string path = dir.write("cut", "ok \xe4\xb8");  // 世 without its last byte
  EXPECT_TRUE(ThrowsWith([&] { load_corpus(path); },
                         {path, "invalid byte 0xe4 at offset 3", "unexpected end of data"}));
}

TEST(CorpusErrors, BadFileInsideADirectoryIsNamed) {
  TempDir dir;
  dir.write("a", "fine\n");
  const std::string bad = dir.write("b", "bad \xc0\x80");
  EXPECT_TRUE(ThrowsWith([&] { load_corpus(dir.path().string()); }, {"[corpus]", bad, "offset 4"}));
}

TEST(CorpusErrors, UnlistableDirectory) {
  TempDir dir;
  fs::create_directory(dir.path() / "locked");
  const std::string locked = (dir.path() / "locked").string();
  fs::permissions(locked, fs::perms::none);
  if (::access(locked.c_str(), R_OK) == 0)
    GTEST_SKIP() << "running as root: permissions do not apply";
  EXPECT_TRUE(ThrowsWith([&] { load_corpus(locked); }, {"[corpus]", "cannot list", locked}));
  fs::permissions(locked, fs::perms::owner_all);
}

TEST(CorpusErrors, UnreadableFile) {
  TempDir dir;
  const std::string path = dir.write("secret", "text\n");
  fs::permissions(path, fs::perms::none);
  if (::access(path.c_str(), R_OK) == 0)
    GTEST_SKIP() << "running as root: permissions do not apply";
  EXPECT_TRUE(ThrowsWith([&] { load_corpus(path); }, {"[corpus]", "cannot read", path}));
}

}  // namespace
}  // namespace lmlab::data
