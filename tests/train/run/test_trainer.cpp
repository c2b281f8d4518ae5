// lmlab::train called directly: bit-exact resume (plain, dropout, grad_accum), resuming a finished
// run, the files a run writes (config.yaml, metrics.csv, sample.txt, checkpoint), loss going down,
// --init-from with a weights-only or a partial checkpoint, and the resume / init config checks.
#include <algorithm>
#include <cmath>

#include "data/tokenizer.h"
#include "tests/test_util.h"
#include "tests/train/cli_util.h"
#include "train/io/checkpoint.h"
#include "train/run/trainer.h"

namespace lmlab::train {
namespace {

namespace fs = std::filesystem;

using test::csv_rows;
using test::read_file;
using test::TempDir;
using test::weights_only;

const char* kHeader =
    "step,tokens,lr,train_loss,val_loss,val_bpb,val_subset_loss,grad_norm,clipped,tokens_per_s,"
    "elapsed_s";

// configs/tiny.yaml on `corpus`, 1 thread (fast on a busy machine; the bit-exact tests set 2),
// writing to `run_dir`, plus `sets`.
TrainConfig tiny(const std::string& corpus, const std::string& run_dir,
                 std::vector<std::string> sets = {}) {
  std::vector<std::string> all{"data.corpus=" + corpus, "train.run_dir=" + run_dir,
                               "train.threads=1"};
  all.insert(all.end(), sets.begin(), sets.end());
  return load_config(test::tiny_config(), all);
}

TrainResult run(const TrainConfig& cfg, bool resume = false, const std::string& init = "") {
  TrainOptions o;
  o.quiet = true;
  o.resume = resume;
  o.init_from = init;
  return train(cfg, o);
}

using test::expect_same_metrics;
using test::expect_same_tensors;

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override { test::write_file(corpus_, test::small_corpus()); }
  TempDir dir_{"trainer"};
  std::string corpus_ = dir_ / "corpus.txt";
};

// Full run of 8 steps (checkpoint every 4) vs. a run stopped at 4 and resumed to 8, on 2 threads.
// decay_iters is pinned so the lr schedule does not depend on max_iters, and eval_interval divides
// 4 so the stopped run's final evaluation is one the full run makes too.
class ResumeTest : public TrainerTest,
                   public ::testing::WithParamInterface<std::vector<std::string>> {};

TEST_P(ResumeTest, IsBitExact) {
  std::vector<std::string> sets{"optim.decay_iters=8", "train.eval_interval=2",
                                "train.checkpoint_interval=4", "train.threads=2"};
  sets.insert(sets.end(), GetParam().begin(), GetParam().end());
  const std::string full = dir_ / "full", split = dir_ / "split";
  sets.push_back("train.max_iters=8");
  TrainResult a = run(tiny(corpus_, full, sets));
  sets.back() = "train.max_iters=4";
  TrainResult b1 = run(tiny(corpus_, split, sets));
  EXPECT_EQ(b1.steps, 4);
  EXPECT_EQ(load_checkpoint(split + "/ckpt.safetensors").state.step, 4);
  sets.back() = "train.max_iters=8";
  TrainResult b2 = run(tiny(corpus_, split, sets), /*resume=*/true);
  EXPECT_EQ(a.steps, 8);
  EXPECT_EQ(b2.steps, 8);
  EXPECT_FALSE(a.diverged || b2.diverged || a.interrupted || b2.interrupted);
  EXPECT_EQ(a.final_val_loss, b2.final_val_loss);
  EXPECT_EQ(a.best_val_loss, b2.best_val_loss);
  EXPECT_EQ(csv_rows(full + "/metrics.csv").size(), 8u);
  expect_same_metrics(full + "/metrics.csv", split + "/metrics.csv");
  expect_same_tensors(full + "/ckpt.safetensors", split + "/ckpt.safetensors");
  EXPECT_EQ(read_file(full + "/sample.txt"), read_file(split + "/sample.txt"));
  const CheckpointState sa = load_checkpoint(full + "/ckpt.safetensors").state;
  const CheckpointState sb = load_checkpoint(split + "/ckpt.safetensors").state;
  EXPECT_EQ(sa.tokens_seen, sb.tokens_seen);
  EXPECT_EQ(sa.data_offset, sb.data_offset);
  EXPECT_EQ(sa.dropout_offset, sb.dropout_offset);
}

INSTANTIATE_TEST_SUITE_P(
    Trainer, ResumeTest,
    ::testing::Values(std::vector<std::string>{}, std::vector<std::string>{"model.dropout=0.2"},
                      std::vector<std::string>{"train.grad_accum=2"},
                      std::vector<std::string>{"model.dropout=0.1", "train.grad_accum=2",
                                               "optim.name=sgd"},
                      std::vector<std::string>{"train.precision=bf16", "model.dropout=0.1"}));

TEST_F(TrainerTest, DropoutStateIsCheckpointed) {
  const std::string d = dir_ / "drop";
  run(tiny(corpus_, d, {"model.dropout=0.2", "train.max_iters=6"}));
  const CheckpointState s = load_checkpoint(d + "/ckpt.safetensors").state;
  EXPECT_GT(s.dropout_offset, 0u) << "dropout drew no random numbers, or its state was not saved";
  EXPECT_EQ(s.data_offset, 6u * 4u);  // 6 steps of batch_size 4
  EXPECT_EQ(s.tokens_seen, 6 * 4 * 16);
}

TEST_F(TrainerTest, ResumingAFinishedRunIsANoOpThatReports) {
  const std::string d = dir_ / "done";
  const TrainConfig cfg = tiny(corpus_, d, {"train.max_iters=8", "train.eval_interval=4"});
  const TrainResult first = run(cfg);
  const std::string metrics = read_file(d + "/metrics.csv"),
                    ckpt = read_file(d + "/ckpt.safetensors");
  const TrainResult again = run(cfg, /*resume=*/true);
  EXPECT_EQ(again.steps, 8);
  EXPECT_FALSE(again.diverged || again.interrupted);
  EXPECT_EQ(again.final_val_loss, first.final_val_loss);
  EXPECT_EQ(again.best_val_loss, first.best_val_loss);
  EXPECT_EQ(read_file(d + "/metrics.csv"), metrics);
  EXPECT_EQ(read_file(d + "/ckpt.safetensors"), ckpt);
}

TEST_F(TrainerTest, WritesConfigMetricsSampleAndCheckpoint) {
  const std::string d = dir_ / "files";
  TrainConfig cfg = tiny(corpus_, d,
                         {"train.max_iters=12", "train.eval_interval=5", "train.sample_prompt=the",
                          "train.sample_tokens=30"});
  const TrainResult r = run(cfg);
  EXPECT_EQ(r.run_dir, d);
  EXPECT_EQ(r.steps, 12);
  EXPECT_GT(r.tokens_per_s, 0);
  // config.yaml: the run's config, with vocab_size resolved from the tokenizer.
  cfg.model.vocab_size = data::Tokenizer::chars(test::small_corpus()).vocab_size();
  ASSERT_GT(cfg.model.vocab_size, 20);
  TrainConfig written = load_config(d + "/config.yaml");
  written.source = cfg.source = "";
  EXPECT_EQ(to_yaml(written), to_yaml(cfg));
  EXPECT_EQ(written.train, cfg.train);
  EXPECT_EQ(written.train.threads, 1);
  // metrics.csv: the header, one row per step (log_interval 1), val_loss at steps 0, 4, 9, 11.
  EXPECT_EQ(test::first_line(d + "/metrics.csv"), kHeader);
  const auto rows = csv_rows(d + "/metrics.csv");
  ASSERT_EQ(rows.size(), 12u);
  for (size_t i = 0; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), 11u);
    EXPECT_EQ(rows[i][0], std::to_string(i));
    EXPECT_EQ(rows[i][1], std::to_string((i + 1) * 4 * 16));
    const bool eval = i == 0 || i == 4 || i == 9 || i == 11;
    EXPECT_EQ(rows[i][4].empty(), !eval) << "row " << i;
    EXPECT_EQ(rows[i][5].empty(), !eval) << "row " << i;  // val_bpb beside val_loss
    EXPECT_TRUE(std::isfinite(std::stod(rows[i][3])));
    EXPECT_TRUE(rows[i][6].empty()) << "no subset estimates unless asked";
    EXPECT_GT(std::stod(rows[i][7]), 0);
  }
  EXPECT_NEAR(std::stod(rows[11][4]), r.final_val_loss, 1e-6 * r.final_val_loss);
  // sample.txt: the prompt, 30 generated characters, a newline.
  const std::string sample = read_file(d + "/sample.txt");
  EXPECT_EQ(sample.substr(0, 3), "the");
  EXPECT_EQ(sample.size(), 3u + 30u + 1u);
  // The checkpoint: step, config and tokenizer metadata, optimizer state.
  Checkpoint c = load_checkpoint(d + "/ckpt.safetensors");
  EXPECT_EQ(c.state.step, 12);
  EXPECT_TRUE(c.has_optimizer);
  c.config.source = "";
  EXPECT_EQ(to_yaml(c.config), to_yaml(cfg));
  EXPECT_TRUE(test::temp_leftovers(d).empty());
}

