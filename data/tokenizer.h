// Tokenizers: character level over Unicode code points (nanoGPT's shakespeare_char, which uses
// sorted(set(text))), byte level (vocabulary 256) and byte-level BPE (data/bpe.h: GPT-2's, or one
// trained on the corpus). Each serialises to a JSON string for checkpoint metadata and rebuilds
// from it.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/bpe.h"
#include "data/corpus.h"

namespace lmlab::data {

class Tokenizer {
 public:
  // Character level: the vocabulary is the sorted set of code points in `text` (which must be
  // UTF-8; a NUL is an ordinary character here), id i = the i-th smallest code point.
  // Throws "[tokenizer] ..." on malformed UTF-8 (with the byte offset) or an empty text.
  static Tokenizer chars(const std::string& text);
  // Byte level: id = byte value, vocabulary 256; encodes any byte string.
  static Tokenizer bytes();
  // Byte-level BPE; encodes any byte string (special tokens' text as plain text).
  static Tokenizer from_bpe(Bpe model);
  // chars(text) for kind "char", bytes() for "byte" (the config's tokenizer key);
  // throws "[tokenizer] unknown tokenizer kind \"x\" (expected char or byte)".
  static Tokenizer make(const std::string& kind, const std::string& text);
  // Rebuilds a tokenizer from serialize()'s output; throws "[tokenizer] corrupt ..." on bad input.
  static Tokenizer from_serialized(const std::string& serialized);

  // Text -> ids. Char level throws "[tokenizer] character 'x' (U+0078) at byte offset 12
  // (character 9) is not in the vocabulary of 65 characters" or on malformed UTF-8.
  std::vector<int32_t> encode(const std::string& text) const;
  // The corpus as ids: encode(corpus.text), except that a BPE tokenizer with an end-of-text token
  // encodes each file of a directory on its own and puts that token between them (documents
  // joined as GPT-2's were).
  std::vector<int32_t> encode_corpus(const Corpus& corpus) const;
  // Ids -> text; throws "[tokenizer] id 300 at position 5 is out of range [0, 65)". BPE ids that
  // cut a character decode to U+FFFD there (tiktoken's decode); byte ids may give invalid UTF-8.
  std::string decode(const std::vector<int32_t>& ids) const;
  // Ids -> their bytes, without any replacement: what a stream of tokens prints piece by piece
  // (data/utf8.h's Utf8Stream holds back a character cut between two tokens).
  std::string decode_bytes(const std::vector<int32_t>& ids) const;
  // How many bytes of text token `id` stands for (1 for a byte, 1-4 for a character, the token's
  // bytes for BPE; 0 for a special token such as <|endoftext|>, which is not text): bits per byte.
  int64_t text_bytes(int32_t id) const;

  int64_t vocab_size() const;
  const std::string& kind() const { return kind_; }  // "char", "byte" or "bpe"
  // The BPE model (nullptr for char and byte).
  const Bpe* bpe() const { return bpe_ ? &*bpe_ : nullptr; }
  // Char level: the vocabulary as one UTF-8 string, id order; byte level: empty.
  std::string vocab_string() const;
  // {"kind":"char","vocab_size":65,"vocab":"\n !..."}, {"kind":"byte","vocab_size":256} or
  // {"kind":"bpe","vocab_size":4096,"tokenizer_json":"<its tokenizer.json>"}.
  std::string serialize() const;

  bool operator==(const Tokenizer& other) const = default;

 private:
  Tokenizer() = default;
  void build_index();

  std::string kind_;
  std::vector<char32_t> vocab_;  // char level: sorted code points, id -> code point
  std::vector<int32_t> index_;   // char level: code point -> id, -1 when absent (dense table)
  std::optional<Bpe> bpe_;       // bpe
};

}  // namespace lmlab::data
