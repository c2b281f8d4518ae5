// A run's data from the config's data section (run/data_setup.h).
#include "train/run/data_setup.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <vector>

#include "autograd/error.h"
#include "data/bpe.h"
#include "data/token_file.h"

namespace lmlab::train {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string& what) { throw Error("[data] " + what); }

}  // namespace

std::string bpe_training_text(const data::Corpus& corpus, double val_fraction) {
  const std::string& text = corpus.text;
  size_t cut = size_t(std::floor(double(text.size()) * (1 - val_fraction)));
  while (cut > 0 && cut < text.size() && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80)
    --cut;
  std::string out;
  for (size_t f = 0; f < corpus.starts.size() && corpus.starts[f] < cut; ++f) {
    const size_t end = f + 1 < corpus.starts.size() ? corpus.starts[f + 1] : text.size();
    if (f > 0) out += data::Bpe::kEndOfText;
    out.append(text, corpus.starts[f], std::min(end, cut) - corpus.starts[f]);
  }
  return out;
}

namespace {

data::Tokenizer load_bpe_file(const DataConfig& d) {
  try {
    return data::Tokenizer::from_bpe(data::Bpe::load(d.tokenizer_file));
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (data.tokenizer_file)");
  }
}

// UTF-8 bytes per predicted validation token: targets are val tokens 1 .. n_val - 1.
double val_bytes_per_token(const data::Tokenizer& tok, const data::TokenDataset& ds) {
  std::vector<int64_t> bytes(size_t(tok.vocab_size()));
  for (int32_t id = 0; id < int32_t(bytes.size()); ++id) bytes[size_t(id)] = tok.text_bytes(id);
  const int64_t n = ds.val_size();
  if (n < 2) return 0;
  std::vector<int32_t> chunk(size_t(1) << 20);
  int64_t total = 0;
  for (int64_t start = 1; start < n; start += int64_t(chunk.size())) {
    const int64_t count = std::min<int64_t>(int64_t(chunk.size()), n - start);
    ds.read_val(start, count, chunk.data());
    for (int64_t i = 0; i < count; ++i) {
      const int32_t id = chunk[size_t(i)];
      if (id < 0 || id >= int32_t(bytes.size()))
        fail("validation token " + std::to_string(start + i) + " is " + std::to_string(id) +
             ", outside the tokenizer's vocabulary of " + std::to_string(bytes.size()));
      total += bytes[size_t(id)];
    }
  }
  return double(total) / double(n - 1);
}

// The token files data.corpus names: a directory's train.bin and val.bin, or one file.
struct BinPaths {
  std::string train, val;  // val empty: one file, split by val_fraction
};

BinPaths bin_paths(const std::string& corpus) {
  std::error_code ec;
  if (!fs::is_directory(corpus, ec)) {
    if (!fs::exists(corpus, ec)) fail(corpus + " does not exist");
    return {corpus, ""};
  }
  const std::string train = (fs::path(corpus) / "train.bin").string();
  const std::string val = (fs::path(corpus) / "val.bin").string();
  for (const std::string& p : {train, val})
    if (!fs::exists(p, ec))
      fail(corpus + " has no " + fs::path(p).filename().string() +
           " (a prepared directory holds train.bin and val.bin: `lmlab prepare CONFIG`)");
  return {train, val};
}

// The tokenizer of a bin dataset: the checkpoint's, the config's tokenizer_file, the one its
// meta.json keeps, or byte level; then checked against the identity meta.json records.
data::Tokenizer bin_tokenizer(const DataConfig& d, const std::optional<data::TokenMeta>& meta,
                              const std::string& given, const std::string& meta_path) {
  std::optional<data::Tokenizer> tok;
  if (!given.empty())
    tok = data::Tokenizer::from_serialized(given);
  else if (d.tokenizer == "bpe" && !d.tokenizer_file.empty())
    tok = load_bpe_file(d);
  else if (meta && !meta->tokenizer.serialized.empty())
    tok = data::Tokenizer::from_serialized(meta->tokenizer.serialized);
  else if (d.tokenizer == "byte")
    tok = data::Tokenizer::bytes();
  else
    fail(d.corpus +
         ": no meta.json beside it keeps the tokenizer that wrote it, so data.tokenizer " +
         d.tokenizer +
         " cannot be rebuilt: set data.tokenizer=bpe with data.tokenizer_file (GPT-2's for "
         "nanoGPT's and llm.c's files), or data.tokenizer=byte");
  if (given.empty() && tok->kind() != d.tokenizer)
    fail(d.corpus + " was prepared with a " + tok->kind() + " tokenizer (" + meta_path +
         "), but data.tokenizer is " + d.tokenizer);
  if (meta) {
    const uint64_t ours = data::xxh64(tok->serialize());
    if (ours != meta->tokenizer.checksum)
      fail(d.corpus + " was tokenized by " + meta->tokenizer.name + " (" +
           data::format_checksum(meta->tokenizer.checksum) + ", " + meta_path +
           ") but this run's " + tok->kind() + " tokenizer is another (" +
           data::format_checksum(ours) +
           "): prepare the data again with this tokenizer, or use the one that wrote it");
  }
  return *tok;
}

RunData load_bin(const DataConfig& d, const std::string& given) {
  const BinPaths paths = bin_paths(d.corpus);
  const std::string meta_path = data::meta_path_beside(paths.train);
  const std::optional<data::TokenMeta> meta = data::read_meta(meta_path);
  data::Tokenizer tok = bin_tokenizer(d, meta, given, meta_path);
  data::TokenFileOptions opt;
  opt.vocab_size = tok.vocab_size();
  data::TokenFile train = data::TokenFile::open(paths.train, opt);
  if (train.vocab_size() > tok.vocab_size())
    fail(paths.train + " holds ids of a vocabulary of " + std::to_string(train.vocab_size()) +
         ", more than the " + std::to_string(tok.vocab_size()) + " of this run's " + tok.kind() +
         " tokenizer");
  if (paths.val.empty()) return {tok, data::TokenDataset(std::move(train), d.val_fraction), 0, ""};
  opt.access = data::TokenAccess::Sequential;
  return {tok, data::TokenDataset(std::move(train), data::TokenFile::open(paths.val, opt)), 0, ""};
}

RunData load_text(const DataConfig& d, const std::string& given) {
  const data::Corpus corpus = data::read_corpus(d.corpus);
  data::Tokenizer tok =
      given.empty() ? make_tokenizer(d, corpus) : data::Tokenizer::from_serialized(given);
  return {tok, data::TokenDataset(tok.encode_corpus(corpus), d.val_fraction), 0, ""};
}

}  // namespace

