// A run's data from the config (train/run/data_setup.h): BPE trained on the train part or loaded
// from a file, prepared token files read exactly as the text they came from, the tokenizer a bin
// dataset needs and the mismatches refused, bits per byte.
#include <gtest/gtest.h>

#include <cmath>
#include <span>

#include "data/token_writer.h"
#include "tests/test_util.h"
#include "tests/train/cli_util.h"
#include "train/run/data_setup.h"

namespace lmlab::train {
namespace {

using test::TempDir;
using test::ThrowsWith;

class DataSetupTest : public ::testing::Test {
 protected:
  void SetUp() override { test::write_file(corpus_, test::small_corpus()); }

  DataConfig config(const std::string& tokenizer) const {
    DataConfig d;
    d.corpus = corpus_;
    d.tokenizer = tokenizer;
    d.bpe_vocab_size = 300;
    return d;
  }
  // The prepared directory of `d` (what `lmlab prepare` writes).
  std::string prepare(const DataConfig& d, const std::string& name) const {
    const data::Corpus corpus = data::read_corpus(d.corpus);
    const data::Tokenizer tok = make_tokenizer(d, corpus);
    const std::vector<int32_t> ids = tok.encode_corpus(corpus);
    const auto n = size_t(data::train_split_size(int64_t(ids.size()), d.val_fraction));
    const std::span<const int32_t> all(ids);
    data::write_token_dir(dir_ / name, all.first(n), all.subspan(n), tok.vocab_size(),
                          tokenizer_identity(d, tok));
    return dir_ / name;
  }

