// Fault tests through the `lmlab` binary: kill -9 at random moments of a run that checkpoints
// every step, SIGINT then a bit-exact resume, a really full disk and a read-only run directory
// (tmpfs mounts, as root), tampered checkpoints, hostile corpora (malformed UTF-8, a 100 MB line)
// with bounded memory, a NaN gradient, and a diverging Post-Norm run whose clipping stays visible.
// Each case checks that nothing already on disk was lost.
#include <algorithm>
#include <cmath>
#include <random>

#include "tests/train/cli_util.h"
#include "train/io/checkpoint.h"

namespace lmlab::train {
namespace {

namespace fs = std::filesystem;

using test::ChildOptions;
using test::csv_rows;
using test::expect_failure;
using test::expect_steps;
using test::read_file;
using test::RunResult;
using test::TempDir;

class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override { test::write_file(corpus_, test::small_corpus()); }

  RunResult lmlab(const std::vector<std::string>& args, const ChildOptions& o = {}) const {
    return test::run_lmlab(args, io_.str(), o);
  }
  RunResult train(const std::string& run_dir, const std::vector<std::string>& sets = {},
                  const std::vector<std::string>& extra = {}, const ChildOptions& o = {}) const {
    return lmlab(test::tiny_train_args(run_dir, corpus_, sets, extra), o);
  }
  // The training child, started without waiting.
  std::unique_ptr<test::Child> start(const std::string& run_dir,
                                     const std::vector<std::string>& sets,
                                     const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> argv{test::lmlab_binary()};
    for (const std::string& a : test::tiny_train_args(run_dir, corpus_, sets, extra))
      argv.push_back(a);
    return std::make_unique<test::Child>(argv, io_.str());
  }
  // Expects the metrics of two runs to agree bit for bit in step, tokens, lr, train_loss,
  // val_loss and grad_norm.
  static void expect_same_metrics(const std::string& a_csv, const std::string& b_csv) {
    const auto a = csv_rows(a_csv), b = csv_rows(b_csv);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i)
      for (int col : {0, 1, 2, 3, 4, 5})
        EXPECT_EQ(a[i][col], b[i][col]) << "row " << i << " column " << col;
  }

  // Expects two checkpoints to hold the same tensors, bit for bit (their configs name different
  // run directories).
  static void expect_same_tensors(const std::string& a_path, const std::string& b_path) {
    const SafeTensors a = load_safetensors(a_path), b = load_safetensors(b_path);
    ASSERT_EQ(a.tensors.size(), b.tensors.size());
    for (const auto& [name, t] : a.tensors) {
      ASSERT_TRUE(b.contains(name)) << name;
      const Tensor& u = b.at(name);
      ASSERT_EQ(t.shape(), u.shape()) << name;
      EXPECT_EQ(std::memcmp(t.raw_data(), u.raw_data(), size_t(t.numel()) * dtype_size(t.dtype())),
                0)
          << name;
    }
    EXPECT_EQ(a.metadata.at("data_rng"), b.metadata.at("data_rng"));
  }

  // The step of the checkpoint at `path`, or 0 while there is none (or it is being replaced).
  static int64_t load_step(const std::string& path) {
    try {
      return fs::exists(path) ? load_checkpoint(path).state.step : 0;
    } catch (const Error&) {
      return 0;
    }
  }

  TempDir dir_{"faults"};
  TempDir io_{"faults_io"};
  std::string corpus_ = dir_ / "corpus.txt";
};

// The model and optimizer keys the runs below share; only the loop length and checkpointing vary,
// which --resume allows.
const std::vector<std::string> kRun{"optim.decay_iters=40", "train.eval_interval=10",
                                    "train.sample_tokens=0"};
std::vector<std::string> with(std::vector<std::string> sets,
                              std::initializer_list<std::string> more) {
  sets.insert(sets.end(), more);
  return sets;
}

