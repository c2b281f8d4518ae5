// The data of a run from the config's data section, in one place for `lmlab train`, `eval`,
// `bench` and `prepare`: the tokenizer (char, byte, or BPE loaded from data.tokenizer_file or
// trained on the corpus), the corpus or the prepared token files (data.format text | bin), the
// train/val split, and the bytes of text per validation token that turn a loss in nats per token
// into bits per byte. docs/data.md.
#pragma once
#include <cstdint>
#include <string>

#include "data/corpus.h"
#include "data/dataset.h"
#include "data/token_meta.h"
#include "data/tokenizer.h"
#include "train/config/config.h"

namespace lmlab::train {

// The tokenizer data.tokenizer names, for a text corpus: char (the corpus's characters), byte,
// or bpe: data.tokenizer_file when set, else one trained to data.bpe_vocab_size on the first
// (1 - val_fraction) of the corpus's bytes, so the validation text never shapes the vocabulary.
data::Tokenizer make_tokenizer(const DataConfig& d, const data::Corpus& corpus);

// The text a BPE learns from: the corpus's first (1 - val_fraction) bytes (0: all of it), its
// files joined with <|endoftext|> as Tokenizer::encode_corpus joins them.
std::string bpe_training_text(const data::Corpus& corpus, double val_fraction);

// What meta.json records about a tokenizer ("char", "byte", "bpe:<file>" or "bpe:trained-4096").
data::TokenizerIdentity tokenizer_identity(const DataConfig& d, const data::Tokenizer& tok);

struct RunData {
  data::Tokenizer tokenizer;
  data::TokenDataset dataset;
  // UTF-8 bytes of text per predicted validation token (special tokens count 0): bits per byte =
  // loss / ln 2 / val_bytes_per_token.
  double val_bytes_per_token = 0;
  std::string source;  // "data.corpus /path" for messages
};

// Loads the data: data.format text reads data.corpus and tokenizes it (encode_corpus); bin maps
// data.corpus, a directory prepared by `lmlab prepare` / nanoGPT (train.bin and val.bin) or one
// .bin file (nanoGPT's or llm.c's, split by val_fraction). `given` is a checkpoint's serialized
// tokenizer (resume, --init-from, eval): it wins over the config's; otherwise a bin dataset takes
// the tokenizer its meta.json keeps, and a mismatch between the config's tokenizer and the one
// that wrote the files is an error naming both. Checks block_size against both splits. Errors
// name data.corpus.
RunData load_run_data(const DataConfig& d, int64_t block_size, const std::string& given = "");

// loss (nats per token) in bits per byte; NaN when val_bytes_per_token is 0.
double bits_per_byte(double nats_per_token, double val_bytes_per_token);

}  // namespace lmlab::train