data::Tokenizer make_tokenizer(const DataConfig& d, const data::Corpus& corpus) {
  if (d.tokenizer != "bpe") return data::Tokenizer::make(d.tokenizer, corpus.text);
  if (!d.tokenizer_file.empty()) return load_bpe_file(d);
  return data::Tokenizer::from_bpe(
      data::Bpe::train(bpe_training_text(corpus, d.val_fraction), d.bpe_vocab_size));
}

data::TokenizerIdentity tokenizer_identity(const DataConfig& d, const data::Tokenizer& tok) {
  // Appended, not operator+: GCC 12's -Wrestrict misfires on it.
  std::string name = tok.kind();
  if (tok.kind() == "bpe" && d.tokenizer_file.empty()) {
    name += ":trained-";
    name += std::to_string(tok.vocab_size());
  } else if (tok.kind() == "bpe") {
    name += ":";
    name += fs::path(d.tokenizer_file).filename().string();
  }
  const std::string serialized = tok.serialize();
  return data::TokenizerIdentity::of(name, serialized, serialized.size() <= (size_t(8) << 20));
}

RunData load_run_data(const DataConfig& d, int64_t block_size, const std::string& given) {
  try {
    RunData r = d.format == "bin" ? load_bin(d, given) : load_text(d, given);
    r.dataset.check_block_size(block_size);
    r.val_bytes_per_token = val_bytes_per_token(r.tokenizer, r.dataset);
    r.source = "data.corpus " + d.corpus;
    return r;
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (data.corpus " + d.corpus + ")");
  }
}

double bits_per_byte(double nats_per_token, double val_bytes_per_token) {
  if (!(val_bytes_per_token > 0)) return NAN;
  return nats_per_token / std::log(2.0) / val_bytes_per_token;
}

}  // namespace lmlab::train
