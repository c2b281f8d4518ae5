// Strict UTF-8: the table of well-formed byte sequences, checked one byte at a time.
#include "data/utf8.h"

#include <cassert>
#include <cstdio>
#include <cstring>

namespace lmlab::data::utf8 {

namespace {

// The allowed range of the second byte after a lead byte (Unicode Table 3-7); the third and
// fourth bytes are always 0x80..0xBF. E0/F0 exclude overlong forms, ED excludes surrogates,
// F4 stops at U+10FFFF.
struct Lead {
  int length;
  unsigned char lo, hi;
};

Lead lead_of(unsigned char b) {
  if (b < 0x80) return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b >= 0xE1 && b <= 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};  // 0x80..0xC1 (continuation or overlong lead) and 0xF5..0xFF
}

}  // namespace

Char decode_at(std::string_view s, size_t i) {
  assert(i < s.size());
  const auto b0 = static_cast<unsigned char>(s[i]);
  const Lead lead = lead_of(b0);
  if (lead.length == 0) return {0, 0, "invalid start byte"};
  if (lead.length == 1) return {b0, 1, nullptr};
  char32_t cp = b0 & (0xFF >> (lead.length + 1));
  for (int k = 1; k < lead.length; ++k) {
    if (i + k >= s.size()) return {0, 0, "unexpected end of data"};
    const auto b = static_cast<unsigned char>(s[i + k]);
    const unsigned char lo = k == 1 ? lead.lo : 0x80;
    const unsigned char hi = k == 1 ? lead.hi : 0xBF;
    if (b < lo || b > hi) return {0, 0, "invalid continuation byte"};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {cp, lead.length, nullptr};
}

std::optional<Problem> first_problem(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {  // ASCII fast path
      ++i;
      continue;
    }
    const Char c = decode_at(s, i);
    if (c.problem) return Problem{i, static_cast<unsigned char>(s[i]), c.problem};
    i += size_t(c.length);
  }
  return std::nullopt;
}

std::string describe(const Problem& p) {
  char buf[128];
  std::snprintf(buf, sizeof(buf), "invalid byte 0x%02x at offset %zu (%s)", unsigned(p.byte),
                p.offset, p.reason);
  return buf;
}

void append(std::string& out, char32_t cp) {
  assert(cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF));
  if (cp < 0x80) {
    out.push_back(char(cp));
  } else if (cp < 0x800) {
    out.push_back(char(0xC0 | (cp >> 6)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(char(0xE0 | (cp >> 12)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (cp >> 18)));
    out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  }
}

std::string code_point_name(char32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "U+%04X", unsigned(cp));
  return buf;
}

namespace {

// The length of the maximal ill-formed subsequence at s[i] (where decoding failed): the longest
// prefix, 1 to 3 bytes, that is the start of some well-formed character, else 1.
size_t ill_formed_length(std::string_view s, size_t i) {
  size_t length = 1;
  for (size_t k = 2; k <= 3 && i + k <= s.size(); ++k) {
    const Char c = decode_at(s.substr(0, i + k), i);
    if (!c.problem || std::strcmp(c.problem, "unexpected end of data") != 0) break;
    length = k;
  }
  return length;
}

}  // namespace

std::string replace_invalid(std::string_view bytes) {
  if (!first_problem(bytes)) return std::string(bytes);
  std::string out;
  out.reserve(bytes.size() + 16);
  for (size_t i = 0; i < bytes.size();) {
    const Char c = decode_at(bytes, i);
    if (c.problem) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      i += ill_formed_length(bytes, i);
    } else {
      out.append(bytes, i, size_t(c.length));
      i += size_t(c.length);
    }
  }
  return out;
}

std::string Stream::push(std::string_view bytes) {
  pending_ += bytes;
  // Hold back a tail that is the start of a character still missing bytes (at most 3 bytes).
  const size_t n = pending_.size();
  size_t keep = n;
  for (size_t i = n > 3 ? n - 3 : 0; i < n; ++i) {
    const Char c = decode_at(pending_, i);
    if (c.problem && std::strcmp(c.problem, "unexpected end of data") == 0 &&
        ill_formed_length(pending_, i) == n - i) {
      keep = i;
      break;
    }
  }
  std::string out = replace_invalid(std::string_view(pending_).substr(0, keep));
  pending_.erase(0, keep);
  return out;
}

std::string Stream::finish() {
  std::string out = replace_invalid(pending_);
  pending_.clear();
  return out;
}

}  // namespace lmlab::data::utf8
