// Tokenizers: char-level vocabulary = sorted set of code points, byte-level round trips, JSON
// serialisation round trips, and every error (unknown character, bad id, corrupt form).
#include <filesystem>

#include "autograd/error.h"
#include "data/corpus.h"
#include "data/tokenizer.h"
#include "tests/test_util.h"

namespace lmlab::data {
namespace {

using test::ThrowsWith;

TEST(Tokenizer, CharLevelIsSortedSetOfCodePoints) {
  const std::string text = "héllo 世界";
  Tokenizer t = Tokenizer::chars(text);
  EXPECT_EQ(t.kind(), "char");
  EXPECT_EQ(t.vocab_size(), 7);  // ' ' h l o é 世 界
  EXPECT_EQ(t.vocab_string(), " hloé世界");
  const std::vector<int32_t> ids = t.encode(text);
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 4, 2, 2, 3, 0, 5, 6}));
  EXPECT_EQ(t.decode(ids), text);
  EXPECT_EQ(t.decode(t.encode("世界 hollé")), "世界 hollé");
}

TEST(Tokenizer, CharLevelHandlesFourByteAndControlCharacters) {
  const std::string text = std::string("a\n\t\"\\") + std::string(1, '\0') + "😀𐍈";
  Tokenizer t = Tokenizer::chars(text);
  EXPECT_EQ(t.vocab_size(), 8);
  EXPECT_EQ(t.encode(text).size(), 8u);
  EXPECT_EQ(t.decode(t.encode(text)), text);
}

TEST(Tokenizer, ByteLevelRoundTripsArbitraryBytes) {
  Tokenizer t = Tokenizer::bytes();
  EXPECT_EQ(t.kind(), "byte");
  EXPECT_EQ(t.vocab_size(), 256);
  std::string all;
  for (int b = 255; b >= 0; --b) all.push_back(static_cast<char>(b));
  all += "\xff\xfe not UTF-8 \xc3";
  const std::vector<int32_t> ids = t.encode(all);
  ASSERT_EQ(ids.size(), all.size());
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(ids[i], static_cast<unsigned char>(all[i]));
  EXPECT_EQ(t.decode(ids), all);
  EXPECT_EQ(t.encode("é"), (std::vector<int32_t>{0xC3, 0xA9}));
}

TEST(Tokenizer, SerializationRoundTrips) {
  const std::string text = std::string("héllo \"世界\"\n\\") + std::string(1, '\0') + "😀";
  for (const Tokenizer& t : {Tokenizer::chars(text), Tokenizer::bytes()}) {
    const std::string s = t.serialize();
    Tokenizer back = Tokenizer::from_serialized(s);
    EXPECT_TRUE(back == t) << s;
    EXPECT_EQ(back.kind(), t.kind());
    EXPECT_EQ(back.vocab_size(), t.vocab_size());
    EXPECT_EQ(back.encode(text), t.encode(text));
    EXPECT_EQ(back.serialize(), s);
  }
  EXPECT_EQ(Tokenizer::bytes().serialize(), R"({"kind":"byte","vocab_size":256})");
  EXPECT_EQ(Tokenizer::chars("ba").serialize(), R"({"kind":"char","vocab_size":2,"vocab":"ab"})");
}

TEST(Tokenizer, DefaultCorpusRoundTrips) {
  if (!std::filesystem::exists(kDefaultCorpusPath))
    GTEST_SKIP() << kDefaultCorpusPath << " is missing (apt-get install fortunes)";
  const std::string text = load_corpus(kDefaultCorpusPath);
  Tokenizer t = Tokenizer::chars(text);
  EXPECT_GT(t.vocab_size(), 90);
  const std::vector<int32_t> ids = t.encode(text);
  EXPECT_EQ(t.decode(ids), text);
  Tokenizer back = Tokenizer::from_serialized(t.serialize());
  EXPECT_TRUE(back == t);
}

TEST(TokenizerErrors, UnknownCharacterNamesItAndItsPosition) {
  Tokenizer t = Tokenizer::chars("abc");
  EXPECT_TRUE(ThrowsWith([&] { t.encode("abx"); }, {"[tokenizer]", "'x'", "U+0078", "byte offset 2",
                                                    "character 2", "vocabulary of 3 characters"}));
  EXPECT_TRUE(ThrowsWith([&] { t.encode("aé世"); },
                         {"[tokenizer]", "'é'", "U+00E9", "byte offset 1", "character 1"}));
  EXPECT_TRUE(ThrowsWith([&] { Tokenizer::chars("abé").encode("abé世"); },
                         {"'世'", "U+4E16", "byte offset 4", "character 3"}));
  EXPECT_TRUE(ThrowsWith([&] { t.encode("a\n"); }, {"'\\n'", "U+000A"}));
}

TEST(Tokenizer, MakeByKind) {
  EXPECT_TRUE(Tokenizer::make("char", "ba") == Tokenizer::chars("ab"));
  EXPECT_TRUE(Tokenizer::make("byte", "ignored") == Tokenizer::bytes());
  EXPECT_TRUE(ThrowsWith([] { Tokenizer::make("bpe", "text"); },
                         {"[tokenizer]", "unknown tokenizer kind \"bpe\"", "char or byte"}));
}

TEST(TokenizerErrors, MalformedUtf8) {
  EXPECT_TRUE(ThrowsWith([] { Tokenizer::chars("ab\xff"); },
                         {"[tokenizer]", "invalid byte 0xff at offset 2"}));
  Tokenizer t = Tokenizer::chars("abc");
  EXPECT_TRUE(ThrowsWith([&] { t.encode("a\xe4\xb8"); },
                         {"[tokenizer]", "offset 1", "unexpected end of data"}));
  EXPECT_TRUE(ThrowsWith([] { Tokenizer::chars(""); }, {"[tokenizer]", "empty"}));
}

