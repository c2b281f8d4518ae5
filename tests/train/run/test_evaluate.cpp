// evaluate(): the whole validation split, and the subset estimate (subset_windows) that
// train.val_subset_interval logs between whole-split evaluations, which must leave the run as it
// is.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "autograd/random.h"
#include "data/dataset.h"
#include "data/tokenizer.h"
#include "nn/transformer.h"
#include "tests/test_util.h"
#include "tests/train/cli_util.h"
#include "train/config/config.h"
#include "train/run/trainer.h"

namespace lmlab::train {
namespace {

struct SmallModel {
  std::string text = test::small_corpus();
  data::Tokenizer tok = data::Tokenizer::make("char", text);
  data::TokenDataset data{tok.encode(text), 0.3};
  nn::ModelConfig mc{.vocab_size = tok.vocab_size(),
                     .block_size = 16,
                     .n_layer = 1,
                     .n_head = 2,
                     .n_kv_head = 2,
                     .n_embd = 16};
  Generator gen{3};
  nn::TransformerLM model{mc, gen};
  SmallModel() { model.eval(); }
};

// Across the ranks of one process (rank 0 of 1) the plain evaluation, bit for bit.
TEST(Evaluate, AcrossRanksOfOneIsThePlainEvaluation) {
  SmallModel s;
  int64_t n1 = 0, n2 = 0;
  const double plain = evaluate(s.model, s.data, 3, &n1);
  const double split = evaluate(s.model, s.data, 3, &n2, true);
  EXPECT_EQ(plain, split);
  EXPECT_EQ(n1, n2);
  EXPECT_EQ(n1, s.data.val_size() - 1);
}

// A subset of every full window is the whole split but its short last window.
TEST(Evaluate, ASubsetOfEveryFullWindowIsTheSplitButItsShortWindow) {
  SmallModel s;
  const int64_t full = (s.data.val_size() - 1) / 16;
  ASSERT_GE(full, 6);
  int64_t tokens = 0;
  evaluate(s.model, s.data, 4, &tokens, false, full + 5);
  EXPECT_EQ(tokens, full * 16);
}

// Three windows: the first, the middle and the last full one, token-weighted; the same ones every
// call, for any batch size; across ranks (of one process) the same number.
TEST(Evaluate, ASubsetIsTheMeanOverWindowsSpreadOverTheSplit) {
  SmallModel s;
  const int64_t full = (s.data.val_size() - 1) / 16;
  double total = 0;
  for (int64_t i = 0; i < 3; ++i) {
    const data::EvalBatch b = s.data.subset_batch(3, 1, 16, i);
    NoGradGuard guard;
    total += s.model.loss(b.x, b.y).item() * double(b.tokens());
  }
  const std::vector<int32_t> x0 = s.data.subset_batch(3, 1, 16, 2).x.to_vector<int32_t>();
  EXPECT_EQ(x0, s.data.eval_batch(1, 16, full - 1).x.to_vector<int32_t>()) << "the last full one";
  int64_t tokens = 0;
  const double est = evaluate(s.model, s.data, 2, &tokens, false, 3);
  EXPECT_EQ(tokens, 3 * 16);
  EXPECT_NEAR(est, total / 48.0, 1e-6);
  EXPECT_EQ(evaluate(s.model, s.data, 2, nullptr, false, 3), est);
  EXPECT_EQ(evaluate(s.model, s.data, 2, nullptr, true, 3), est);
}

// A run with subset estimates every 2 steps is the run without them: the same weights, the same
// training rows; the estimates fill val_subset_loss on their steps (evaluation steps included) and
// add rows between log_interval's.
TEST(Evaluate, SubsetEstimatesLeaveTheRunAsItIs) {
  test::TempDir dir("subset_val");
  const std::string corpus = dir / "corpus.txt";
  test::write_file(corpus, test::small_corpus());
  auto cfg = [&](const std::string& name, std::vector<std::string> sets) {
    sets.insert(sets.end(), {"data.corpus=" + corpus, "train.run_dir=" + (dir / name),
                             "train.threads=1", "train.max_iters=12", "train.eval_interval=6",
                             "train.log_interval=3", "model.dropout=0.1"});
    return load_config(test::tiny_config(), sets);
  };
  TrainOptions quiet;
  quiet.quiet = true;
  train(cfg("plain", {}), quiet);
  train(cfg("est", {"train.val_subset_interval=2", "train.val_subset_tokens=100"}), quiet);
  test::expect_same_tensors(dir / "plain/ckpt.safetensors", dir / "est/ckpt.safetensors");
  const auto plain = test::csv_rows(dir / "plain/metrics.csv");
  const auto est = test::csv_rows(dir / "est/metrics.csv");
  std::set<std::string> estimated;
  size_t matched = 0;
  for (const auto& row : est) {
    const int64_t step = std::stoll(row[0]);
    if ((step + 1) % 2 == 0) {  // evaluation steps too: the offset to the whole split shows
      ASSERT_FALSE(row[6].empty()) << "step " << step;
      EXPECT_TRUE(std::isfinite(std::stod(row[6])) && std::stod(row[6]) > 0) << row[6];
      estimated.insert(row[0]);
    } else {
      EXPECT_TRUE(row[6].empty()) << "step " << step;
    }
    for (const auto& p : plain)
      if (p[0] == row[0]) {
        ++matched;
        for (int col : {1, 2, 3, 4, 5, 7, 8}) EXPECT_EQ(p[size_t(col)], row[size_t(col)]);
      }
  }
  EXPECT_EQ(estimated, (std::set<std::string>{"1", "3", "5", "7", "9", "11"}));
  EXPECT_EQ(matched, plain.size()) << "every row of the plain run is in the estimated one";
}

}  // namespace
}  // namespace lmlab::train
