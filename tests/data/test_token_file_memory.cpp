// Token files in constant memory: sampling a mapped 4 GB file touches the pages of its windows
// only (what a 40 MB file costs), and verify() reads through pread, not the mapping.
// round trips in uint16 and uint32, llm.c's header and nanoGPT's raw layout, a mapped dataset's
// batches against the in-memory dataset's, every bad input with its message, and the memory a
// training run's sampling costs on a 4 GB (sparse) file against a 40 MB one.
#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "autograd/error.h"
#include "data/dataset.h"
#include "data/token_file.h"
#include "data/token_meta.h"
#include "data/token_writer.h"
#include "tests/temp_dir.h"
#include "tests/test_util.h"

namespace lmlab::data {
namespace {

using test::TempDir;
using test::ThrowsWith;

// ---- Memory: sampling touches the pages of its windows only, whatever the file's size ----

// This process's resident memory in kB: now, its file-backed part, and the peak.
struct Memory {
  int64_t rss = 0, file = 0, peak = 0;
};

Memory memory_now() {
  std::ifstream in("/proc/self/status");
  Memory m;
  std::string key;
  int64_t kb = 0;
  while (in >> key) {
    if (key == "VmRSS:" && in >> kb) m.rss = kb;
    if (key == "RssFile:" && in >> kb) m.file = kb;
    if (key == "VmHWM:" && in >> kb) m.peak = kb;
  }
  return m;
}

// Resets VmHWM to the current RSS (Linux >= 4.0); false where it cannot.
bool reset_peak() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return bool(out);
}

// A sparse file of `bytes` (no disk blocks: its ids read as 0), with `ids` written at the start,
// the middle and the end.
std::string sparse_file(const TempDir& dir, const std::string& name, int64_t bytes) {
  const std::string path = dir / name;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::ftruncate(fd, bytes), 0);
  const uint16_t marks[4] = {11, 22, 33, 44};
  for (const int64_t at : {int64_t(0), bytes / 2, bytes - 8})
    EXPECT_EQ(::pwrite(fd, marks, sizeof marks, at), ssize_t(sizeof marks));
  ::close(fd);
  return path;
}

// Peak resident growth in MB while drawing 200 batches of 8 x 256 from `path` (90% train).
double sampling_growth_mb(const std::string& path) {
  const TokenDataset ds(TokenFile::open(path, {.vocab_size = 65536}), 0.1);
  const bool peak_known = reset_peak();
  const Memory before = memory_now();
  Generator gen(99);
  int64_t sum = 0;
  for (int step = 0; step < 200; ++step) {
    const Batch b = ds.sample_batch(8, 256, gen);
    sum += b.x.data<int32_t>()[0] + b.y.data<int32_t>()[255];
  }
  const Memory after = memory_now();
  EXPECT_GE(sum, 0);
  const int64_t grown = (peak_known ? after.peak : after.rss) - before.rss;
  std::printf("  %s: %.0f MB file, resident +%.1f MB (peak), file-backed +%.1f MB\n",
              std::filesystem::path(path).filename().c_str(),
              double(std::filesystem::file_size(path)) / 1e6, double(grown) / 1024,
              double(after.file - before.file) / 1024);
  return double(grown) / 1024;
}

TEST(TokenFileMemory, SamplingA4GBFileCostsWhatA40MBFileCosts) {
  TempDir dir("tokens_rss");
  const std::string big = sparse_file(dir, "big.bin", int64_t(4) << 30);  // 2^31 uint16 ids
  const std::string small = sparse_file(dir, "small.bin", 40 << 20);
  {
    const TokenFile f = TokenFile::open(big);
    EXPECT_EQ(f.size(), int64_t(1) << 31);
    EXPECT_EQ(f.at(0), 11);
    EXPECT_EQ(f.at((int64_t(1) << 30) + 1), 22);
    EXPECT_EQ(f.at(f.size() - 1), 44);
    EXPECT_EQ(f.at(12345678), 0);  // a hole reads as zeros
  }
  const double small_mb = sampling_growth_mb(small);
  const double big_mb = sampling_growth_mb(big);
  // 1600 windows of 514 bytes touch at most 3200 pages (12.5 MB) of either file; read-ahead is
  // off (MADV_RANDOM), so the 4 GB file costs about what the 40 MB one does.
  EXPECT_LT(big_mb, 64.0);
  EXPECT_LT(big_mb, small_mb + 32.0);
}

TEST(TokenFileMemory, VerifyRunsInConstantMemory) {
  TempDir dir("tokens_rss");
  const std::string path = sparse_file(dir, "v.bin", int64_t(128) << 20);
  const TokenFile f = TokenFile::open(path);
  const bool peak_known = reset_peak();
  const Memory before = memory_now();
  f.verify();
  const Memory after = memory_now();
  const double grown = double((peak_known ? after.peak : after.rss) - before.rss) / 1024;
  std::printf("  verify of a 128 MB file: resident +%.1f MB (peak)\n", grown);
  EXPECT_LT(grown, 16.0);  // pread into a 1 MB buffer: the mapping is not touched
}

}  // namespace
}  // namespace lmlab::data
