// Per-layer diagnostics: parameter-to-block mapping, and the probe's gradient norms, residual RMS
// and update ratios against direct computation on a small model; the trainer writes them at step
// 0 and at every evaluation.
#include <gtest/gtest.h>

#include <cmath>

#include "tests/train/cli_util.h"
#include "train/run/diagnostics.h"
#include "train/run/trainer.h"

namespace lmlab::train {
namespace {

TEST(Diagnostics, BlockOfParameterNames) {
  EXPECT_EQ(block_of("blocks.0.attn.wq.weight"), 0);
  EXPECT_EQ(block_of("blocks.12.norm1.weight"), 12);
  EXPECT_EQ(block_of("wte.weight"), -1);
  EXPECT_EQ(block_of("norm_f.weight"), -1);
  EXPECT_EQ(block_of("blocks.x.y"), -1);
  EXPECT_EQ(block_of("blocks."), -1);
  EXPECT_EQ(block_of("blocksy.1.w"), -1);
}

double sum_sq(const Tensor& t) {
  double s = 0;
  for (double v : t.to(DType::F64).to_vector<double>()) s += v * v;
  return s;
}

TEST(Diagnostics, ProbeMatchesDirectComputation) {
  const nn::ModelConfig c{
      .vocab_size = 11, .block_size = 6, .n_layer = 3, .n_head = 2, .n_kv_head = 2, .n_embd = 8};
  Generator gen(5);
  nn::TransformerLM model(c, gen);
  const Tensor ids =
      Tensor::from_vector(std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 1}, {2, 6});
  tape::backward(model.loss(ids, ids));

  DiagnosticsProbe probe;
  probe.before(model, ids);
  // A known update: every block parameter moves by 0.01 * its gradient.
  std::vector<double> d2(3, 0.0), w2(3, 0.0), g2(3, 0.0);
  {
    NoGradGuard guard;
    for (const auto& [name, p] : model.named_parameters()) {
      const int64_t b = block_of(name);
      if (b < 0) continue;
      g2[size_t(b)] += sum_sq(p.grad());
      w2[size_t(b)] += sum_sq(p);
      d2[size_t(b)] += sum_sq(p.grad()) * 1e-4;
      Tensor w = p;  // a handle to the same parameter
      w.copy_(sub(p, mul(p.grad(), 0.01)));
    }
  }
  const std::vector<LayerDiagnostics> rows = probe.after(model);
  ASSERT_EQ(rows.size(), 3u);
  std::vector<Tensor> hidden;
  {
    NoGradGuard guard;
    Generator g2en(5);
    nn::TransformerLM fresh(c, g2en);  // the same weights as `model` before the update
    fresh.forward_hidden(ids, &hidden);
  }
  for (size_t l = 0; l < 3; ++l) {
    SCOPED_TRACE(l);
    EXPECT_EQ(rows[l].layer, int64_t(l));
    EXPECT_NEAR(rows[l].grad_norm, std::sqrt(g2[l]), 1e-5 * std::sqrt(g2[l]));
    EXPECT_NEAR(rows[l].weight_norm, std::sqrt(w2[l]), 1e-5 * std::sqrt(w2[l]));
    EXPECT_NEAR(rows[l].update_ratio, std::sqrt(d2[l]) / std::sqrt(w2[l]),
                1e-3 * rows[l].update_ratio);
    const double rms = std::sqrt(sum_sq(hidden[l]) / double(hidden[l].numel()));
    EXPECT_NEAR(rows[l].residual_rms, rms, 1e-5 * rms);
    EXPECT_GT(rows[l].grad_norm, 0);
  }
  EXPECT_NE(diagnostics_rows(7, rows).find("7,2,"), std::string::npos);
}

// The trainer writes diagnostics.csv (step 0 and each eval, one row per block), result.json with
// the clip count, and rewinds diagnostics.csv on resume like metrics.csv.
TEST(Diagnostics, TrainerWritesThemAtStepZeroAndEachEval) {
  test::TempDir dir("diag");
  test::write_file(dir / "corpus.txt", test::small_corpus());
  TrainConfig cfg = load_config(
      test::tiny_config(), {"data.corpus=" + (dir / "corpus.txt"), "train.max_iters=12",
                            "train.eval_interval=5", "train.threads=1", "train.sample_tokens=0",
                            "optim.warmup_iters=2", "train.checkpoint_interval=6"});
  cfg.train.run_dir = dir / "run";
  TrainOptions quiet;
  quiet.quiet = true;
  train(cfg, quiet);
  const auto rows = test::csv_rows(dir / "run/diagnostics.csv");
  ASSERT_EQ(rows.size(), 4u * 2u);  // steps 0, 4, 9, 11 x 2 blocks
  EXPECT_EQ(rows[0][0], "0");
  EXPECT_EQ(rows[1][1], "1");
  EXPECT_EQ(rows[2][0], "4");
  EXPECT_EQ(rows[7][0], "11");
  for (const auto& r : rows) {
    ASSERT_EQ(r.size(), 6u);
    for (size_t k = 2; k < 6; ++k) EXPECT_TRUE(std::isfinite(std::stod(r[k])));
  }
  const std::string result = test::read_file(dir / "run/result.json");
  EXPECT_NE(result.find("\"clipped_steps\""), std::string::npos);
  EXPECT_NE(result.find("\"steps\": 12"), std::string::npos);
  EXPECT_NE(result.find("\"diverged\": false"), std::string::npos);

  // A run stopped at step 6 and resumed to 12 gives the same rows, plus those of its own last
  // step before the stop (step 5 was the end of the first leg, hence an evaluation).
  TrainConfig leg = cfg;
  leg.optim.decay_iters = 12;  // the same schedule for both legs
  leg.train.run_dir = dir / "legs";
  leg.train.max_iters = 6;
  train(leg, quiet);
  leg.train.max_iters = 12;
  TrainOptions resume = quiet;
  resume.resume = true;
  train(leg, resume);
  TrainConfig straight = cfg;
  straight.optim.decay_iters = 12;
  straight.train.run_dir = dir / "straight";
  train(straight, quiet);
  auto legs = test::csv_rows(dir / "legs/diagnostics.csv");
  std::erase_if(legs, [](const std::vector<std::string>& r) { return r[0] == "5"; });
  EXPECT_EQ(legs, test::csv_rows(dir / "straight/diagnostics.csv"));
}

}  // namespace
}  // namespace lmlab::train
