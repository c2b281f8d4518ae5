// Byte-level BPE (GPT-2, tiktoken's r50k_base): GPT-2's pre-tokenization regex as a hand-written
// matcher, byte-pair merges by rank within each piece, special tokens, Hugging Face tokenizer.json
// in and out, and deterministic training with an incremental pair-count index. docs/data.md, "BPE
// tokenizer", describes the semantics, the file layout and the errors.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lmlab::data {

// GPT-2's pre-tokenization: the matches, in order, of
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (\p{L}, \p{N}: Unicode general categories L*, N*; \s: White_Space; data/unicode_tables.h).
// The pieces are views into `text` and concatenate back to it. Bytes that are not well-formed
// UTF-8 are taken one at a time as characters of the last class ([^\s\p{L}\p{N}]), so any byte
// string splits; tiktoken itself only sees valid UTF-8.
std::vector<std::string_view> gpt2_pretokenize(std::string_view text);
// The end of the piece that starts at byte `begin` (< text.size()): the primitive of the above.
size_t gpt2_piece_end(std::string_view text, size_t begin);

// What Bpe::train reports while it runs.
struct BpeTrainProgress {
  int64_t tokens = 0;      // tokens in the vocabulary so far (256 bytes + merges)
  int64_t target = 0;      // the vocabulary it stops at, special token excluded
  int64_t pair_count = 0;  // how often the last merged pair occurred in the corpus
  std::string last_token;  // the bytes of the last token made
  double seconds = 0;      // since train() started
};

struct BpeTrainOptions {
  // Stop when the most frequent pair occurs fewer times than this (>= 1).
  int64_t min_frequency = 2;
  // Called every `progress_every` new tokens (0: about every 1% of the target) and at the end.
  std::function<void(const BpeTrainProgress&)> progress;
  int64_t progress_every = 0;
};

class Bpe {
 public:
  // The end-of-text special token of GPT-2 (id 50256 in r50k_base; the last id of a trained Bpe).
  static constexpr std::string_view kEndOfText = "<|endoftext|>";

  // Reads a Hugging Face tokenizer.json: model.type "BPE", model.vocab (token in GPT-2's
  // byte-to-unicode alphabet -> id), model.merges ("a b" strings or ["a", "b"] pairs, rank order),
  // added_tokens (the special tokens), ByteLevel pre-tokenizer. Throws "[bpe] <path>: ..." naming
  // what is wrong: not JSON (with the byte offset), a missing key, a vocab key outside the
  // byte-level alphabet, duplicate or missing ids, a merge whose part or result is not in the
  // vocab (with its index), an unsupported normalizer or pre-tokenizer.
  static Bpe load(const std::string& path);
  // The same from the file's text; `source` names it in errors.
  static Bpe from_json(const std::string& json, const std::string& source = "tokenizer.json");
  // The tokenizer.json text (load(path) of it gives an equal Bpe), and writing it to `path`.
  std::string to_json() const;
  void save(const std::string& path) const;

  // Trains merges on `corpus`: GPT-2 pre-tokenization (occurrences of <|endoftext|> separate
  // documents and are not learned from), then repeatedly the most frequent adjacent pair of the
  // pieces becomes a token, ties going to the lexicographically smaller (left bytes, right bytes);
  // deterministic. Ids: 0..255 the bytes, then the merges in order, then <|endoftext|>, so the
  // vocabulary is `vocab_size` (>= 257) unless the corpus runs out of pairs first. Throws
  // "[bpe] ..." on a vocab_size below 257 or a min_frequency below 1.
  static Bpe train(std::string_view corpus, int64_t vocab_size,
                   const BpeTrainOptions& options = {});

  // Text -> ids, as tiktoken does: each piece of gpt2_pretokenize that is a token is that token;
  // otherwise its bytes merge, lowest-ranked adjacent pair first (leftmost on ties), where a pair
  // may merge when the concatenation of its bytes is a ranked token. `allow_special` false (the
  // default, tiktoken's encode_ordinary): "<|endoftext|>" is plain text; true: each occurrence of
  // a special token's text becomes its id. Any bytes encode (see gpt2_pretokenize) and
  // decode_bytes(encode(x)) == x.
  std::vector<int32_t> encode(std::string_view text, bool allow_special = false) const;
  // The same ids, computed on `threads` threads (0: OpenMP's max) over chunks of the text cut
  // at a '\n' between two non-space ASCII characters (a piece of its own, whatever follows).
  std::vector<int32_t> encode_parallel(std::string_view text, bool allow_special = false,
                                       int threads = 0) const;

  // Ids -> the concatenated bytes of their tokens; may be invalid UTF-8 when the ids cut a
  // character. Throws "[bpe] id 60000 at position 3 is out of range [0, 50257) of <source>".
  std::string decode_bytes(const std::vector<int32_t>& ids) const;
  // decode_bytes, then each maximal ill-formed subsequence replaced by U+FFFD (Python's
  // errors="replace", what tiktoken's decode does): always valid UTF-8.
  std::string decode(const std::vector<int32_t>& ids) const;

  int64_t vocab_size() const;   // ids are [0, vocab_size), special tokens included
  int64_t merge_count() const;  // ranked tokens made of two others
  // The id of a special token (e.g. kEndOfText), or -1 when this vocabulary has none by that name.
  int32_t special_id(std::string_view text) const;
  // Whether `id` is a special token (such as <|endoftext|>).
  bool is_special(int32_t id) const;
  // The bytes of token `id` (a special token: its text); throws when out of range.
  const std::string& token_bytes(int32_t id) const;
  // Where it came from (the path loaded, or "a tokenizer trained to 4096 tokens"), for errors.
  const std::string& source() const;

  // Same vocabulary (ids and bytes), merges and special tokens.
  bool operator==(const Bpe& other) const;

  struct Model;  // data/bpe_model.h

 private:
  explicit Bpe(std::shared_ptr<const Model> model) : model_(std::move(model)) {}
  std::shared_ptr<const Model> model_;  // immutable: copies are cheap and thread-safe
};

}  // namespace lmlab::data
