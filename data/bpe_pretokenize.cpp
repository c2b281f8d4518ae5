// GPT-2's pre-tokenization regex as a hand-written matcher over the character classes of
// data/unicode_tables.h: contractions, letter / number / other runs with an optional leading
// space, and whitespace runs (data/bpe.h states the regex).
#include <algorithm>
#include <array>
#include <cstdint>

#include "data/bpe.h"
#include "data/unicode_tables.h"
#include "data/utf8.h"

namespace lmlab::data {

namespace {

using unicode::kOther;
using unicode::kSpace;

uint8_t class_of(char32_t cp) {
  const char32_t* end = unicode::kRangeStarts + unicode::kRangeCount;
  const char32_t* p = std::upper_bound(unicode::kRangeStarts, end, cp);
  return unicode::kRangeClasses[p - unicode::kRangeStarts - 1];
}

const std::array<uint8_t, 128> kAsciiClass = [] {
  std::array<uint8_t, 128> t{};
  for (char32_t c = 0; c < 128; ++c) t[c] = class_of(c);
  return t;
}();

struct CharAt {
  uint8_t cls;
  uint8_t length;
};

// The class and byte length of the character at s[i]; a malformed byte is one "other" character.
inline CharAt char_at(std::string_view s, size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) return {kAsciiClass[b], 1};
  const utf8::Char c = utf8::decode_at(s, i);
  if (c.problem) return {kOther, 1};
  return {class_of(c.code_point), uint8_t(c.length)};
}

// The end of the run of characters of class `cls` that starts at or continues from s[i].
size_t class_run_end(std::string_view s, size_t i, uint8_t cls) {
  while (i < s.size()) {
    const CharAt c = char_at(s, i);
    if (c.cls != cls) break;
    i += c.length;
  }
  return i;
}

// The length of the contraction ('s 't 're 've 'm 'll 'd) at s[i] == '\'', or 0.
size_t contraction_length(std::string_view s, size_t i) {
  if (i + 1 >= s.size()) return 0;
  const char c1 = s[i + 1];
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
  if (i + 2 >= s.size()) return 0;
  const char c2 = s[i + 2];
  if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
  return 0;
}

// `\s+(?!\S)|\s+` at s[i] (a space character): the whole run when it ends the text or is one
// character, else the run less its last character (which then starts the next piece).
size_t space_run_end(std::string_view s, size_t i) {
  size_t last = i, count = 0;
  while (i < s.size()) {
    const CharAt c = char_at(s, i);
    if (c.cls != kSpace) break;
    last = i;
    i += c.length;
    ++count;
  }
  return i == s.size() || count == 1 ? i : last;
}

}  // namespace

size_t gpt2_piece_end(std::string_view s, size_t i) {
  if (s[i] == '\'') {
    if (const size_t n = contraction_length(s, i)) return i + n;
  }
  if (s[i] == ' ' && i + 1 < s.size()) {  // ` ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+` with the space
    const CharAt next = char_at(s, i + 1);
    if (next.cls != kSpace) return class_run_end(s, i + 1 + next.length, next.cls);
  }
  const CharAt c = char_at(s, i);
  if (c.cls != kSpace) return class_run_end(s, i + c.length, c.cls);
  return space_run_end(s, i);
}

std::vector<std::string_view> gpt2_pretokenize(std::string_view text) {
  std::vector<std::string_view> pieces;
  for (size_t i = 0; i < text.size();) {
    const size_t end = gpt2_piece_end(text, i);
    pieces.push_back(text.substr(i, end - i));
    i = end;
  }
  return pieces;
}

}  // namespace lmlab::data