TEST_F(TrainerTest, LossGoesDownOnARepetitiveCorpus) {
  const std::string d = dir_ / "learn";
  const TrainResult r = run(tiny(
      corpus_, d,
      {"train.max_iters=60", "train.eval_interval=30", "optim.lr=3e-3", "optim.warmup_iters=5"}));
  const auto rows = csv_rows(d + "/metrics.csv");
  ASSERT_EQ(rows.size(), 60u);
  double first = 0, last = 0;
  for (int i = 0; i < 5; ++i) first += std::stod(rows[i][3]) / 5;
  for (int i = 55; i < 60; ++i) last += std::stod(rows[i][3]) / 5;
  const double V = double(data::Tokenizer::chars(test::small_corpus()).vocab_size());
  EXPECT_NEAR(first, std::log(V), 0.3);  // near-uniform predictions at init
  EXPECT_LT(last, first - 0.7) << "train loss " << first << " -> " << last;
  EXPECT_LT(r.final_val_loss, std::stod(rows[0][4]) - 0.7);
  EXPECT_LE(r.best_val_loss, r.final_val_loss);
}

TEST_F(TrainerTest, InitFromAWeightsOnlyCheckpoint) {
  const std::string a = dir_ / "a", b = dir_ / "b", c = dir_ / "c";
  const std::vector<std::string> sets_a{"train.max_iters=25", "optim.lr=5e-3"};
  run(tiny(corpus_, a, sets_a));
  const std::string w = weights_only(a + "/ckpt.safetensors", dir_ / "w.safetensors");
  const Checkpoint wc = load_checkpoint(w);
  EXPECT_FALSE(wc.has_optimizer);
  EXPECT_EQ(wc.state.step, 0);
  run(tiny(corpus_, b, {"train.max_iters=3"}), false, w);
  run(tiny(corpus_, c, {"train.max_iters=3"}));
  const double warm = std::stod(csv_rows(b + "/metrics.csv")[0][3]);
  const double cold = std::stod(csv_rows(c + "/metrics.csv")[0][3]);
  EXPECT_LT(warm, cold - 0.5) << "--init-from did not load the trained weights";
  // Resuming from a weights-only checkpoint is refused: there is no optimizer state to continue.
  fs::copy_file(w, b + "/ckpt.safetensors", fs::copy_options::overwrite_existing);
  EXPECT_TRUE(test::ThrowsWith([&] { run(tiny(corpus_, b, sets_a), true); },
                               {"weights only", b + "/ckpt.safetensors"}));
}

