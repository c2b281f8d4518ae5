// TokenDataset: the nanoGPT split, seeded batches (shapes, shift, bounds, determinism), whole-split
// evaluation windows (every val target exactly once), and every error path.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "autograd/error.h"
#include "data/dataset.h"
#include "tests/test_util.h"

namespace lmlab::data {
namespace {

using test::ThrowsWith;

// n distinct token values in a scrambled order (7919 is prime), so a value names its position.
std::vector<int32_t> scrambled(int64_t n) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[size_t(i)] = int32_t((i * 7919 + 13) % n);
  return t;
}

TEST(TokenDataset, SplitMatchesNanoGPT) {
  for (int64_t n = 2; n <= 3000; ++n) {
    TokenDataset ds(std::vector<int32_t>(size_t(n), 0));
    EXPECT_EQ(ds.train_size(), n * 9 / 10) << n;  // int(n * 0.9)
    EXPECT_EQ(ds.train_size() + ds.val_size(), n);
  }
  TokenDataset half(scrambled(11), 0.5);
  EXPECT_EQ(half.train_size(), 5);
  EXPECT_EQ(half.val_size(), 6);
  EXPECT_EQ(half.train_data(), half.tokens().data());
  EXPECT_EQ(half.val_data(), half.tokens().data() + 5);
  EXPECT_EQ(half.val_data()[0], half.tokens()[5]);  // the val split is the END of the stream
}

TEST(TokenDataset, SampleBatchShapesShiftAndBounds) {
  const int64_t n = 1009, B = 16, T = 32;
  const std::vector<int32_t> tokens = scrambled(n);
  std::map<int32_t, int64_t> position;
  for (int64_t i = 0; i < n; ++i) position[tokens[size_t(i)]] = i;
  TokenDataset ds(tokens);
  Generator gen(42);
  Batch batch = ds.sample_batch(B, T, gen);
  EXPECT_EQ(gen.offset(), uint64_t(B));
  ASSERT_EQ(batch.x.shape(), (Shape{B, T}));
  ASSERT_EQ(batch.y.shape(), (Shape{B, T}));
  EXPECT_EQ(batch.x.dtype(), DType::I32);
  EXPECT_EQ(batch.y.dtype(), DType::I32);
  const std::vector<int32_t> x = batch.x.to_vector<int32_t>();
  const std::vector<int32_t> y = batch.y.to_vector<int32_t>();
  for (int64_t b = 0; b < B; ++b) {
    const int64_t start = position[x[size_t(b * T)]];
    EXPECT_LE(start + T + 1, ds.train_size()) << "window leaves the train split";
    for (int64_t t = 0; t < T; ++t) {
      EXPECT_EQ(x[size_t(b * T + t)], tokens[size_t(start + t)]);
      EXPECT_EQ(y[size_t(b * T + t)], tokens[size_t(start + t + 1)]);
    }
  }
}

TEST(TokenDataset, SampleBatchReachesEveryStartAndNoOther) {
  // Train split of 12 tokens, T = 4: the valid starts are exactly 0..7.
  TokenDataset ds(scrambled(24), 0.5);
  std::map<int32_t, int64_t> position;
  for (int64_t i = 0; i < ds.size(); ++i) position[ds.tokens()[size_t(i)]] = i;
  Generator gen(7);
  Batch batch = ds.sample_batch(2000, 4, gen);
  const std::vector<int32_t> x = batch.x.to_vector<int32_t>();
  std::set<int64_t> starts;
  for (int64_t b = 0; b < 2000; ++b) starts.insert(position[x[size_t(b * 4)]]);
  EXPECT_EQ(starts, (std::set<int64_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  // T = train_size - 1: one valid start only.
  Generator one(3);
  EXPECT_EQ(ds.sample_batch(5, 11, one).x.to_vector<int32_t>()[0], ds.tokens()[0]);
}

// Data parallelism: rank r of N (a partitioned generator) with batch B draws rows [rB, (r+1)B) of
// the batch one process draws with N * B, step after step.
TEST(TokenDataset, PartitionedGeneratorsDrawTheRowsOfOneGlobalBatch) {
  TokenDataset ds(scrambled(5003));
  const int64_t B = 3, T = 8;
  Generator whole(11), r0(11), r1(11);
  r0.set_partition(0, 2), r1.set_partition(1, 2);
  for (int step = 0; step < 3; ++step) {
    const std::vector<int32_t> all = ds.sample_batch(2 * B, T, whole).y.to_vector<int32_t>();
    const std::vector<int32_t> a = ds.sample_batch(B, T, r0).y.to_vector<int32_t>();
    const std::vector<int32_t> b = ds.sample_batch(B, T, r1).y.to_vector<int32_t>();
    EXPECT_EQ(a, std::vector<int32_t>(all.begin(), all.begin() + B * T)) << "step " << step;
    EXPECT_EQ(b, std::vector<int32_t>(all.begin() + B * T, all.end())) << "step " << step;
  }
  EXPECT_EQ(r1.offset(), whole.offset());
}

TEST(TokenDataset, GeneratorStateAloneDeterminesTheBatch) {
  TokenDataset ds(scrambled(5003));
  Generator a(1234), b(1234);
  const std::vector<int32_t> first = ds.sample_batch(8, 16, a).x.to_vector<int32_t>();
  EXPECT_EQ(ds.sample_batch(8, 16, b).x.to_vector<int32_t>(), first);
  // The next batch (offset 8) differs; restoring (seed, offset) reproduces it bit for bit.
  const std::vector<int32_t> second = ds.sample_batch(8, 16, a).x.to_vector<int32_t>();
  EXPECT_NE(second, first);
  Generator resumed(0);
  resumed.set_state(1234, 8);
  EXPECT_EQ(ds.sample_batch(8, 16, resumed).x.to_vector<int32_t>(), second);
  EXPECT_EQ(resumed.offset(), 16u);
  Generator other(99);
  EXPECT_NE(ds.sample_batch(8, 16, other).x.to_vector<int32_t>(), first);
}

TEST(TokenDataset, EvalWindowsCoverEveryValTokenOnce) {
  for (int64_t val : {9, 29, 33, 64}) {
    for (int64_t T : {1, 4, 8}) {
      if (val < T + 1) continue;
      TokenDataset ds(scrambled(100 + val), double(val) / double(100 + val));
      ASSERT_EQ(ds.val_size(), val);
      std::vector<int> targeted(size_t(val), 0), input(size_t(val), 0);
      const std::vector<EvalWindow> windows = ds.eval_windows(T);
      for (size_t k = 0; k < windows.size(); ++k) {
        EXPECT_EQ(windows[k].start, int64_t(k) * T);
        if (k + 1 < windows.size()) {
          EXPECT_EQ(windows[k].length, T);
        }
        for (int64_t i = 0; i < windows[k].length; ++i) {
          ++input[size_t(windows[k].start + i)];
          ++targeted[size_t(windows[k].start + i + 1)];
        }
      }
      const int64_t partial = (val - 1) % T;
      EXPECT_EQ(windows.back().length, partial ? partial : T) << val << " " << T;
      EXPECT_EQ(targeted[0], 0);
      for (int64_t i = 1; i < val; ++i) EXPECT_EQ(targeted[size_t(i)], 1) << i;
      for (int64_t i = 0; i + 1 < val; ++i) EXPECT_EQ(input[size_t(i)], 1) << i;
      EXPECT_EQ(input[size_t(val - 1)], 0);
    }
  }
}

TEST(TokenDataset, EvalBatchesStackWindowsOfEqualLength) {
  // val = 30 tokens, T = 8: 29 predictions = 3 full windows + a window of 5.
  TokenDataset ds(scrambled(100), 0.3);
  ASSERT_EQ(ds.val_size(), 30);
  const int64_t T = 8, B = 2;
  ASSERT_EQ(ds.eval_batch_count(B, T), 3);
  const std::vector<int64_t> counts = {2, 1, 1}, lengths = {8, 8, 5};
  std::vector<int32_t> xs, ys;
  int64_t tokens = 0;
  for (int64_t i = 0; i < 3; ++i) {
    EvalBatch eb = ds.eval_batch(B, T, i);
    EXPECT_EQ(eb.count, counts[size_t(i)]);
    EXPECT_EQ(eb.length, lengths[size_t(i)]);
    EXPECT_EQ(eb.x.shape(), (Shape{eb.count, eb.length}));
    EXPECT_EQ(eb.y.shape(), (Shape{eb.count, eb.length}));
    tokens += eb.tokens();
    for (int32_t v : eb.x.to_vector<int32_t>()) xs.push_back(v);
    for (int32_t v : eb.y.to_vector<int32_t>()) ys.push_back(v);
  }
  EXPECT_EQ(tokens, 29);
  const std::vector<int32_t> val(ds.val_data(), ds.val_data() + 30);
  EXPECT_EQ(xs, std::vector<int32_t>(val.begin(), val.end() - 1));
  EXPECT_EQ(ys, std::vector<int32_t>(val.begin() + 1, val.end()));
  // B larger than the number of windows: one full batch, then the short window.
  EXPECT_EQ(ds.eval_batch_count(64, T), 2);
  EXPECT_EQ(ds.eval_batch(64, T, 0).count, 3);
  // No partial window when T divides val_size - 1.
  TokenDataset exact(scrambled(133), 33.0 / 133.0);
  ASSERT_EQ(exact.val_size(), 33);
  EXPECT_EQ(exact.eval_batch_count(3, 8), 2);
  EXPECT_EQ(exact.eval_batch(3, 8, 1).count, 1);
  EXPECT_EQ(exact.eval_batch(3, 8, 1).length, 8);
}

// The subset for cheap estimates: m full windows spread evenly (the first, the last full one and
// evenly between), B at a time; all full windows when m exceeds them; never the short one.
TEST(TokenDataset, SubsetBatchesSpreadFullWindowsOverTheSplit) {
  TokenDataset ds(scrambled(200), 0.5);  // val 100 tokens, T 8: 12 full windows + one of 3
  ASSERT_EQ(ds.val_size(), 100);
  const int64_t T = 8;
  const std::vector<int32_t> val(ds.val_data(), ds.val_data() + 100);
  auto starts_of = [&](int64_t m, int64_t B) {
    std::vector<int64_t> starts;
    for (int64_t i = 0; i < ds.subset_batch_count(m, B, T); ++i) {
      const EvalBatch b = ds.subset_batch(m, B, T, i);
      EXPECT_LE(b.count, B);
      EXPECT_EQ(b.length, T);
      const std::vector<int32_t> x = b.x.to_vector<int32_t>(), y = b.y.to_vector<int32_t>();
      for (int64_t w = 0; w < b.count; ++w) {
        const auto row = x.begin() + w * T;
        const auto at = std::search(val.begin(), val.end(), row, row + T);  // scrambled: unique
        EXPECT_EQ(std::vector<int32_t>(at + 1, at + 1 + T),
                  std::vector<int32_t>(y.begin() + w * T, y.begin() + (w + 1) * T));
        starts.push_back(at - val.begin());
      }
    }
    return starts;
  };
  EXPECT_EQ(starts_of(4, 3), (std::vector<int64_t>{0, 24, 56, 88}));  // windows 0, 3, 7, 11
  EXPECT_EQ(ds.subset_batch_count(4, 3, T), 2);
  EXPECT_EQ(starts_of(1, 5), (std::vector<int64_t>{0}));
  EXPECT_EQ(starts_of(50, 5).size(), 12u);  // every full window, in order
  EXPECT_EQ(starts_of(50, 5).back(), 88);
  EXPECT_TRUE(test::ThrowsWith([&] { ds.subset_batch(4, 3, T, 2); },
                               {"subset batch 2 is out of range [0, 2)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { ds.subset_batch_count(0, 3, T); }, {"subset windows"}));
}

TEST(TokenDatasetErrors, ValFractionAndTinyCorpora) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (double f : {0.0, 1.0, -0.1, 1.5, nan})
    EXPECT_TRUE(ThrowsWith([&] { TokenDataset(scrambled(100), f); },
                           {"[data]", "val_fraction must be in (0, 1)"}));
  EXPECT_TRUE(ThrowsWith([] { TokenDataset(scrambled(1)); },
                         {"[data]", "cannot split 1 tokens", "train split gets 0"}));
  EXPECT_TRUE(
      ThrowsWith([] { TokenDataset(std::vector<int32_t>{}); }, {"[data]", "cannot split 0"}));
}

TEST(TokenDatasetErrors, SplitShorterThanBlockSize) {
  TokenDataset ds(scrambled(100), 0.5);  // 50 train, 50 val
  Generator gen(0);
  EXPECT_TRUE(
      ThrowsWith([&] { ds.sample_batch(4, 64, gen); },
                 {"[data] the train split has 50 tokens; block_size 64 needs at least 65"}));
  EXPECT_TRUE(ThrowsWith([&] { ds.sample_batch(4, 50, gen); }, {"needs at least 51"}));
  EXPECT_EQ(gen.offset(), 0u);  // a refused call draws nothing
  EXPECT_TRUE(ThrowsWith([&] { ds.eval_windows(50); },
                         {"[data] the val split has 50 tokens; block_size 50 needs at least 51"}));
  EXPECT_TRUE(ThrowsWith([&] { ds.eval_batch_count(2, 64); }, {"the val split has 50 tokens"}));
  EXPECT_TRUE(ThrowsWith([&] { ds.check_block_size(64); }, {"the train split has 50 tokens"}));
  TokenDataset small_val(scrambled(100), 0.05);  // 95 train, 5 val
  EXPECT_TRUE(ThrowsWith([&] { small_val.check_block_size(8); },
                         {"the val split has 5 tokens; block_size 8 needs at least 9"}));
  EXPECT_NO_THROW(ds.check_block_size(49));
}

TEST(TokenDatasetErrors, NonPositiveSizesAndBadBatchIndex) {
  TokenDataset ds(scrambled(100));
  Generator gen(0);
  EXPECT_TRUE(ThrowsWith([&] { ds.sample_batch(0, 8, gen); }, {"[data]", "batch_size", "got 0"}));
  EXPECT_TRUE(ThrowsWith([&] { ds.sample_batch(4, -1, gen); }, {"[data]", "block_size", "got -1"}));
  EXPECT_TRUE(ThrowsWith([&] { ds.eval_windows(0); }, {"block_size must be positive"}));
  EXPECT_TRUE(ThrowsWith([&] { ds.eval_batch_count(0, 4); }, {"batch_size must be positive"}));
  EXPECT_TRUE(ThrowsWith([&] { ds.check_block_size(0); }, {"block_size must be positive"}));
  EXPECT_TRUE(ThrowsWith([&] { ds.eval_batch(2, 4, 2); }, {"[data]", "eval batch 2", "[0, 2)"}));
  EXPECT_TRUE(ThrowsWith([&] { ds.eval_batch(2, 4, -1); }, {"eval batch -1"}));
}

}  // namespace
}  // namespace lmlab::data