TEST_F(FaultTest, KillNineAtRandomMomentsNeverLosesTheLastCheckpoint) {
  // A run that checkpoints every step is killed 6 times, each at a random moment after its first
  // checkpoint, and resumed; each time the checkpoint on disk loads and `lmlab eval` reads it.
  // Then it finishes, bit for bit as a run that was never killed.
  const std::string run = dir_ / "run", ckpt = run + "/ckpt.safetensors";
  const unsigned seed = std::random_device{}();
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> delay_us(0, 60000);
  int64_t last_step = 0;
  int torn_writes = 0;  // kills that landed inside a checkpoint write (a temp file left behind)
  for (int k = 0; k < 6; ++k) {
    auto child = start(run, with(kRun, {"train.max_iters=100000", "train.checkpoint_interval=1"}),
                       {"--resume"});
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (load_step(ckpt) <= last_step && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
    child->signal(SIGKILL);
    ASSERT_EQ(child->wait(30), 128 + SIGKILL)
        << "kill " << k << " (seed " << seed << "): " << child->err();
    torn_writes += int(test::temp_leftovers(run).size());
    for (const std::string& tmp : test::temp_leftovers(run)) fs::remove(tmp);
    const Checkpoint c = load_checkpoint(ckpt);
    EXPECT_GT(c.state.step, last_step) << "kill " << k << " (seed " << seed << ")";
    last_step = c.state.step;
    const RunResult e = lmlab({"eval", ckpt});
    ASSERT_EQ(e.code, 0) << "kill " << k << " (seed " << seed << "): " << e.err;
    EXPECT_EQ(test::field(e.out, "step"), std::to_string(c.state.step));
  }
  RecordProperty("kills_inside_a_checkpoint_write", torn_writes);
  RecordProperty("steps_before_the_last_kill", int(last_step));
  const std::string until = "train.max_iters=" + std::to_string(last_step + 5);
  ASSERT_EQ(train(run, with(kRun, {until}), {"--resume"}).code, 0);
  const std::string full = dir_ / "full";
  ASSERT_EQ(train(full, with(kRun, {until})).code, 0);
  expect_same_metrics(full + "/metrics.csv", run + "/metrics.csv");
  expect_same_tensors(full + "/ckpt.safetensors", ckpt);
}

TEST_F(FaultTest, SigintThenResumeIsBitExact) {
  const std::string full = dir_ / "full", run = dir_ / "run";
  ASSERT_EQ(train(full, with(kRun, {"train.max_iters=40"})).code, 0);
  auto child = start(run, with(kRun, {"train.max_iters=40"}));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (csv_rows(run + "/metrics.csv").size() < 5 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  child->signal(SIGINT);
  const int code = child->wait(30);
  ASSERT_TRUE(code == 130 || code == 0) << child->err();
  const int64_t stopped = load_checkpoint(run + "/ckpt.safetensors").state.step;
  if (code == 130) {
    EXPECT_LT(stopped, 40);
  }
  ASSERT_EQ(train(run, with(kRun, {"train.max_iters=40"}), {"--resume"}).code, 0);
  expect_same_metrics(full + "/metrics.csv", run + "/metrics.csv");
  expect_same_tensors(full + "/ckpt.safetensors", run + "/ckpt.safetensors");
  RecordProperty("interrupted_at_step", int(stopped));
}

TEST_F(FaultTest, FullTmpfsKeepsThePreviousCheckpoint) {
  const std::string probe = dir_ / "probe";
  ASSERT_EQ(train(probe, with(kRun, {"train.max_iters=2"})).code, 0);
  const size_t ckpt_bytes = fs::file_size(probe + "/ckpt.safetensors");
  const test::TmpfsMount disk(dir_ / "disk", ckpt_bytes + ckpt_bytes / 2);
  if (!disk.ok())
    GTEST_SKIP() << "no real full disk to test (" << disk.why() << "); the RLIMIT_FSIZE "
                 << "variant in test_cli.cpp covers the same path";
  const std::string run = dir_ / "disk/run", ckpt = run + "/ckpt.safetensors";
  ASSERT_EQ(train(run, with(kRun, {"train.max_iters=2"})).code, 0);
  const std::string good = read_file(ckpt);
  const RunResult r = train(run, with(kRun, {"train.max_iters=4"}), {"--resume"});
  expect_failure(r, 1, {ckpt + ".tmp.", "No space left on device"});
  EXPECT_EQ(read_file(ckpt), good);
  EXPECT_TRUE(test::temp_leftovers(run).empty());
  EXPECT_EQ(lmlab({"eval", ckpt}).code, 0);
  ASSERT_TRUE(disk.remount(false, 8 * ckpt_bytes));
  ASSERT_EQ(train(run, with(kRun, {"train.max_iters=4"}), {"--resume"}).code, 0);
  EXPECT_EQ(load_checkpoint(ckpt).state.step, 4);
}

TEST_F(FaultTest, ReadOnlyMountFailsClearlyAndKeepsTheRun) {
  const test::TmpfsMount disk(dir_ / "ro", 8 << 20);
  if (!disk.ok())
    GTEST_SKIP() << "no read-only file system to test (" << disk.why() << "); as a user, "
                 << "test_cli.cpp's chmod 555 test covers it";
  const std::string run = dir_ / "ro/run", ckpt = run + "/ckpt.safetensors";
  ASSERT_EQ(train(run, with(kRun, {"train.max_iters=2"})).code, 0);
  const std::string good = read_file(ckpt), metrics = read_file(run + "/metrics.csv");
  ASSERT_TRUE(disk.remount(true, 8 << 20));
  expect_failure(train(run, with(kRun, {"train.max_iters=4"}), {"--resume"}), 1,
                 {run, "not writable"});
  expect_failure(train(dir_ / "ro/fresh", with(kRun, {"train.max_iters=2"})), 1,
                 {"cannot create the run directory", dir_ / "ro/fresh"});
  // Reading a checkpoint needs no write access.
  EXPECT_EQ(lmlab({"eval", ckpt}).code, 0);
  EXPECT_EQ(lmlab({"sample", ckpt, "--tokens", "5"}).code, 0);
  ASSERT_TRUE(disk.remount(false, 8 << 20));
  EXPECT_EQ(read_file(ckpt), good);
  EXPECT_EQ(read_file(run + "/metrics.csv"), metrics);
  ASSERT_EQ(train(run, with(kRun, {"train.max_iters=4"}), {"--resume"}).code, 0);
  expect_steps(run + "/metrics.csv", 4);
}

TEST_F(FaultTest, TamperedCheckpointMetadataNamesTheFileAndKey) {
  const std::string run = dir_ / "run", ckpt = run + "/ckpt.safetensors";
  ASSERT_EQ(train(run, with(kRun, {"train.max_iters=2"})).code, 0);
  const SafeTensors good = load_safetensors(ckpt);
  const std::string bad = dir_ / "bad.safetensors";
  auto expect_refused = [&](const std::string& key, const std::string& value,
                            std::initializer_list<std::string> parts) {
    SafeTensors st = good;
    if (value.empty())
      st.metadata.erase(key);
    else
      st.metadata[key] = value;
    save_safetensors(bad, st);
    for (const char* cmd : {"eval", "sample"}) {
      const RunResult r = lmlab({cmd, bad});
      EXPECT_EQ(r.code, 1) << key << "=" << value << ": " << r.err;
      EXPECT_NE(r.err.find(bad), std::string::npos) << key << "=" << value << ": " << r.err;
      for (const std::string& p : parts)
        EXPECT_NE(r.err.find(p), std::string::npos) << "no \"" << p << "\" in: " << r.err;
      EXPECT_EQ(r.err.find("unexpected error"), std::string::npos) << r.err;
    }
  };
  expect_refused("format_version", "2", {"format version 2", "update lmlab"});
  expect_refused("format_version", "one", {"'format_version'", "'one'"});
  expect_refused("format", "gguf", {"'gguf'", "not an lmlab checkpoint"});
  expect_refused("tokenizer", "", {"'tokenizer'"});
  expect_refused("tokenizer", "{\"kind\":\"char\"}", {"tokenizer"});
  expect_refused("config", "model: [", {"config metadata"});
  expect_refused("step", "-3", {"'step'"});
  expect_refused("best_val_loss", "lowish", {"'best_val_loss'", "'lowish'"});
  expect_refused("data_rng", "7", {"'data_rng'"});
  expect_refused("ranks", "0", {"'ranks' must be >= 1"});
  expect_refused("ranks", "two", {"'ranks'", "'two'"});
  // A config describing another model than the tensors: the parameter and both shapes are named.
  SafeTensors st = good;
  const std::string cfg = st.metadata.at("config");
  const size_t at = cfg.find("n_embd: 32");
  ASSERT_NE(at, std::string::npos) << cfg;
  st.metadata["config"] = cfg.substr(0, at) + "n_embd: 64" + cfg.substr(at + 10);
  save_safetensors(bad, st);
  expect_failure(lmlab({"eval", bad}), 1, {bad, "'wte.weight'", "64)", "32)"});
  // A parameter missing from a weights-only file.
  st = good;
  st.tensors.erase("blocks.1.mlp.fc.weight");
  save_safetensors(bad, st);
  expect_failure(lmlab({"eval", bad}), 1, {bad, "'blocks.1.mlp.fc.weight'"});
}

TEST_F(FaultTest, MalformedUtf8CorporaNameTheFileOffsetAndReason) {
  const std::string run = dir_ / "run";
  struct Case {
    std::string bytes, what;
  };
  const std::string text = test::small_corpus();
  const std::vector<Case> cases{
      {text + "\xe4\xb8", "offset " + std::to_string(text.size()) + " (unexpected end of data)"},
      {text + "\xed\xa0\x80!",
       "offset " + std::to_string(text.size()) + " (invalid continuation byte)"},
      {"ab\xc0\xaf" + text, "offset 2 (invalid start byte)"},
      {text + "\xf4\x90\x80\x80", "invalid byte 0xf4 at offset " + std::to_string(text.size())},
      {text + std::string(1, '\0') + text, "NUL byte at offset " + std::to_string(text.size())}};
  for (const Case& c : cases) {
    const std::string path = dir_ / "bad.txt";
    test::write_file(path, c.bytes);
    expect_failure(train(run, {"data.corpus=" + path}), 1, {path, c.what}, run);
  }
  // `eval --data` checks a corpus the same way.
  const std::string good_run = dir_ / "good";
  ASSERT_EQ(train(good_run, with(kRun, {"train.max_iters=1"})).code, 0);
  const std::string path = dir_ / "bad.txt";
  test::write_file(path, text + "\xff");
  expect_failure(lmlab({"eval", good_run + "/ckpt.safetensors", "--data", path}), 1,
                 {path, "invalid byte 0xff at offset " + std::to_string(text.size())});
}

TEST_F(FaultTest, AHundredMegabyteLineTrainsInBoundedMemory) {
  // One line of 100 MB of ASCII text: read whole, tokenized, split; the run trains two steps.
  const std::string big = dir_ / "big.txt";
  {
    const std::string words = test::small_corpus(40);
    std::string line;
    for (char c : words) line.push_back(c == '\n' ? ' ' : c);
    std::ofstream out(big, std::ios::binary);
    const size_t n = size_t(100) << 20;
    for (size_t written = 0; written < n; written += line.size())
      out.write(line.data(), std::streamsize(std::min(line.size(), n - written)));
  }
  const std::string run = dir_ / "run";
  const RunResult r = train(run,
                            {"data.corpus=" + big, "data.val_fraction=0.0001", "train.max_iters=2",
                             "train.sample_tokens=0"},
                            {}, {});
  ASSERT_EQ(r.code, 0) << r.err;
  expect_steps(run + "/metrics.csv", 2);
  // The text, its ids (int32) and the dataset's copy: ~9 bytes per corpus byte at most.
  RecordProperty("max_rss_mb", int(r.max_rss_kb / 1024));
  EXPECT_LT(r.max_rss_kb / 1024, 950) << "peak RSS for a 100 MB corpus";
  // The same file with a bad byte at its very end: the error names that offset.
  {
    std::ofstream out(big, std::ios::binary | std::ios::app);
    out << "\x80";
  }
  fs::remove_all(run);
  expect_failure(train(run, {"data.corpus=" + big}), 1,
                 {big, "invalid byte 0x80 at offset " + std::to_string(size_t(100) << 20)}, run);
}

TEST_F(FaultTest, NanGradientLeavesOnlyFiniteCheckpoints) {
  // From scratch, checkpointing every step, with two micro-batches: at step 3 one gradient is
  // NaN. Exit 3; every file that holds tensors (weights and AdamW moments) is finite.
  for (const std::string optimizer : {"adamw", "sgd"}) {
    const std::string run = dir_ / ("run_" + optimizer);
    ChildOptions fault;
    fault.env = {"LMLAB_FAULT_NAN_AT_STEP=3"};
    const RunResult r = train(run,
                              with(kRun, {"train.max_iters=8", "train.checkpoint_interval=1",
                                          "train.grad_accum=2", "optim.name=" + optimizer}),
                              {}, fault);
    EXPECT_EQ(r.code, 3) << r.err;
    EXPECT_NE(r.err.find("diverged at step 3"), std::string::npos) << r.err;
    int checked = 0;
    for (const std::string& f : test::files_in(run)) {
      if (f.find(".safetensors") == std::string::npos) continue;
      const Checkpoint c = load_checkpoint(f);
      EXPECT_TRUE(test::all_finite(c)) << f;
      EXPECT_EQ(c.state.step, 3) << f;
      ++checked;
    }
    EXPECT_EQ(checked, 1) << optimizer;
    EXPECT_TRUE(test::temp_leftovers(run).empty());
    expect_steps(run + "/metrics.csv", 3);
  }
}

TEST_F(FaultTest, DivergingPostNormRunReportsThePreClipGradientNorm) {
  // Post-Norm at a far too high learning rate, clipped at 1: metrics.csv must show the gradient
  // norm before clipping (growing well past the threshold) with clipped=1, not the clipped 1.
  const std::string run = dir_ / "run";
  const RunResult r =
      train(run, {"model.norm_placement=post", "optim.lr=3", "optim.min_lr=0",
                  "optim.warmup_iters=0", "optim.schedule=constant", "optim.grad_clip=1",
                  "train.max_iters=30", "train.sample_tokens=0"});
  ASSERT_TRUE(r.code == 0 || r.code == 3) << r.err;
  const auto rows = csv_rows(run + "/metrics.csv");
  ASSERT_GE(rows.size(), 5u) << r.err;
  double largest = 0;
  int clipped = 0;
  for (const auto& row : rows) {
    const double norm = std::stod(row[7]);
    ASSERT_TRUE(std::isfinite(norm)) << "a logged step has a non-finite norm";
    EXPECT_EQ(row[8], norm > 1.0 ? "1" : "0") << "step " << row[0] << " grad_norm " << row[7];
    largest = std::max(largest, norm);
    clipped += row[8] == "1";
  }
  EXPECT_GT(clipped, 0);
  EXPECT_GT(largest, 10.0) << "the reported norms look clipped";
  if (r.code == 3) {
    EXPECT_TRUE(fs::exists(run + "/diverged.json"));
  }
}

}  // namespace
}  // namespace lmlab::train