// --init-from a checkpoint lacking one parameter (deleted here; in practice the config added a
// layer or a norm): refused naming it and --init-missing; with init_missing the run starts, the
// missing parameter at its init (a fresh run's, as a learning rate of 1e-30 leaves it), the others
// at the checkpoint's values.
TEST_F(TrainerTest, InitFromACheckpointLackingAParameterNeedsInitMissing) {
  const std::string a = dir_ / "a", b = dir_ / "b", fresh = dir_ / "fresh";
  const std::string partial = dir_ / "partial.safetensors", dropped = "blocks.1.attn.wk.weight";
  run(tiny(corpus_, a, {"train.max_iters=3", "optim.lr=5e-3"}));
  SafeTensors st = load_safetensors(a + "/ckpt.safetensors");
  ASSERT_EQ(st.tensors.erase(dropped), 1u);
  save_safetensors(partial, st);
  const std::vector<std::string> still{"train.max_iters=2", "optim.lr=1e-30", "optim.min_lr=1e-30"};
  EXPECT_TRUE(test::ThrowsWith(
      [&] { run(tiny(corpus_, b, still), false, partial); },
      {partial + " lacks 1 parameter of this model: " + dropped, "--init-missing"}));
  TrainOptions o;
  o.quiet = true;
  o.init_from = partial;
  o.init_missing = true;
  ::testing::internal::CaptureStderr();
  const TrainResult r = train(tiny(corpus_, b, still), o);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(r.steps, 2);
  EXPECT_NE(
      err.find("init-from: 1 parameter not in " + partial + " starts at its init: " + dropped),
      std::string::npos)
      << err;
  run(tiny(corpus_, fresh, still));
  const SafeTensors got = load_safetensors(b + "/ckpt.safetensors");
  const SafeTensors init = load_safetensors(fresh + "/ckpt.safetensors");
  auto max_diff = [](const Tensor& x, const Tensor& y) {
    const std::vector<float> u = x.to_vector<float>(), v = y.to_vector<float>();
    float m = 0;
    for (size_t i = 0; i < u.size(); ++i) m = std::max(m, std::fabs(u[i] - v[i]));
    return m;
  };
  EXPECT_LT(max_diff(got.at(dropped), init.at(dropped)), 1e-6f);
  EXPECT_GT(max_diff(got.at(dropped), load_safetensors(a + "/ckpt.safetensors").at(dropped)),
            1e-4f);
  EXPECT_LT(max_diff(got.at("wte.weight"), st.at("wte.weight")), 1e-6f);
  EXPECT_GT(max_diff(got.at("wte.weight"), init.at("wte.weight")), 1e-4f);
}

