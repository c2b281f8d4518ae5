// Tokenizers: character level over Unicode code points (nanoGPT's shakespeare_char, which uses
// sorted(set(text))) and byte level (vocabulary 256). Both serialise to a JSON string for
// checkpoint metadata and rebuild from it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lmlab::data {

class Tokenizer {
 public:
  // Character level: the vocabulary is the sorted set of code points in `text` (which must be
  // UTF-8; a NUL is an ordinary character here), id i = the i-th smallest code point.
  // Throws "[tokenizer] ..." on malformed UTF-8 (with the byte offset) or an empty text.
  static Tokenizer chars(const std::string& text);
  // Byte level: id = byte value, vocabulary 256; encodes any byte string.
  static Tokenizer bytes();
  // chars(text) for kind "char", bytes() for "byte" (the config's tokenizer key);
  // throws "[tokenizer] unknown tokenizer kind \"x\" (expected char or byte)".
  static Tokenizer make(const std::string& kind, const std::string& text);
  // Rebuilds a tokenizer from serialize()'s output; throws "[tokenizer] corrupt ..." on bad input.
  static Tokenizer from_serialized(const std::string& serialized);

  // Text -> ids. Char level throws "[tokenizer] character 'x' (U+0078) at byte offset 12
  // (character 9) is not in the vocabulary of 65 characters" or on malformed UTF-8.
  std::vector<int32_t> encode(const std::string& text) const;
  // Ids -> text; throws "[tokenizer] id 300 at position 5 is out of range [0, 65)".
  std::string decode(const std::vector<int32_t>& ids) const;

  int64_t vocab_size() const;
  const std::string& kind() const { return kind_; }  // "char" or "byte"
  // Char level: the vocabulary as one UTF-8 string, id order; byte level: empty.
  std::string vocab_string() const;
  // {"kind":"char","vocab_size":65,"vocab":"\n !..."} or {"kind":"byte","vocab_size":256}.
  std::string serialize() const;

  bool operator==(const Tokenizer& other) const = default;

 private:
  Tokenizer() = default;
  void build_index();

  std::string kind_;
  std::vector<char32_t> vocab_;  // char level: sorted code points, id -> code point
  std::vector<int32_t> index_;   // char level: code point -> id, -1 when absent (dense table)
};

}  // namespace lmlab::data
