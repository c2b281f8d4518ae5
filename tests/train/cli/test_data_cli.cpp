// The data commands as a user runs them: `lmlab tokenizer train`, `lmlab prepare`, training from
// the prepared token files (the same run as from the text, step for step), `sample` streaming BPE
// text and `eval` reporting bits per byte; and the bad inputs (usage, a config that asks for
// nonsense, damaged token files), each a message naming what is wrong.
#include <nlohmann/json.hpp>

#include "data/utf8.h"
#include "tests/test_util.h"
#include "tests/train/cli_util.h"

namespace lmlab::train {
namespace {

namespace fs = std::filesystem;

using test::csv_rows;
using test::expect_failure;
using test::field;
using test::RunResult;
using test::TempDir;

class DataCliTest : public ::testing::Test {
 protected:
  void SetUp() override { test::write_file(corpus_, test::small_corpus()); }
  RunResult lmlab(const std::vector<std::string>& args) const {
    return test::run_lmlab(args, io_.str());
  }
  // tiny.yaml on the small corpus, a BPE of 300 tokens trained at start, 1 thread, + `sets`.
  std::vector<std::string> with_sets(std::vector<std::string> a,
                                     const std::vector<std::string>& sets) const {
    for (const std::string& s :
         {"data.corpus=" + corpus_, std::string("data.tokenizer=bpe"),
          std::string("data.bpe_vocab_size=300"), std::string("train.threads=1")})
      a.insert(a.end(), {"--set", s});
    for (const std::string& s : sets) a.insert(a.end(), {"--set", s});
    return a;
  }