TEST_F(TrainerTest, ResumeRefusesAnotherModelAndInitFromChecksShapes) {
  const std::string a = dir_ / "a";
  run(tiny(corpus_, a, {"train.max_iters=2"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        run(tiny(corpus_, a, {"train.max_iters=4", "model.n_embd=64"}), true);
      },
      {a + "/ckpt.safetensors",
       "was written with model.n_embd 32, this config has model.n_embd 64"}));
  // Allowed on resume: a longer run, other logging / checkpoint cadences, the run directory
  // spelt another way (or moved).
  EXPECT_EQ(run(tiny(corpus_, a + "/", {"train.max_iters=4", "train.eval_interval=3"}), true).steps,
            4);
  const std::string moved = dir_ / "moved";
  fs::rename(a, moved);
  const TrainResult r = run(tiny(corpus_, moved, {"train.max_iters=5"}), true);
  EXPECT_EQ(r.steps, 5);
  EXPECT_EQ(csv_rows(moved + "/metrics.csv").size(), 5u);
  fs::rename(moved, a);
  const std::string b = dir_ / "b";
  EXPECT_TRUE(test::ThrowsWith(
      [&] { run(tiny(corpus_, b, {"model.n_embd=64"}), false, a + "/ckpt.safetensors"); },
      {a + "/ckpt.safetensors", "(", "32", "64"}));
}

}  // namespace
}  // namespace lmlab::train