  TempDir dir_{"data_setup"};
  std::string corpus_ = dir_ / "corpus.txt";
};

TEST_F(DataSetupTest, BpeIsTrainedOnTheTrainPartOnlyAndDeterministically) {
  const DataConfig d = config("bpe");
  const RunData a = load_run_data(d, 16), b = load_run_data(d, 16);
  EXPECT_EQ(a.tokenizer.kind(), "bpe");
  EXPECT_EQ(a.tokenizer.vocab_size(), 300);
  EXPECT_EQ(a.tokenizer, b.tokenizer);
  EXPECT_EQ(a.dataset.tokens(), b.dataset.tokens());
  // What it learned from: the corpus's first 90%, not the validation tail.
  const data::Corpus corpus = data::read_corpus(d.corpus);
  const std::string text = bpe_training_text(corpus, 0.1);
  EXPECT_EQ(text, corpus.text.substr(0, text.size()));
  EXPECT_EQ(text.size(), size_t(std::floor(double(corpus.text.size()) * 0.9)));
  EXPECT_EQ(a.tokenizer, data::Tokenizer::from_bpe(data::Bpe::train(text, 300)));
  // The same text decodes back, and the bytes per token are the corpus's over the tokens.
  EXPECT_EQ(a.tokenizer.decode(a.dataset.tokens()), corpus.text);
  EXPECT_GT(a.val_bytes_per_token, 1.5);
}

TEST_F(DataSetupTest, PreparedFilesGiveTheBatchesOfTheirText) {
  for (const char* kind : {"char", "byte", "bpe"}) {
    SCOPED_TRACE(kind);
    DataConfig text = config(kind);
    const RunData t = load_run_data(text, 16);
    DataConfig bin = text;
    bin.format = "bin";
    bin.corpus = prepare(text, std::string("prep_") + kind);
    const RunData m = load_run_data(bin, 16);
    EXPECT_TRUE(m.dataset.mapped());
    EXPECT_EQ(m.tokenizer, t.tokenizer);
    EXPECT_EQ(m.dataset.train_size(), t.dataset.train_size());
    EXPECT_EQ(m.dataset.val_size(), t.dataset.val_size());
    EXPECT_DOUBLE_EQ(m.val_bytes_per_token, t.val_bytes_per_token);
    Generator g1(5), g2(5);
    for (int i = 0; i < 3; ++i) {
      const data::Batch x = t.dataset.sample_batch(4, 16, g1),
                        y = m.dataset.sample_batch(4, 16, g2);
      ASSERT_EQ(x.x.to_vector<int32_t>(), y.x.to_vector<int32_t>());
      ASSERT_EQ(x.y.to_vector<int32_t>(), y.y.to_vector<int32_t>());
    }
    // data.tokenizer must name the kind that wrote the files.
    bin.tokenizer = std::string(kind) == "byte" ? "char" : "byte";
    EXPECT_TRUE(ThrowsWith([&] { load_run_data(bin, 16); },
                           {"was prepared with a " + std::string(kind) + " tokenizer",
                            "data.tokenizer is " + bin.tokenizer, "(data.corpus " + bin.corpus}));
  }
}

TEST_F(DataSetupTest, ATokenizerFileOtherThanTheOneThatWroteTheFilesIsRefused) {
  DataConfig d = config("bpe");
  DataConfig bin = d;
  bin.format = "bin";
  bin.corpus = prepare(d, "prep");
  // Another vocabulary saved as a file, named by the config.
  const std::string other = dir_ / "other.json";
  data::Bpe::train(test::small_corpus(), 280).save(other);
  bin.tokenizer_file = other;
  EXPECT_TRUE(ThrowsWith([&] { load_run_data(bin, 16); },
                         {"was tokenized by bpe:trained-300", "this run's bpe tokenizer is another",
                          "prepare the data again"}));
  // The one that wrote them, saved and named, is accepted.
  const std::string same = dir_ / "same.json";
  make_tokenizer(d, data::read_corpus(d.corpus)).bpe()->save(same);
  bin.tokenizer_file = same;
  EXPECT_EQ(load_run_data(bin, 16).tokenizer.vocab_size(), 300);
}

TEST_F(DataSetupTest, AForeignBinFileNeedsATokenizerThatCanReadIt) {
  // nanoGPT's layout: raw uint16 ids and no meta.json.
  const data::Tokenizer tok =
      data::Tokenizer::from_bpe(data::Bpe::train(test::small_corpus(), 300));
  const std::vector<int32_t> ids = tok.encode(test::small_corpus());
  std::string raw;
  for (int32_t id : ids) raw += {char(id & 0xFF), char(id >> 8)};
  const std::string bin_file = dir_ / "train.bin";
  test::write_file(bin_file, raw);
  DataConfig d = config("char");
  d.format = "bin";
  d.corpus = bin_file;
  EXPECT_TRUE(ThrowsWith([&] { load_run_data(d, 16); },
                         {"no meta.json beside it keeps the tokenizer", "data.tokenizer_file"}));
  d.tokenizer = "bpe";
  d.tokenizer_file = dir_ / "tok.json";
  tok.bpe()->save(d.tokenizer_file);
  const RunData r = load_run_data(d, 16);  // one file: split by val_fraction
  EXPECT_EQ(r.dataset.size(), int64_t(ids.size()));
  EXPECT_EQ(r.dataset.train_size(), data::train_split_size(int64_t(ids.size()), 0.1));
  // A directory without val.bin says what a prepared directory holds.
  d.corpus = dir_.str();
  EXPECT_TRUE(ThrowsWith([&] { load_run_data(d, 16); }, {"has no val.bin", "lmlab prepare"}));
  // A byte tokenizer cannot read ids of a larger vocabulary.
  d.corpus = bin_file;
  d.tokenizer = "byte";
  d.tokenizer_file.clear();
  EXPECT_TRUE(ThrowsWith([&] { load_run_data(d, 16); }, {"not below vocab_size 256"}));
}

TEST_F(DataSetupTest, AnLlmcFileTrainsWithGpt2sTokenizer) {
  // llm.c's GPT-2 layout: 256 int32 of header (magic 20240520, version 1, count), uint16 ids.
  DataConfig d = config("bpe");
  d.tokenizer_file = std::string(LMLAB_SOURCE_DIR) + "/tests/fixtures/bpe/r50k_base.json";
  const data::Tokenizer gpt2 = data::Tokenizer::from_bpe(data::Bpe::load(d.tokenizer_file));
  const std::string text = test::small_corpus();
  const std::vector<int32_t> ids = gpt2.encode(text);
  std::vector<int32_t> header(256, 0);
  header[0] = data::kLlmcMagicGpt2;
  header[1] = 1;
  header[2] = int32_t(ids.size());
  std::string bytes(reinterpret_cast<const char*>(header.data()), 1024);
  for (int32_t id : ids) bytes += {char(id & 0xFF), char(id >> 8)};
  d.format = "bin";
  d.corpus = dir_ / "fineweb_train_000001.bin";
  test::write_file(d.corpus, bytes);
  const RunData r = load_run_data(d, 16);
  EXPECT_EQ(r.tokenizer.vocab_size(), 50257);
  EXPECT_EQ(r.dataset.size(), int64_t(ids.size()));
  std::vector<int32_t> head(20);
  r.dataset.read_train(0, 20, head.data());
  EXPECT_EQ(gpt2.decode(head), gpt2.decode({ids.begin(), ids.begin() + 20}));
  EXPECT_EQ(text.rfind(gpt2.decode(head), 0), 0u);
  EXPECT_NEAR(r.val_bytes_per_token, 4.0, 1.5);  // short English words and their spaces
}

TEST_F(DataSetupTest, BitsPerByteOfAByteTokenizerAreBitsPerToken) {
  const RunData r = load_run_data(config("byte"), 16);
  EXPECT_DOUBLE_EQ(r.val_bytes_per_token, 1.0);
  EXPECT_DOUBLE_EQ(bits_per_byte(std::log(2.0) * 3, 1.0), 3.0);
  EXPECT_DOUBLE_EQ(bits_per_byte(std::log(2.0) * 3, 2.0), 1.5);
  EXPECT_TRUE(std::isnan(bits_per_byte(1.0, 0.0)));
  // The char tokenizer of an ASCII corpus: one byte per character too.
  EXPECT_DOUBLE_EQ(load_run_data(config("char"), 16).val_bytes_per_token, 1.0);
}

}  // namespace
}  // namespace lmlab::train