TEST(TokenizerErrors, DecodeIdOutOfRange) {
  Tokenizer t = Tokenizer::chars("héllo");
  EXPECT_TRUE(ThrowsWith(
      [&] {
        t.decode({0, 4});
      },
      {"[tokenizer]", "id 4", "position 1", "[0, 4)"}));
  EXPECT_TRUE(ThrowsWith([&] { t.decode({-1}); }, {"id -1", "position 0"}));
  EXPECT_TRUE(ThrowsWith(
      [] {
        Tokenizer::bytes().decode({65, 256});
      },
      {"id 256", "position 1", "[0, 256)"}));
}

TEST(TokenizerErrors, CorruptSerialization) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "not JSON"},
      {"{\"kind\":\"char\"", "not JSON"},
      {"[1, 2]", "expected"},
      {R"({"kind":"char"})", "expected"},
      {R"({"kind":"char","vocab_size":"3","vocab":"abc"})", "expected"},
      {R"({"kind":"word","vocab_size":3})", "unknown kind \"word\""},
      {R"({"kind":"char","vocab_size":3})", "needs a \"vocab\""},
      {R"({"kind":"char","vocab_size":0,"vocab":""})", "empty"},
      {R"({"kind":"char","vocab_size":3,"vocab":"acb"})", "not sorted and unique"},
      {R"({"kind":"char","vocab_size":3,"vocab":"aab"})", "not sorted and unique"},
      {R"({"kind":"char","vocab_size":4,"vocab":"abc"})", "vocab_size is 4"},
      {R"({"kind":"byte","vocab_size":255})", "vocab_size is 255"}};
  for (const auto& [s, part] : cases)
    EXPECT_TRUE(ThrowsWith([&, &s = s] { Tokenizer::from_serialized(s); },
                           {"[tokenizer]", "corrupt", part}))
        << s;
}

TEST(Tokenizer, BpeEncodesDecodesAndSerializesWhole) {
  const std::string corpus = "the cat sat on the mat. the cat ate the rat. ";
  const Tokenizer t = Tokenizer::from_bpe(Bpe::train(corpus + corpus, 300));
  EXPECT_EQ(t.kind(), "bpe");
  EXPECT_EQ(t.vocab_size(), t.bpe()->vocab_size());
  const std::vector<int32_t> ids = t.encode("the rat sat");
  EXPECT_LT(ids.size(), 11u);  // merges made it shorter than its bytes
  EXPECT_EQ(t.decode(ids), "the rat sat");
  const Tokenizer back = Tokenizer::from_serialized(t.serialize());
  EXPECT_EQ(back, t);
  EXPECT_EQ(back.encode("the mat"), t.encode("the mat"));
  // A corrupt embedded tokenizer.json is named as such.
  EXPECT_TRUE(ThrowsWith(
      [] { Tokenizer::from_serialized(R"({"kind":"bpe","vocab_size":300,"tokenizer_json":"{"})"); },
      {"the serialized tokenizer"}));
  EXPECT_TRUE(ThrowsWith([] { Tokenizer::from_serialized(R"({"kind":"bpe","vocab_size":300})"); },
                         {"needs a \"tokenizer_json\" string"}));
}

TEST(Tokenizer, TextBytesCountUtf8BytesAndNothingForSpecialTokens) {
  const Tokenizer c = Tokenizer::chars("aé世😀");
  EXPECT_EQ(c.text_bytes(0), 1);
  EXPECT_EQ(c.text_bytes(1), 2);
  EXPECT_EQ(c.text_bytes(2), 3);
  EXPECT_EQ(c.text_bytes(3), 4);
  EXPECT_EQ(Tokenizer::bytes().text_bytes(200), 1);
  const Tokenizer b = Tokenizer::from_bpe(Bpe::train("hello hello hello world world", 270));
  const int32_t eot = b.bpe()->special_id(Bpe::kEndOfText);
  ASSERT_GE(eot, 0);
  EXPECT_EQ(b.text_bytes(eot), 0);
  for (int32_t id = 0; id < eot; ++id)
    EXPECT_EQ(b.text_bytes(id), int64_t(b.bpe()->token_bytes(id).size())) << id;
  EXPECT_TRUE(ThrowsWith([&] { b.text_bytes(int32_t(b.vocab_size())); }, {"out of range"}));
}

TEST(Tokenizer, BpeJoinsTheFilesOfACorpusWithEndOfText) {
  Corpus corpus;
  corpus.text = "one fish two fish";
  corpus.files = {"a", "b"};
  corpus.starts = {0, 9};  // "one fish " | "two fish"
  const Tokenizer t = Tokenizer::from_bpe(Bpe::train("one fish two fish red fish", 280));
  const int32_t eot = t.bpe()->special_id(Bpe::kEndOfText);
  std::vector<int32_t> want = t.encode("one fish ");
  want.push_back(eot);
  const std::vector<int32_t> second = t.encode("two fish");
  want.insert(want.end(), second.begin(), second.end());
  EXPECT_EQ(t.encode_corpus(corpus), want);
  // char and byte tokenizers read the text as it is (no separator token exists)
  const Tokenizer c = Tokenizer::chars(corpus.text);
  EXPECT_EQ(c.encode_corpus(corpus), c.encode(corpus.text));
  // decode_bytes keeps a character cut between ids; decode replaces it
  const Tokenizer by = Tokenizer::bytes();
  EXPECT_EQ(by.decode_bytes({0xC3}), "\xC3");
}

}  // namespace
}  // namespace lmlab::data