  TempDir dir_{"data_cli"};
  TempDir io_{"data_cli_io"};
  std::string corpus_ = dir_ / "corpus.txt";
};

TEST_F(DataCliTest, PrepareThenTrainFromTheFilesIsTheRunFromTheText) {
  const std::string prep = dir_ / "prep";
  const RunResult p = lmlab(with_sets({"prepare", test::tiny_config(), "--out", prep}, {}));
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_NE(p.out.find("tokenizer bpe:trained-300 (300 tokens)"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("--set data.format=bin --set data.corpus=" + prep), std::string::npos);
  for (const char* f : {"train.bin", "val.bin", "meta.json"})
    EXPECT_TRUE(fs::exists(prep + "/" + f));
  EXPECT_EQ(test::temp_leftovers(prep), std::vector<std::string>{});

  const std::vector<std::string> steps{"train.max_iters=12", "train.eval_interval=6"};
  const std::string text_run = dir_ / "text", bin_run = dir_ / "bin";
  RunResult a =
      lmlab(with_sets({"train", test::tiny_config(), "--quiet", "--run-dir", text_run}, steps));
  ASSERT_EQ(a.code, 0) << a.err;
  std::vector<std::string> bin_sets = steps;
  bin_sets.insert(bin_sets.end(), {"data.format=bin", "data.corpus=" + prep});
  RunResult b =
      lmlab(with_sets({"train", test::tiny_config(), "--quiet", "--run-dir", bin_run}, bin_sets));
  ASSERT_EQ(b.code, 0) << b.err;
  test::expect_same_metrics(text_run + "/metrics.csv", bin_run + "/metrics.csv");
  const auto ja = nlohmann::json::parse(test::read_file(text_run + "/result.json"));
  const auto jb = nlohmann::json::parse(test::read_file(bin_run + "/result.json"));
  EXPECT_EQ(jb["tokenizer"], "bpe");
  EXPECT_EQ(jb["vocab_size"], 300);
  EXPECT_EQ(ja["final_val_bpb"], jb["final_val_bpb"]);
  // bits per byte = nats per token / ln 2 / bytes per token, in metrics.csv and result.json
  const double bpb = jb["final_val_bpb"], loss = jb["final_val_loss"],
               bpt = jb["val_bytes_per_token"];
  EXPECT_GT(bpt, 1.5);
  EXPECT_NEAR(bpb, loss / std::log(2.0) / bpt, 1e-12);
  EXPECT_NEAR(std::stod(csv_rows(bin_run + "/metrics.csv").back()[5]), bpb, 1e-6 * bpb);

  // eval and sample from the checkpoint: the tokenizer travels inside it.
  const std::string ckpt = bin_run + "/ckpt.safetensors";
  const RunResult e = lmlab({"eval", ckpt});
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_NEAR(std::stod(field(e.out, "val_bpb")), bpb, 1e-5 * bpb) << e.out;
  const RunResult s = lmlab({"sample", ckpt, "--prompt", "the cat", "--tokens", "40"});
  ASSERT_EQ(s.code, 0) << s.err;
  EXPECT_EQ(s.out.rfind("the cat", 0), 0u) << s.out;
  EXPECT_FALSE(data::utf8::first_problem(s.out)) << "sample printed invalid UTF-8";
  EXPECT_NE(s.err.find("40 tokens"), std::string::npos) << s.err;
  // Resuming from the files continues bit-exact like any run.
  bin_sets[0] = "train.max_iters=16";
  RunResult r = lmlab(with_sets(
      {"train", test::tiny_config(), "--quiet", "--run-dir", bin_run, "--resume"}, bin_sets));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(csv_rows(bin_run + "/metrics.csv").size(), 16u);
}

TEST_F(DataCliTest, ATrainedTokenizerFileIsTheTokenizerOfARun) {
  const std::string tok = dir_ / "tok.json";
  const RunResult t = lmlab({"tokenizer", "train", corpus_, "--vocab-size", "280", "--out", tok});
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.out.find("wrote " + tok + ": 280 tokens"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("tokenizer: "), std::string::npos) << "a progress line";
  const auto j = nlohmann::json::parse(test::read_file(tok));
  EXPECT_EQ(j["model"]["type"], "BPE");
  const std::string run = dir_ / "run";
  const RunResult r = lmlab(with_sets({"train", test::tiny_config(), "--quiet", "--run-dir", run},
                                      {"train.max_iters=3", "data.tokenizer_file=" + tok}));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(test::read_file(run + "/result.json"))["vocab_size"], 280);
}

// A directory with a sparse train.bin of `bytes` (uint16 ids, all 0 but a few marks, no meta.json)
// and a small val.bin of the corpus's bytes.
std::string byte_token_dir(const TempDir& dir, const std::string& name, int64_t bytes) {
  const std::string d = dir / name;
  fs::create_directories(d);
  test::write_file(d + "/train.bin", "");
  fs::resize_file(d + "/train.bin", uintmax_t(bytes));
  std::string val;
  for (const char c : test::small_corpus(40)) val += {c, '\0'};
  test::write_file(d + "/val.bin", val);
  return d;
}

TEST_F(DataCliTest, TrainingFromA4GBFileCostsTheMemoryOfA40MBFile) {
  const std::vector<std::string> sets{"data.format=bin", "data.tokenizer=byte",
                                      "train.max_iters=30", "train.eval_interval=30",
                                      "train.sample_tokens=0"};
  auto run = [&](const std::string& data, const std::string& name) {
    std::vector<std::string> a{
        "train", test::tiny_config(),   "--quiet", "--run-dir",      dir_ / name,
        "--set", "data.corpus=" + data, "--set",   "train.threads=1"};
    for (const std::string& s : sets) a.insert(a.end(), {"--set", s});
    return lmlab(a);
  };
  const RunResult small = run(byte_token_dir(dir_, "small", int64_t(40) << 20), "run_small");
  const RunResult big = run(byte_token_dir(dir_, "big", int64_t(4) << 30), "run_big");
  ASSERT_EQ(small.code, 0) << small.err;
  ASSERT_EQ(big.code, 0) << big.err;
  std::printf("  peak RSS: 40 MB train.bin %.1f MB, 4 GB train.bin %.1f MB\n",
              double(small.max_rss_kb) / 1024, double(big.max_rss_kb) / 1024);
  EXPECT_LT(big.max_rss_kb, small.max_rss_kb + 100 * 1024);
}

TEST_F(DataCliTest, BadInputNamesWhatIsWrong) {
  const std::string run = dir_ / "run", prep = dir_ / "prep";
  expect_failure(lmlab({"tokenizer", "train", corpus_, "--out", dir_ / "t.json"}), 2,
                 {"--vocab-size N is required"});
  expect_failure(lmlab({"tokenizer", "learn", corpus_}), 2, {"unknown tokenizer command 'learn'"});
  expect_failure(
      lmlab({"tokenizer", "train", corpus_, "--vocab-size", "100", "--out", dir_ / "t.json"}), 1,
      {"257"});
  EXPECT_FALSE(fs::exists(dir_ / "t.json"));
  expect_failure(
      lmlab(with_sets({"prepare", test::tiny_config(), "--out", prep}, {"data.format=bin"})), 2,
      {"already reads token files"});
  expect_failure(lmlab(with_sets({"train", test::tiny_config(), "--run-dir", run},
                                 {"data.tokenizer=char", "data.tokenizer_file=x.json"})),
                 1, {"data.tokenizer_file is for data.tokenizer=bpe"}, run);
  expect_failure(lmlab(with_sets({"train", test::tiny_config(), "--run-dir", run},
                                 {"data.tokenizer_file=" + dir_ / "missing.json"})),
                 1, {dir_ / "missing.json", "data.tokenizer_file"}, run);
  // A binary corpus: prepare writes nothing.
  const std::string binary = dir_ / "binary.txt";
  test::write_file(binary, std::string("abc\0def", 7));
  expect_failure(
      lmlab(with_sets({"prepare", test::tiny_config(), "--out", prep}, {"data.corpus=" + binary})),
      1, {binary, "NUL byte"});
  EXPECT_FALSE(fs::exists(prep));
  // Damaged token files: a truncated train.bin, then a corrupt meta.json.
  ASSERT_EQ(lmlab(with_sets({"prepare", test::tiny_config(), "--out", prep}, {})).code, 0);
  const std::vector<std::string> bin{"data.format=bin", "data.corpus=" + prep, "train.max_iters=2"};
  const std::string train_bin = prep + "/train.bin";
  fs::resize_file(train_bin, fs::file_size(train_bin) - 2);
  expect_failure(lmlab(with_sets({"train", test::tiny_config(), "--run-dir", run}, bin)), 1,
                 {train_bin}, run);
  test::write_file(prep + "/meta.json", "{\"format\": ");
  expect_failure(lmlab(with_sets({"train", test::tiny_config(), "--run-dir", run}, bin)), 1,
                 {prep + "/meta.json"}, run);
}

}  // namespace
}  // namespace lmlab::train
