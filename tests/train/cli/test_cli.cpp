// The `lmlab` binary run as a user runs it: SIGINT / SIGTERM then --resume, divergence (exit 3),
// eval and sample on trained, weights-only and foreign corpora, and every bad input (exit 1 for
// errors, 2 for usage, a message naming the file / key / shape, no half-written file) and --help.
#include <cmath>
#include <nlohmann/json.hpp>

#include "autograd/kernels/cuda_runtime.h"
#include "tests/test_util.h"
#include "tests/train/cli_util.h"
#include "train/io/checkpoint.h"

namespace lmlab::train {
namespace {

namespace fs = std::filesystem;

using test::all_finite;
using test::ChildOptions;
using test::csv_rows;
using test::expect_failure;
using test::expect_steps;
using test::field;
using test::read_file;
using test::RunResult;
using test::TempDir;
using test::weights_only;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override { test::write_file(corpus_, test::small_corpus()); }

  // `lmlab train tiny.yaml` on the small corpus, 1 thread (fast on a busy machine; the bit-exact
  // test sets 2), quiet, into `run_dir`, plus `sets`.
  std::vector<std::string> train_args(const std::string& run_dir,
                                      std::vector<std::string> sets = {},
                                      std::vector<std::string> extra = {}) const {
    std::vector<std::string> a{
        "train", test::tiny_config(),      "--quiet", "--run-dir",      run_dir,
        "--set", "data.corpus=" + corpus_, "--set",   "train.threads=1"};
    for (const std::string& s : sets) a.insert(a.end(), {"--set", s});
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  RunResult lmlab(const std::vector<std::string>& args, const ChildOptions& o = {}) const {
    return test::run_lmlab(args, io_.str(), o);
  }
  RunResult train(const std::string& run_dir, std::vector<std::string> sets = {},
                  std::vector<std::string> extra = {}, const ChildOptions& o = {}) const {
    return lmlab(train_args(run_dir, sets, extra), o);
  }

  TempDir dir_{"cli"};
  TempDir io_{"cli_io"};  // the children's stdout / stderr files, apart from the run dirs
  std::string corpus_ = dir_ / "corpus.txt";
};

class SignalTest : public CliTest, public ::testing::WithParamInterface<int> {};

TEST_P(SignalTest, CheckpointsExits130AndResumes) {
  const std::string run = dir_ / "run";
  test::Child child(
      [&] {
        std::vector<std::string> a{test::lmlab_binary()};
        for (const std::string& s :
             train_args(run, {"train.max_iters=5000", "train.eval_interval=1000"}))
          a.push_back(s);
        return a;
      }(),
      io_.str());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (csv_rows(run + "/metrics.csv").size() < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_GE(csv_rows(run + "/metrics.csv").size(), 3u) << child.err();
  child.signal(GetParam());
  ASSERT_EQ(child.wait(30), 130) << child.err();
  EXPECT_NE(child.err().find("interrupted (signal " + std::to_string(GetParam())),
            std::string::npos)
      << child.err();
  EXPECT_NE(child.err().find("--resume"), std::string::npos);

  const size_t rows = csv_rows(run + "/metrics.csv").size();
  ASSERT_LT(rows, 5000u);
  expect_steps(run + "/metrics.csv", rows);
  const Checkpoint c = load_checkpoint(run + "/ckpt.safetensors");
  EXPECT_EQ(c.state.step, int64_t(rows));
  EXPECT_TRUE(c.has_optimizer);
  EXPECT_FALSE(fs::exists(run + "/sample.txt")) << "an interrupted run writes no sample";
  EXPECT_TRUE(test::temp_leftovers(run).empty());

  const std::string until = "train.max_iters=" + std::to_string(rows + 3);
  auto args = train_args(run, {until, "train.eval_interval=1000"}, {"--resume"});
  args.erase(args.begin() + 2);  // not --quiet: the banner says where it resumes
  const RunResult r = lmlab(args);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("resuming at step " + std::to_string(rows)), std::string::npos) << r.out;
  expect_steps(run + "/metrics.csv", rows + 3);
  EXPECT_EQ(load_checkpoint(run + "/ckpt.safetensors").state.step, int64_t(rows + 3));
}

INSTANTIATE_TEST_SUITE_P(Cli, SignalTest, ::testing::Values(SIGINT, SIGTERM));

TEST_F(CliTest, AKilledRunResumesFromItsLastCheckpointBitExact) {
  // SIGKILL leaves metrics.csv rows past the last checkpoint; --resume drops and redoes them.
  const std::vector<std::string> sets{"optim.decay_iters=20", "train.eval_interval=5",
                                      "train.checkpoint_interval=5", "train.threads=2"};
  auto with = [&](std::vector<std::string> s, const std::string& max_iters) {
    s.push_back("train.max_iters=" + max_iters);
    return s;
  };
  const std::string full = dir_ / "full", run = dir_ / "run";
  ASSERT_EQ(train(full, with(sets, "20")).code, 0);
  std::vector<std::string> argv{test::lmlab_binary()};
  for (const std::string& a : train_args(run, with(sets, "5000"))) argv.push_back(a);
  test::Child child(argv, io_.str());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (csv_rows(run + "/metrics.csv").size() < 7 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  child.signal(SIGKILL);
  ASSERT_EQ(child.wait(30), 128 + SIGKILL);
  const int64_t saved = load_checkpoint(run + "/ckpt.safetensors").state.step;
  ASSERT_GE(saved, 5);
  ASSERT_LT(saved, 20) << "the child ran too far before the kill landed";
  ASSERT_EQ(train(run, with(sets, "20"), {"--resume"}).code, 0);
  const auto a = csv_rows(full + "/metrics.csv"), b = csv_rows(run + "/metrics.csv");
  ASSERT_EQ(a.size(), 20u);
  ASSERT_EQ(b.size(), 20u);
  for (size_t i = 0; i < a.size(); ++i)
    for (int col : {0, 1, 2, 3, 4, 5})
      EXPECT_EQ(a[i][col], b[i][col])
          << "row " << i << " column " << col << " (resumed at " << saved << ")";
}

TEST_F(CliTest, DivergenceExits3AndKeepsThePreviousCheckpoint) {
  const std::string run = dir_ / "run";
  const std::vector<std::string> sets{"train.checkpoint_interval=5", "optim.decay_iters=20"};
  auto first = sets;
  first.push_back("train.max_iters=10");
  ASSERT_EQ(train(run, first).code, 0);
  const std::string ckpt = read_file(run + "/ckpt.safetensors");
  // Test hook in train/run/trainer.cpp: a NaN in one gradient at step 12.
  ChildOptions fault;
  fault.env = {"LMLAB_FAULT_NAN_AT_STEP=12"};
  auto second = sets;
  second.push_back("train.max_iters=20");
  const RunResult r = train(run, second, {"--resume"}, fault);
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("diverged at step 12: non-finite gradient norm"), std::string::npos)
      << r.err;
  const std::string json = read_file(run + "/diverged.json");
  EXPECT_NE(json.find("\"step\": 12"), std::string::npos) << json;
  const auto rows = csv_rows(run + "/metrics.csv");
  ASSERT_EQ(rows.size(), 12u);  // steps 0..11 logged, the diverging step not
  const size_t at = json.find("\"last_finite_loss\": ");
  ASSERT_NE(at, std::string::npos) << json;
  EXPECT_NEAR(std::stod(json.substr(at + 20)), std::stod(rows[11][3]), 1e-5);
  // The checkpoint of step 10 is untouched (byte for byte), loadable and finite.
  EXPECT_EQ(read_file(run + "/ckpt.safetensors"), ckpt);
  const Checkpoint c = load_checkpoint(run + "/ckpt.safetensors");
  EXPECT_EQ(c.state.step, 10);
  EXPECT_TRUE(all_finite(c));
  EXPECT_TRUE(test::temp_leftovers(run).empty());
  // Without the fault the same resume finishes, and diverged.json is cleared.
  ASSERT_EQ(train(run, second, {"--resume"}).code, 0);
  EXPECT_FALSE(fs::exists(run + "/diverged.json"));
  expect_steps(run + "/metrics.csv", 20);
}

TEST_F(CliTest, AHugeLearningRateDivergesWithExit3) {
  // SGD at lr 1e30 without clipping: the first update makes the weights huge but finite, and the
  // validation pass right after step 0 overflows. That is divergence at step 0: no checkpoint
  // (whose best_val_loss would be NaN) is written.
  const std::string run = dir_ / "run";
  const RunResult r = train(
      run, {"optim.name=sgd", "optim.lr=1e30", "optim.min_lr=0", "optim.grad_clip=0",
            "optim.schedule=constant", "optim.warmup_iters=0", "train.checkpoint_interval=1"});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("diverged at step 0: non-finite validation loss"), std::string::npos)
      << r.err;
  const std::string json = read_file(run + "/diverged.json");
  EXPECT_NE(json.find("\"step\": 0"), std::string::npos) << json;
  EXPECT_EQ(json.find("\"last_finite_loss\": null"), std::string::npos) << json;
  EXPECT_FALSE(fs::exists(run + "/ckpt.safetensors"));
  // At lr 1e300 the first update itself makes the weights infinite while step 0's loss and
  // gradient were finite: caught before checkpointing them, as a divergence, not an I/O error.
  const std::string inf_run = dir_ / "inf";
  const RunResult i = train(
      inf_run, {"optim.name=sgd", "optim.lr=1e300", "optim.min_lr=0", "optim.grad_clip=0",
                "optim.schedule=constant", "optim.warmup_iters=0", "train.checkpoint_interval=1"});
  EXPECT_EQ(i.code, 3) << i.err;
  EXPECT_NE(i.err.find("diverged at step 0: non-finite weights after the update"),
            std::string::npos)
      << i.err;
  EXPECT_NE(read_file(inf_run + "/diverged.json").find("\"step\": 0"), std::string::npos);
  EXPECT_FALSE(fs::exists(inf_run + "/ckpt.safetensors"));
  EXPECT_TRUE(test::temp_leftovers(inf_run).empty());
}

TEST_F(CliTest, EvalAndSampleOnFullAndWeightsOnlyCheckpoints) {
  const std::string run = dir_ / "run", ckpt = run + "/ckpt.safetensors";
  ASSERT_EQ(train(run, {"train.max_iters=10"}).code, 0);
  const std::string metrics_val = csv_rows(run + "/metrics.csv").back()[4];
  const int64_t n = int64_t(test::small_corpus().size());
  const int64_t val_tokens = n - int64_t(std::floor(double(n) * 0.9));

  RunResult e = lmlab({"eval", ckpt});
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_NEAR(std::stod(field(e.out, "val_loss")), std::stod(metrics_val),
              5e-6 * std::stod(metrics_val))
      << e.out << " vs metrics.csv " << metrics_val;
  EXPECT_EQ(field(e.out, "tokens"), std::to_string(val_tokens - 1));
  EXPECT_EQ(field(e.out, "corpus"), corpus_);
  EXPECT_EQ(field(e.out, "step"), "10");

  // The sample: prompt + N characters, the same for a seed, another for another seed.
  const std::vector<std::string> sample{"sample",   ckpt, "--prompt", "the",
                                        "--tokens", "25", "--seed",   "7"};
  const RunResult s1 = lmlab(sample), s2 = lmlab(sample);
  ASSERT_EQ(s1.code, 0) << s1.err;
  EXPECT_EQ(s1.out, s2.out);
  EXPECT_EQ(s1.out.size(), 3u + 25u + 1u) << s1.out;
  EXPECT_EQ(s1.out.substr(0, 3), "the");
  EXPECT_NE(s1.err.find("25 tokens"), std::string::npos) << s1.err;
  EXPECT_NE(s1.err.find(" tok/s"), std::string::npos) << s1.err;
  // 2 (k, v) * 2 layers * 16 positions * 4 heads * 8 dims * 4 bytes
  EXPECT_NE(s1.err.find("KV cache 8192 bytes"), std::string::npos) << s1.err;
  auto other = sample;
  other.back() = "8";
  EXPECT_NE(lmlab(other).out, s1.out);

  // A weights-only file gives the same eval and sample and can seed a new run.
  const std::string w = weights_only(ckpt, dir_ / "w.safetensors");
  RunResult ew = lmlab({"eval", w});
  ASSERT_EQ(ew.code, 0) << ew.err;
  EXPECT_EQ(field(ew.out, "val_loss"), field(e.out, "val_loss"));
  EXPECT_EQ(field(ew.out, "step"), "0");
  auto sample_w = sample;
  sample_w[1] = w;
  EXPECT_EQ(lmlab(sample_w).out, s1.out);
  const RunResult init = train(dir_ / "init", {"train.max_iters=2"}, {"--init-from", w});
  EXPECT_EQ(init.code, 0) << init.err;
  EXPECT_EQ(load_checkpoint(dir_ / "init/ckpt.safetensors").state.step, 2);
}

// eval --data: another corpus over the same characters; one with a new character is refused, as
// is --init-from onto it.
TEST_F(CliTest, EvalOnAnotherCorpusOfTheSameCharacters) {
  const std::string run = dir_ / "run", ckpt = run + "/ckpt.safetensors";
  ASSERT_EQ(train(run, {"train.max_iters=2"}).code, 0);
  const std::string other_corpus = dir_ / "other.txt";
  test::write_file(other_corpus, test::small_corpus(200));
  RunResult eo = lmlab({"eval", ckpt, "--data", other_corpus, "--batch", "3"});
  ASSERT_EQ(eo.code, 0) << eo.err;
  const int64_t m = int64_t(test::small_corpus(200).size());
  EXPECT_EQ(field(eo.out, "tokens"), std::to_string(m - int64_t(std::floor(double(m) * 0.9)) - 1));
  EXPECT_EQ(field(eo.out, "corpus"), other_corpus);
  EXPECT_TRUE(std::isfinite(std::stod(field(eo.out, "val_loss"))));
  test::write_file(other_corpus, test::small_corpus() + "Zebra!\n");
  RunResult ez = lmlab({"eval", ckpt, "--data", other_corpus});
  EXPECT_EQ(ez.code, 1);
  EXPECT_NE(ez.err.find("'Z'"), std::string::npos) << ez.err;
  EXPECT_NE(ez.err.find(other_corpus), std::string::npos) << ez.err;
  // --init-from onto a corpus with characters the checkpoint's tokenizer lacks.
  const RunResult iz = train(dir_ / "iz", {"data.corpus=" + other_corpus}, {"--init-from", ckpt});
  EXPECT_EQ(iz.code, 1);
  EXPECT_NE(iz.err.find("'Z'"), std::string::npos) << iz.err;
  EXPECT_NE(iz.err.find("data.corpus " + other_corpus), std::string::npos) << iz.err;
}

TEST_F(CliTest, BadCorporaFailWithTheFileNamedAndNoFiles) {
  const std::string run = dir_ / "run";
  auto with = [&](const std::string& corpus) { return train(run, {"data.corpus=" + corpus}); };
  expect_failure(with(dir_ / "missing.txt"), 1, {dir_ / "missing.txt", "does not exist"}, run);
  test::write_file(dir_ / "empty.txt", "");
  expect_failure(with(dir_ / "empty.txt"), 1, {dir_ / "empty.txt", "is empty"}, run);
  test::write_file(dir_ / "nul.txt", std::string("abc\0def", 7));
  expect_failure(with(dir_ / "nul.txt"), 1, {dir_ / "nul.txt", "NUL byte at offset 3"}, run);
  test::write_file(dir_ / "latin1.txt", "caf\xe9 au lait\n");
  expect_failure(with(dir_ / "latin1.txt"), 1, {dir_ / "latin1.txt", "not UTF-8", "offset 3"}, run);
  test::write_file(dir_ / "short.txt", "just twenty chars..");
  expect_failure(with(dir_ / "short.txt"), 1,
                 {dir_ / "short.txt", "block_size 16 needs at least 17"}, run);
  // A corpus without the default sample prompt "\n": refused up front, not after the whole run.
  test::write_file(dir_ / "oneline.txt", std::string(3000, 'a') + "b");
  expect_failure(with(dir_ / "oneline.txt"), 1, {"train.sample_prompt", "U+000A"}, run);
  EXPECT_EQ(train(run, {"data.corpus=" + dir_ / "oneline.txt", "train.sample_tokens=0"}).code, 0);
}

TEST_F(CliTest, RunDirectoryUnderARegularFileFails) {
  // A path under a regular file cannot be a directory, even for root.
  test::write_file(dir_ / "file", "x");
  expect_failure(train(dir_ / "file/run"), 1,
                 {"cannot create the run directory", dir_ / "file/run"});
  EXPECT_EQ(read_file(dir_ / "file"), "x");
}

TEST_F(CliTest, ReadOnlyRunDirectoryFails) {
  if (::geteuid() == 0) GTEST_SKIP() << "root writes into a chmod 555 directory";
  fs::create_directories(dir_ / "ro");
  fs::permissions(dir_ / "ro", fs::perms(0555));
  expect_failure(train(dir_ / "ro"), 1, {dir_ / "ro", "not writable"}, dir_ / "ro");
  fs::permissions(dir_ / "ro", fs::perms(0755));
}

TEST_F(CliTest, DamagedCheckpointsFailNamingTheFile) {
  const std::string run = dir_ / "run", ckpt = run + "/ckpt.safetensors";
  ASSERT_EQ(train(run, {"train.max_iters=2"}).code, 0);
  const std::string good = read_file(ckpt), metrics = read_file(run + "/metrics.csv");
  const std::string fresh = dir_ / "fresh";
  auto expect_rejected = [&](const std::string& what) {
    expect_failure(lmlab({"eval", ckpt}), 1, {ckpt, what});
    expect_failure(lmlab({"sample", ckpt}), 1, {ckpt, what});
    expect_failure(train(fresh, {}, {"--init-from", ckpt}), 1, {ckpt, what}, fresh);
    expect_failure(train(run, {"train.max_iters=4"}, {"--resume"}), 1, {ckpt, what});
    EXPECT_EQ(read_file(run + "/metrics.csv"), metrics) << "a failed resume rewrote metrics.csv";
  };
  test::write_file(ckpt, good.substr(0, good.size() / 2));
  expect_rejected("truncated file?");
  std::string corrupt = good;
  corrupt.replace(8, 8, "garbage!");
  test::write_file(ckpt, corrupt);
  expect_rejected("header is not valid JSON");
  // A newer format version, otherwise a valid checkpoint.
  test::write_file(ckpt, good);
  SafeTensors st = load_safetensors(ckpt);
  st.metadata["format_version"] = "99";
  save_safetensors(ckpt, st);
  expect_rejected("format version 99");
}

TEST_F(CliTest, CheckpointOfAnotherShapeFailsNamingTheShapes) {
  const std::string wide = dir_ / "wide", run = dir_ / "run";
  ASSERT_EQ(train(wide, {"train.max_iters=2", "model.n_embd=64"}).code, 0);
  const std::string ckpt = wide + "/ckpt.safetensors";
  expect_failure(train(run, {}, {"--init-from", ckpt}), 1, {ckpt, "'wte.weight'", ", 64)", ", 32)"},
                 run);
  // --resume with another model in the config is refused before anything is written.
  const std::string before = read_file(wide + "/metrics.csv");
  expect_failure(train(wide, {"train.max_iters=3"}, {"--resume"}), 1,
                 {ckpt, "was written with model.n_embd 64, this config has model.n_embd 32"});
  EXPECT_EQ(read_file(wide + "/metrics.csv"), before);
}

// A checkpoint of a model without QK-norm into one with it: refused naming the new weights, or
// with --init-missing started (they begin at their init, the run says which); --init-missing alone
// is a usage error.
TEST_F(CliTest, InitFromASmallerModelNeedsInitMissing) {
  const std::string plain = dir_ / "plain", grown = dir_ / "grown";
  ASSERT_EQ(train(plain, {"train.max_iters=2"}).code, 0);
  const std::string ckpt = plain + "/ckpt.safetensors";
  expect_failure(
      train(grown, {"model.qk_norm=true"}, {"--init-from", ckpt}), 1,
      {ckpt, "lacks 4 parameters of this model", "blocks.0.attn.q_norm.weight", "--init-missing"},
      grown);
  const RunResult r = train(grown, {"model.qk_norm=true"}, {"--init-from", ckpt, "--init-missing"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("init-from: 4 parameters not in " + ckpt +
                       " start at their init: "
                       "blocks.0.attn.q_norm.weight, blocks.0.attn.k_norm.weight"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(train(dir_ / "x", {}, {"--init-missing"}).code, 2);
}

TEST_F(CliTest, DiskFullWhileCheckpointingKeepsThePreviousCheckpoint) {
  const std::string run = dir_ / "run", ckpt = run + "/ckpt.safetensors";
  ASSERT_EQ(train(run, {"train.max_iters=3"}).code, 0);
  const std::string good = read_file(ckpt);
  ASSERT_GT(good.size(), 100000u);
  ChildOptions full;
  full.fsize_limit = 64 * 1024;  // metrics.csv and config.yaml fit, a checkpoint does not
  const RunResult r = train(run, {"train.max_iters=6"}, {"--resume"}, full);
  expect_failure(r, 1, {ckpt, "File too large"});
  EXPECT_EQ(read_file(ckpt), good);
  EXPECT_EQ(load_checkpoint(ckpt).state.step, 3);
  EXPECT_TRUE(test::temp_leftovers(run).empty()) << test::temp_leftovers(run)[0];
  ASSERT_EQ(train(run, {"train.max_iters=6"}, {"--resume"}).code, 0);  // room again: it goes on
  EXPECT_EQ(load_checkpoint(ckpt).state.step, 6);
}

TEST_F(CliTest, DiskFullWhileLoggingFailsAtOnce) {
  // config.yaml (~4 KB) does not fit in 1 KB: an error, and no half-written config.yaml.tmp.
  const std::string a = dir_ / "a";
  ChildOptions tiny_disk;
  tiny_disk.fsize_limit = 1024;
  expect_failure(train(a, {}, {}, tiny_disk), 1, {a + "/config.yaml", "cannot write"}, a);
  // metrics.csv fills up after ~120 rows of 400: the run stops there instead of losing rows.
  const std::string b = dir_ / "b";
  ChildOptions small_disk;
  small_disk.fsize_limit = 8 * 1024;
  const RunResult r = train(b, {"train.max_iters=400", "train.eval_interval=200"}, {}, small_disk);
  expect_failure(r, 1, {b + "/metrics.csv", "cannot append"});
  EXPECT_LT(csv_rows(b + "/metrics.csv").size(), 200u);
  EXPECT_FALSE(fs::exists(b + "/ckpt.safetensors"));
}

TEST_F(CliTest, BadConfigsNameTheFileLineAndKey) {
  const std::string run = dir_ / "run", cfg = dir_ / "bad.yaml";
  auto with_config = [&](const std::string& path, std::vector<std::string> sets = {}) {
    auto a = train_args(run, sets);
    a[1] = path;
    return lmlab(a);
  };
  test::write_file(cfg, "model:\n  n_layer: 2\n  n_heads: 4\n");
  expect_failure(with_config(cfg), 1, {cfg + ":3", "unknown key 'model.n_heads'", "model.n_head"},
                 run);
  test::write_file(cfg, "optim:\n  lr: -1\n");
  expect_failure(with_config(cfg), 1, {cfg + ":2", "optim.lr", "-1"}, run);
  test::write_file(cfg, "train:\n  max_iters: lots\n");
  expect_failure(with_config(cfg), 1, {cfg + ":2", "train.max_iters", "lots"}, run);
  test::write_file(cfg, "model: [1, 2\n");
  expect_failure(with_config(cfg), 1, {cfg}, run);
  expect_failure(with_config(dir_ / "nope.yaml"), 1, {dir_ / "nope.yaml"}, run);
  expect_failure(train(run, {"optim.lr=abc"}), 1, {"--set optim.lr=abc"}, run);
  expect_failure(train(run, {"optim.lr=-1"}), 1, {"--set optim.lr=-1", "optim.lr must be > 0"},
                 run);
  expect_failure(train(run, {"model.n_embd"}), 1, {"model.n_embd"}, run);
  if (!cuda::available())  // without a GPU, asking for one is a clear error that names the fix
    expect_failure(train(run, {"train.device=cuda"}), 1,
                   {"train.device is cuda", "train.device=cpu"}, run);
}

// On a GPU, `train.precision: tf32` trains the tiny model to the CPU's loss within TF32's error
// (the same run in fp32 on the CPU beside it). Skipped without a GPU.
TEST_F(CliTest, CudaTf32RunTracksTheCpuRun) {
  if (!cuda::available()) GTEST_SKIP() << "no GPU: " << cuda::unavailable_reason();
  const std::string cpu = dir_ / "cpu", gpu = dir_ / "gpu";
  ASSERT_EQ(train(cpu, {"train.max_iters=30"}).code, 0);
  const RunResult r =
      train(gpu, {"train.max_iters=30", "train.device=cuda", "train.precision=tf32"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto a = nlohmann::json::parse(test::read_file(cpu + "/result.json"));
  const auto b = nlohmann::json::parse(test::read_file(gpu + "/result.json"));
  const double la = a["final_val_loss"], lb = b["final_val_loss"];
  EXPECT_NEAR(lb, la, 1e-2 * la);
}

// `train.precision: bf16` on the CPU (its emulation of mixed precision: bf16 roundings around
// float32 kernels) trains the tiny model to the fp32 run's loss within bf16's noise.
TEST_F(CliTest, Bf16RunTracksTheFp32Run) {
  const std::string fp32 = dir_ / "fp32", bf16 = dir_ / "bf16";
  ASSERT_EQ(train(fp32, {"train.max_iters=30"}).code, 0);
  const RunResult r = train(bf16, {"train.max_iters=30", "train.precision=bf16"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto a = nlohmann::json::parse(test::read_file(fp32 + "/result.json"));
  const auto b = nlohmann::json::parse(test::read_file(bf16 + "/result.json"));
  const double la = a["final_val_loss"], lb = b["final_val_loss"];
  EXPECT_NEAR(lb, la, 2e-2 * la);
  EXPECT_NE(lb, la);  // it did run in bf16
}

TEST_F(CliTest, UsageErrorsExit2) {
  const std::string run = dir_ / "run", ckpt = dir_ / "x.safetensors";
  expect_failure(lmlab({}), 2, {"usage: lmlab <command>"});
  expect_failure(lmlab({"frobnicate"}), 2, {"unknown command 'frobnicate'", "usage"});
  expect_failure(lmlab({"train"}), 2, {"missing argument", "lmlab train --help"});
  expect_failure(lmlab({"eval"}), 2, {"missing argument"});
  expect_failure(lmlab({"sample"}), 2, {"missing argument"});
  expect_failure(lmlab({"train", "a.yaml", "b.yaml"}), 2, {"unexpected argument 'b.yaml'"});
  expect_failure(lmlab({"train", test::tiny_config(), "--bogus"}), 2, {"bogus"});
  expect_failure(lmlab({"train", test::tiny_config(), "--set"}), 2, {"set"});
  expect_failure(lmlab({"eval", ckpt, "--batch", "0"}), 2, {"--batch"});
  expect_failure(lmlab({"sample", ckpt, "--tokens", "0"}), 2, {"--tokens"});
  expect_failure(lmlab({"sample", ckpt, "--tokens", "many"}), 2, {"many"});
  expect_failure(lmlab({"sample", ckpt, "--temperature", "0"}), 2, {"--temperature"});
  expect_failure(lmlab({"sample", ckpt, "--top-k", "-1"}), 2, {"--top-k"});
  expect_failure(lmlab({"eval", ckpt}), 1, {ckpt});  // a missing checkpoint is an error, not usage
}

TEST_F(CliTest, HelpListsEveryOption) {
  const std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> cases{
      {{"--help"}, {"train", "eval", "sample", "ablate", "bench"}},
      {{"train", "--help"}, {"--set", "--resume", "--run-dir", "--init-from", "--quiet"}},
      {{"eval", "--help"}, {"--data", "--batch"}},
      {{"sample", "--help"}, {"--prompt", "--tokens", "--temperature", "--top-k", "--seed"}}};
  for (const auto& [args, options] : cases) {
    const RunResult r = lmlab(args);
    EXPECT_EQ(r.code, 0) << args[0];
    for (const std::string& o : options)
      EXPECT_NE(r.out.find(o), std::string::npos) << o << " in\n" << r.out;
  }
}

}  // namespace
}  // namespace lmlab::train
