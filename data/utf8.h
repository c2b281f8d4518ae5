// Strict UTF-8 decoding and encoding (Unicode 15, Table 3-7 "well-formed byte sequences"):
// no overlong forms, no surrogates, nothing above U+10FFFF. Shared by the corpus loader and the
// character tokenizer; every read is bounds-checked, so a sequence cut off at the end is an error.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace lmlab::data::utf8 {

// One decoded character: its code point and byte length, or why the bytes at `offset` are bad.
struct Char {
  char32_t code_point = 0;
  int length = 0;                 // 1..4 when ok
  const char* problem = nullptr;  // null when ok; else Python's wording, e.g. "invalid start byte"
};

// Decodes the character starting at s[i] (requires i < s.size()); never reads past s.size().
Char decode_at(std::string_view s, size_t i);

// A malformed spot: byte offset and value of the first byte of the bad sequence, and why.
struct Problem {
  size_t offset = 0;
  unsigned char byte = 0;
  const char* reason = "";
};
// The first malformed sequence in s, or nullopt when s is well-formed UTF-8.
std::optional<Problem> first_problem(std::string_view s);
// "invalid byte 0xff at offset 1234 (invalid start byte)".
std::string describe(const Problem& p);

// `bytes` with each maximal ill-formed subsequence replaced by U+FFFD (Unicode's "best practice
// for U+FFFD substitution", what Python's errors="replace" and tiktoken's decode do): valid UTF-8.
std::string replace_invalid(std::string_view bytes);

// Bytes that arrive piece by piece (tokens being generated) turned into text to print as they
// come: a character whose bytes are split between two pieces is held back until it is whole, so
// a screen never shows half of one; ill-formed bytes show as U+FFFD. The concatenation of every
// push() and finish() is replace_invalid(all the bytes).
class Stream {
 public:
  // Appends `bytes`; returns what can be shown now.
  std::string push(std::string_view bytes);
  // The held-back end (an unfinished character becomes U+FFFD); the stream is then empty.
  std::string finish();

 private:
  std::string pending_;
};

// Appends the UTF-8 encoding of a valid code point (not a surrogate, <= U+10FFFF).
void append(std::string& out, char32_t code_point);
// "U+00E9".
std::string code_point_name(char32_t code_point);

}  // namespace lmlab::data::utf8
