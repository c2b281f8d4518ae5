// evaluate(): the whole validation split, and the subset estimate (max_batches) that
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

TEST(Evaluate, ASubsetOfAtLeastEveryBatchIsTheWholeSplit) {
  SmallModel s;
  const int64_t n = s.data.eval_batch_count(2, 16);
  ASSERT_GE(n, 4);
  int64_t all = 0, capped = 0;
  const double whole = evaluate(s.model, s.data, 2, &all);
  EXPECT_EQ(evaluate(s.model, s.data, 2, &capped, false, n + 5), whole);
  EXPECT_EQ(capped, all);
  EXPECT_EQ(all, s.data.val_size() - 1);
}

// Three batches: the first, the middle and the last of the split, token-weighted; the same ones
// every call; across ranks (of one process) the same number.
TEST(Evaluate, ASubsetIsTheTokenWeightedMeanOfBatchesSpreadOverTheSplit) {
  SmallModel s;
  const int64_t n = s.data.eval_batch_count(2, 16);
  ASSERT_GE(n, 5);
  double total = 0;
  int64_t count = 0;
  for (int64_t i : {int64_t{0}, (n - 1) / 2, n - 1}) {
    const data::EvalBatch b = s.data.eval_batch(2, 16, i);
    NoGradGuard guard;
    total += s.model.loss(b.x, b.y).item() * double(b.tokens());
    count += b.tokens();
  }
  int64_t tokens = 0;
  const double est = evaluate(s.model, s.data, 2, &tokens, false, 3);
  EXPECT_EQ(tokens, count);
  EXPECT_NEAR(est, total / double(count), 1e-12);
  EXPECT_EQ(evaluate(s.model, s.data, 2, nullptr, false, 3), est);
  EXPECT_EQ(evaluate(s.model, s.data, 2, nullptr, true, 3), est);
  int64_t one = 0;
  evaluate(s.model, s.data, 2, &one, false, 1);  // one batch: the split's first
  EXPECT_EQ(one, s.data.eval_batch(2, 16, 0).tokens());
}

// A run with subset estimates every 2 steps is the run without them: the same weights, the same
// training rows; the estimates fill val_subset_loss on their steps (not on evaluation steps) and
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
    const bool eval = step == 0 || (step + 1) % 6 == 0;
    if ((step + 1) % 2 == 0 && !eval) {
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
  EXPECT_EQ(estimated, (std::set<std::string>{"1", "3", "7", "9"}));
  EXPECT_EQ(matched, plain.size()) << "every row of the plain run is in the estimated one";
}

}  // namespace
}  // namespace lmlab::train
