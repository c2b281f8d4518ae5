// `lmlab prepare` (a config's corpus as token files: train.bin, val.bin, meta.json) and
// `lmlab tokenizer train` (a byte-level BPE learned on a corpus, saved as tokenizer.json).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cxxopts.hpp>
#include <filesystem>
#include <iostream>
#include <span>

#include "data/bpe.h"
#include "data/corpus.h"
#include "data/dataset.h"
#include "data/token_writer.h"
#include "train/cli/commands.h"
#include "train/common/text.h"
#include "train/config/config.h"
#include "train/run/data_setup.h"

namespace lmlab::train::cli {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// "1.2 MB" for messages.
std::string megabytes(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB", bytes / 1e6);
  return buf;
}

// Bpe::train's progress as one line: rewritten in place on a terminal, every 10% in a log.
data::BpeTrainOptions progress_options(bool quiet) {
  data::BpeTrainOptions o;
  if (quiet) return o;
  const bool tty = ::isatty(STDOUT_FILENO) != 0;
  o.progress = [tty, last_decile = int64_t(-1)](const data::BpeTrainProgress& p) mutable {
    const double left =
        double(p.target - p.tokens) * p.seconds / double(std::max<int64_t>(1, p.tokens - 256));
    char line[200];
    std::snprintf(line, sizeof line,
                  "tokenizer: %lld/%lld tokens | last merge seen %lld times | %s | ETA %s",
                  (long long)p.tokens, (long long)p.target, (long long)p.pair_count,
                  format_duration(p.seconds).c_str(), format_duration(left).c_str());
    const int64_t decile = p.target > 0 ? p.tokens * 10 / p.target : 10;
    if (tty) {
      std::cout << "\r" << line << "   " << std::flush;
    } else if (decile != last_decile) {
      std::cout << line << "\n" << std::flush;
      last_decile = decile;
    }
  };
  return o;
}

}  // namespace

int prepare_main(int argc, char** argv) {
  cxxopts::Options opts("lmlab prepare",
                        "Tokenize a config's corpus once into token files (nanoGPT's train.bin / "
                        "val.bin, uint16 or uint32, plus meta.json with the tokenizer and "
                        "checksums); train from them with data.format=bin.\n"
                        "usage: lmlab prepare CONFIG [--set section.key=value]... [--out DIR]");
  std::vector<std::string> sets;
  std::string out;
  opts.add_options()("set", "override a config key (repeatable)", cxxopts::value(sets))(
      "out", "output directory (default: runs/data/<config name>)", cxxopts::value(out));
  cxxopts::ParseResult r;
  if (!parse(opts, argc, argv, r, 1)) return 0;
  const std::string path = r.unmatched()[0];
  const TrainConfig cfg = load_config(path, sets);
  if (cfg.data.format != "text")
    throw UsageError("data.format is " + cfg.data.format +
                     ": the config already reads token files (prepare reads a text corpus)");
  if (out.empty()) out = "runs/data/" + std::filesystem::path(path).stem().string();

  auto t0 = std::chrono::steady_clock::now();
  const data::Corpus corpus = data::read_corpus(cfg.data.corpus);
  std::cout << "prepare: " << cfg.data.corpus << ": " << corpus.files.size() << " files, "
            << megabytes(double(corpus.text.size())) << "\n";
  const data::Tokenizer tok = make_tokenizer(cfg.data, corpus);
  const data::TokenizerIdentity id = tokenizer_identity(cfg.data, tok);
  std::cout << "prepare: tokenizer " << id.name << " (" << tok.vocab_size() << " tokens) in "
            << format_duration(seconds_since(t0)) << "\n";
  t0 = std::chrono::steady_clock::now();
  const std::vector<int32_t> ids = tok.encode_corpus(corpus);
  const double s = seconds_since(t0);
  std::printf("prepare: %lld tokens (%.3f bytes per token) in %s, %.1f MB/s\n",
              (long long)ids.size(), double(corpus.text.size()) / double(ids.size()),
              format_duration(s).c_str(), double(corpus.text.size()) / 1e6 / std::max(s, 1e-9));
  const int64_t n_train = data::train_split_size(int64_t(ids.size()), cfg.data.val_fraction);
  const std::span<const int32_t> all(ids);
  const data::TokenMeta meta = data::write_token_dir(
      out, all.first(size_t(n_train)), all.subspan(size_t(n_train)), tok.vocab_size(), id);
  std::cout << "prepare: wrote " << out << "/{train.bin,val.bin,meta.json}: " << n_train
            << " train / " << ids.size() - size_t(n_train) << " val tokens, "
            << data::dtype_name(meta.dtype) << "\n"
            << "prepare: train from it with: --set data.format=bin --set data.corpus=" << out
            << "\n";
  return 0;
}

int tokenizer_main(int argc, char** argv) {
  cxxopts::Options opts("lmlab tokenizer",
                        "Learn a byte-level BPE on a corpus (GPT-2's pre-tokenization, "
                        "<|endoftext|> between files) and save it as a Hugging Face "
                        "tokenizer.json.\nusage: lmlab tokenizer train CORPUS --vocab-size N "
                        "--out FILE");
  int64_t vocab = 0;
  std::string out;
  data::BpeTrainOptions o;
  opts.add_options()("vocab-size", "tokens in the vocabulary, <|endoftext|> included (>= 257)",
                     cxxopts::value(vocab))("out", "the tokenizer.json to write",
                                            cxxopts::value(out))(
      "min-frequency", "stop when the most frequent pair occurs fewer times",
      cxxopts::value(o.min_frequency)->default_value("2"))("quiet", "no progress line");
  cxxopts::ParseResult r;
  if (!parse(opts, argc, argv, r, 2)) return 0;
  if (r.unmatched()[0] != "train")
    throw UsageError("unknown tokenizer command '" + r.unmatched()[0] + "' (expected train)");
  if (vocab == 0) throw UsageError("--vocab-size N is required");
  if (out.empty()) throw UsageError("--out FILE is required");
  const data::Corpus corpus = data::read_corpus(r.unmatched()[1]);
  const auto t0 = std::chrono::steady_clock::now();
  data::BpeTrainOptions progress = progress_options(r.count("quiet") > 0);
  progress.min_frequency = o.min_frequency;
  const data::Bpe bpe = data::Bpe::train(bpe_training_text(corpus, 0), vocab, progress);
  if (!r.count("quiet") && ::isatty(STDOUT_FILENO)) std::cout << "\n";
  bpe.save(out);
  std::cout << "tokenizer: wrote " << out << ": " << bpe.vocab_size() << " tokens ("
            << bpe.merge_count() << " merges) from " << megabytes(double(corpus.text.size()))
            << " in " << format_duration(seconds_since(t0)) << "\n";
  return 0;
}

}  // namespace lmlab::train::cli
