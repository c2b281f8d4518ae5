// Strict UTF-8 decoding: every boundary of Table 3-7, the malformed forms, and bounds at the end;
// U+FFFD replacement and the stream that never shows half a character.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "data/utf8.h"

namespace lmlab::data {
namespace {

TEST(Utf8, DecodesBoundaryCodePointsAndRoundTrips) {
  const std::vector<std::pair<char32_t, std::string>> cases = {{0x00, std::string(1, '\0')},
                                                               {0x7F, "\x7F"},
                                                               {0x80, "\xC2\x80"},
                                                               {0x7FF, "\xDF\xBF"},
                                                               {0x800, "\xE0\xA0\x80"},
                                                               {0xD7FF, "\xED\x9F\xBF"},
                                                               {0xE000, "\xEE\x80\x80"},
                                                               {0xFFFF, "\xEF\xBF\xBF"},
                                                               {0x10000, "\xF0\x90\x80\x80"},
                                                               {0x10FFFF, "\xF4\x8F\xBF\xBF"},
                                                               {0xE9, "\xC3\xA9"},
                                                               {0x4E16, "\xE4\xB8\x96"}};
  for (const auto& [cp, bytes] : cases) {
    const utf8::Char c = utf8::decode_at(bytes, 0);
    EXPECT_EQ(c.problem, nullptr) << utf8::code_point_name(cp);
    EXPECT_EQ(c.code_point, cp);
    EXPECT_EQ(c.length, int(bytes.size()));
    std::string encoded;
    utf8::append(encoded, cp);
    EXPECT_EQ(encoded, bytes) << utf8::code_point_name(cp);
    EXPECT_FALSE(utf8::first_problem(bytes).has_value());
  }
}

TEST(Utf8, RejectsMalformedSequences) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\x80", "invalid start byte"},                     // lone continuation byte
      {"\xC0\x80", "invalid start byte"},                 // overlong NUL
      {"\xC1\xBF", "invalid start byte"},                 // overlong U+007F
      {"\xE0\x9F\xBF", "invalid continuation byte"},      // overlong U+07FF
      {"\xED\xA0\x80", "invalid continuation byte"},      // surrogate U+D800
      {"\xF0\x8F\xBF\xBF", "invalid continuation byte"},  // overlong U+FFFF
      {"\xF4\x90\x80\x80", "invalid continuation byte"},  // U+110000
      {"\xF5\x80\x80\x80", "invalid start byte"},
      {"\xFF", "invalid start byte"},
      {"\xC3(", "invalid continuation byte"},
      {"\xE4\xB8", "unexpected end of data"},
      {"\xF0\x9F\x98", "unexpected end of data"},
      {"\xC3", "unexpected end of data"}};
  for (const auto& [bytes, reason] : cases) {
    const std::string text = "ok " + bytes;
    auto p = utf8::first_problem(text);
    ASSERT_TRUE(p.has_value()) << reason;
    EXPECT_EQ(p->offset, 3u);
    EXPECT_EQ(p->byte, static_cast<unsigned char>(bytes[0]));
    EXPECT_STREQ(p->reason, reason.c_str());
  }
}

TEST(Utf8, TruncatedSequenceNeverReadsPastTheView) {
  // The view ends inside the sequence although the backing string goes on: decode must stop.
  const std::string backing = "a\xE4\xB8\x96";
  const std::string_view cut(backing.data(), 3);
  const utf8::Char c = utf8::decode_at(cut, 1);
  EXPECT_STREQ(c.problem, "unexpected end of data");
  auto p = utf8::first_problem(cut);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->offset, 1u);
  EXPECT_EQ(utf8::describe(*p), "invalid byte 0xe4 at offset 1 (unexpected end of data)");
}

TEST(Utf8, ReplaceInvalidFollowsPythonsErrorsReplace) {
  // bytes.decode("utf-8", errors="replace") of each, in Python 3.11
  EXPECT_EQ(utf8::replace_invalid("ok \xC3\xA9"), "ok \xC3\xA9");
  EXPECT_EQ(utf8::replace_invalid(std::string("a\xFF") + "b"), std::string("a\xEF\xBF\xBD") + "b");
  // a cut 3-byte character is one U+FFFD (maximal subpart), a lone continuation byte one each
  EXPECT_EQ(utf8::replace_invalid("\xE2\x82x"), "\xEF\xBF\xBDx");
  EXPECT_EQ(utf8::replace_invalid("\x80\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(utf8::replace_invalid("\xF0\x9F\x98"), "\xEF\xBF\xBD");
  EXPECT_EQ(utf8::replace_invalid("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(Utf8, StreamHoldsBackACharacterSplitBetweenPieces) {
  utf8::Stream s;
  EXPECT_EQ(s.push("h\xC3"), "h");  // the first byte of é waits
  EXPECT_EQ(s.push("\xA9 \xF0\x9F"), "\xC3\xA9 ");
  EXPECT_EQ(s.push("\x98"), "");
  EXPECT_EQ(s.push("\x80!"), "\xF0\x9F\x98\x80!");
  EXPECT_EQ(s.push("\xE2\x82"), "");
  EXPECT_EQ(s.finish(), "\xEF\xBF\xBD");  // never finished
  EXPECT_EQ(s.finish(), "");
  EXPECT_EQ(s.push("\xFF"), "\xEF\xBF\xBD");  // never a character start: shown at once
}

TEST(Utf8, StreamOfAnySplitIsReplaceInvalidOfTheWhole) {
  std::mt19937 rng(7);
  const std::string pieces[] = {"a",    " ",    "\xC3\xA9", "\xE4\xB8\x96", "\xF0\x9F\x98\x80",
                                "\x80", "\xFF", "\xC3",     "\xE4\xB8",     "\xED\xA0\x80",
                                "\n"};
  for (int trial = 0; trial < 500; ++trial) {
    std::string bytes;
    const int n = int(rng() % 12);
    for (int i = 0; i < n; ++i) bytes += pieces[rng() % std::size(pieces)];
    utf8::Stream s;
    std::string shown;
    for (size_t at = 0; at < bytes.size();) {
      const size_t len = std::min<size_t>(bytes.size() - at, 1 + rng() % 4);
      const std::string out = s.push(bytes.substr(at, len));
      ASSERT_FALSE(utf8::first_problem(out)) << "trial " << trial;
      shown += out;
      at += len;
    }
    shown += s.finish();
    ASSERT_EQ(shown, utf8::replace_invalid(bytes)) << "trial " << trial;
  }
}

}  // namespace
}  // namespace lmlab::data
