// Byte-level BPE: GPT-2's pre-tokenization by hand, identity with tiktoken's r50k_base on the
// committed fixture (tools/bpe_fixture.js: texts and js-tiktoken's ids, plus per-file hashes of
// the whole fortunes corpus), tokenizer.json round trips, decoding, training, and every error.
#include <filesystem>
#include <nlohmann/json.hpp>

#include "autograd/error.h"
#include "data/bpe.h"
#include "data/corpus.h"
#include "data/read_file.h"
#include "data/utf8.h"
#include "tests/temp_dir.h"
#include "tests/test_util.h"

namespace lmlab::data {
namespace {

using test::ThrowsWith;

const std::string kFixtures = std::string(LMLAB_SOURCE_DIR) + "/tests/fixtures/bpe/";
const std::string kR50kPath = kFixtures + "r50k_base.json";

// GPT-2's tokenizer, loaded once for the whole binary.
const Bpe& r50k() {
  static const Bpe bpe = Bpe::load(kR50kPath);
  return bpe;
}

const nlohmann::json& cases_fixture() {
  static const nlohmann::json j =
      nlohmann::json::parse(*read_whole_file(kFixtures + "r50k_cases.json"));
  return j;
}

std::vector<std::string> pieces(std::string_view text) {
  std::vector<std::string> out;
  for (std::string_view p : gpt2_pretokenize(text)) out.emplace_back(p);
  return out;
}

using Pieces = std::vector<std::string>;

TEST(BpePretokenize, FollowsGpt2Regex) {
  EXPECT_EQ(pieces("Hello world"), (Pieces{"Hello", " world"}));
  EXPECT_EQ(pieces("I'm here, they'll see"),
            (Pieces{"I", "'m", " here", ",", " they", "'ll", " see"}));
  EXPECT_EQ(pieces("IT'S it's"), (Pieces{"IT", "'", "S", " it", "'s"}));
  EXPECT_EQ(pieces(" 's ''s"), (Pieces{" '", "s", " ''", "s"}));
  EXPECT_EQ(pieces("abc123 456!?"), (Pieces{"abc", "123", " 456", "!?"}));
  EXPECT_EQ(pieces("a  b"), (Pieces{"a", " ", " b"}));
  EXPECT_EQ(pieces("a   "), (Pieces{"a", "   "}));
  EXPECT_EQ(pieces("\n\nx"), (Pieces{"\n", "\n", "x"}));
  EXPECT_EQ(pieces("a \nb"), (Pieces{"a", " ", "\n", "b"}));
  EXPECT_EQ(pieces(" \t x"), (Pieces{" \t", " x"}));
  EXPECT_EQ(pieces("日本語 テキスト"), (Pieces{"日本語", " テキスト"}));
  EXPECT_EQ(pieces("e\xCC\x81t\xC3\xA9"), (Pieces{"e", "\xCC\x81", "t\xC3\xA9"}));  // U+0301: Mn
  EXPECT_EQ(pieces(""), Pieces{});
}

TEST(BpePretokenize, WhiteSpaceIsTheUnicodePropertyAsInTiktokensRustRegex) {
  // U+0085 is White_Space (JS's \s disagrees); U+FEFF is not (JS's \s disagrees); U+001C..1F
  // are not (Python's str.isspace disagrees); U+3000 and U+00A0 are.
  EXPECT_EQ(pieces("a\xC2\x85\xC2\x85"
                   "b"),
            (Pieces{"a", "\xC2\x85", "\xC2\x85", "b"}));
  EXPECT_EQ(pieces("\xEF\xBB\xBF"
                   "abc"),
            (Pieces{"\xEF\xBB\xBF", "abc"}));
  EXPECT_EQ(pieces("a\x1c\x1d"
                   "b"),
            (Pieces{"a", "\x1c\x1d", "b"}));
  EXPECT_EQ(pieces("a\xE3\x80\x80\xC2\xA0"
                   "b"),
            (Pieces{"a", "\xE3\x80\x80", "\xC2\xA0", "b"}));
}

TEST(BpePretokenize, MalformedBytesAreOtherCharactersAndPiecesCoverTheText) {
  EXPECT_EQ(pieces("a\xff\xfe"
                   "b \xc3"),
            (Pieces{"a", "\xff\xfe", "b", " \xc3"}));
  std::string all;
  for (int b = 0; b < 256; ++b) all += std::string(1, char(b)) + "x '";
  std::string joined;
  for (const std::string& p : pieces(all)) {
    EXPECT_FALSE(p.empty());
    joined += p;
  }
  EXPECT_EQ(joined, all);
}

TEST(BpeR50k, IsGpt2WithItsSpecialToken) {
  const Bpe& bpe = r50k();
  EXPECT_EQ(bpe.vocab_size(), 50257);
  EXPECT_EQ(bpe.merge_count(), 50000);
  EXPECT_EQ(bpe.special_id(Bpe::kEndOfText), 50256);
  EXPECT_EQ(bpe.special_id("<|nope|>"), -1);
  EXPECT_EQ(bpe.encode("hello world"), (std::vector<int32_t>{31373, 995}));
  EXPECT_EQ(bpe.token_bytes(50256), "<|endoftext|>");
  EXPECT_EQ(bpe.token_bytes(220), " ");
  EXPECT_EQ(bpe.encode("a<|endoftext|>b", true), (std::vector<int32_t>{64, 50256, 65}));
  const std::vector<int32_t> plain = bpe.encode("a<|endoftext|>b");
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 50256), 0);
  EXPECT_EQ(bpe.decode(plain), "a<|endoftext|>b");
  EXPECT_EQ(bpe.encode("<|endoftext|><|endoftext|>", true), (std::vector<int32_t>{50256, 50256}));
  EXPECT_EQ(bpe.decode({50256}), "<|endoftext|>");
}

// The first difference between two id lists, with some context, for a failure message.
std::string first_difference(const std::vector<int32_t>& got, const std::vector<int32_t>& want) {
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  std::string s = "first difference at id " + std::to_string(i) + ": got";
  for (size_t k = i; k < std::min(got.size(), i + 5); ++k)
    s.append(1, ' ').append(std::to_string(got[k]));
  s += ", tiktoken";
  for (size_t k = i; k < std::min(want.size(), i + 5); ++k)
    s.append(1, ' ').append(std::to_string(want[k]));
  return s;
}

TEST(BpeR50k, MatchesTiktokenIdForIdOnEveryFixtureText) {
  const Bpe& bpe = r50k();
  const nlohmann::json& cases = cases_fixture()["cases"];
  ASSERT_GT(cases.size(), 200u);
  size_t ids_checked = 0;
  for (const nlohmann::json& c : cases) {
    const std::string text = c["text"].get<std::string>();
    const std::vector<int32_t> want = c["ids"].get<std::vector<int32_t>>();
    const std::vector<int32_t> got = bpe.encode(text, c["allowed_special"].get<bool>());
    EXPECT_EQ(got, want) << c["name"] << ": " << first_difference(got, want);
    EXPECT_EQ(bpe.decode(got), text) << c["name"];
    ids_checked += want.size();
  }
  EXPECT_GT(ids_checked, 15000u);
}

uint64_t fnv1a64(const std::vector<int32_t>& ids) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (int32_t id : ids)
    for (int k = 0; k < 4; ++k) h = (h ^ ((uint32_t(id) >> (8 * k)) & 0xFF)) * 0x100000001b3ULL;
  return h;
}

TEST(BpeR50k, MatchesTiktokenOnTheWholeDefaultCorpus) {
  if (!std::filesystem::exists(kDefaultCorpusPath))
    GTEST_SKIP() << kDefaultCorpusPath << " is missing (apt-get install fortunes)";
  const Bpe& bpe = r50k();
  for (const nlohmann::json& f : cases_fixture()["corpus"]) {
    const std::string name = f["name"].get<std::string>();
    ASSERT_FALSE(f.contains("skip")) << name << ": " << f["skip"];
    const std::optional<std::string> text =
        read_whole_file(std::string(kDefaultCorpusPath) + "/" + name);
    ASSERT_TRUE(text.has_value()) << name;
    if (text->size() != f["bytes"].get<size_t>()) {
      ADD_FAILURE() << name << " has changed since the fixture was made";
      continue;
    }
    const std::vector<int32_t> ids = bpe.encode(*text);
    EXPECT_EQ(ids.size(), f["tokens"].get<size_t>()) << name;
    char hash[17];
    std::snprintf(hash, sizeof(hash), "%016llx", static_cast<unsigned long long>(fnv1a64(ids)));
    EXPECT_EQ(hash, f["fnv1a64"].get<std::string>()) << name;
  }
}

TEST(BpeR50k, TokenizerJsonRoundTripsByteForByte) {
  const std::string file = *read_whole_file(kR50kPath);
  EXPECT_EQ(r50k().to_json(), file);  // what tools/tiktoken_to_hf.js wrote, so load(save(x)) == x
  EXPECT_EQ(r50k().source(), kR50kPath);
}

// ---- any byte-level tokenizer: a small one trained here ----

std::string corpus_sample(size_t bytes) {
  if (std::filesystem::exists(kDefaultCorpusPath))
    return load_corpus(kDefaultCorpusPath).substr(0, bytes);
  std::string text;
  for (const nlohmann::json& c : cases_fixture()["cases"]) text += c["text"].get<std::string>();
  return text.substr(0, bytes);
}

const Bpe& small() {
  static const Bpe bpe = Bpe::train(corpus_sample(100000), 1000);
  return bpe;
}

TEST(BpeEncode, DecodeReplacesWhatIsNotUtf8AndDecodeBytesKeepsIt) {
  const Bpe& bpe = small();
  const std::vector<int32_t> ids = bpe.encode("\xE6\x97\xA5");  // 日: more than one id here
  ASSERT_GE(ids.size(), 2u);
  const std::vector<int32_t> cut(ids.begin(), ids.end() - 1);
  EXPECT_EQ(bpe.decode_bytes(cut),
            std::string("\xE6\x97\xA5").substr(0, bpe.decode_bytes(cut).size()));
  EXPECT_EQ(bpe.decode(cut), "\xEF\xBF\xBD");  // one U+FFFD for the maximal ill-formed prefix
  std::vector<int32_t> mixed = bpe.encode("a");
  for (int32_t id : bpe.encode("\xF0\x80"
                               "b\xff"))
    mixed.push_back(id);
  EXPECT_EQ(bpe.decode_bytes(mixed),
            "a\xF0\x80"
            "b\xff");
  EXPECT_EQ(bpe.decode(mixed),
            "a\xEF\xBF\xBD\xEF\xBF\xBD"
            "b\xEF\xBF\xBD");  // as Python does
}

TEST(BpeEncode, AnyBytesEncodeAndDecodeBack) {
  std::string all;
  for (int b = 0; b < 256; ++b)
    all += std::string(1, char(b)) + " a" + std::string(1, char(255 - b));
  all +=
      "\xF0\x9F\x98"
      "x \xE6\x97";
  const std::vector<int32_t> ids = small().encode(all);
  EXPECT_EQ(small().decode_bytes(ids), all);
}

TEST(BpeEncode, ParallelEncodeGivesTheSameIds) {
  std::string text;
  for (const nlohmann::json& c : cases_fixture()["cases"])
    text += c["text"].get<std::string>() + "\n";
  while (text.size() < (size_t(3) << 19)) text += text.substr(0, 200000) + "<|endoftext|>\nX";
  for (bool special : {false, true}) {
    const std::vector<int32_t> serial = small().encode(text, special);
    for (int threads : {1, 2, 3})
      EXPECT_EQ(small().encode_parallel(text, special, threads), serial);
  }
}

// ---- training ----

TEST(BpeTrain, MergesTheMostFrequentPairWithBytewiseTies) {
  const Bpe bpe = Bpe::train("aaabdaaabac", 1000);
  // aa (4) first; then ab and (aa, a) both occur twice: ("a", "b") < ("aa", "a"); then aa+ab.
  ASSERT_EQ(bpe.merge_count(), 3);
  EXPECT_EQ(bpe.token_bytes(256), "aa");
  EXPECT_EQ(bpe.token_bytes(257), "ab");
  EXPECT_EQ(bpe.token_bytes(258), "aaab");
  EXPECT_EQ(bpe.vocab_size(), 260);  // stopped early: no pair occurs twice any more
  EXPECT_EQ(bpe.special_id(Bpe::kEndOfText), 259);
  EXPECT_EQ(bpe.encode("aaabdaaabac"), (std::vector<int32_t>{258, 'd', 258, 'a', 'c'}));
  BpeTrainOptions once;
  once.min_frequency = 1;
  EXPECT_EQ(Bpe::train("xy yx", 257 + 1, once).token_bytes(256), " y");  // ' ' < 'x' < 'y'
}

TEST(BpeTrain, MatchesThePlainRecountingAlgorithm) {
  // tools/bpe_train_reference.py: every pair recounted after every merge, on 21 KB of ASCII.
  const nlohmann::json ref =
      nlohmann::json::parse(*read_whole_file(kFixtures + "train_reference.json"));
  const Bpe bpe = Bpe::train(ref["text"].get<std::string>(), ref["vocab_size"].get<int64_t>());
  const nlohmann::json mine = nlohmann::json::parse(bpe.to_json());
  ASSERT_EQ(ref["merges"].size(), 300u);
  EXPECT_EQ(mine["model"]["merges"], ref["merges"]);
}

TEST(BpeTrain, IsDeterministicAndRoundTrips) {
  const std::string corpus = corpus_sample(400000);
  std::vector<BpeTrainProgress> reports;
  BpeTrainOptions options;
  options.progress = [&](const BpeTrainProgress& p) { reports.push_back(p); };
  const Bpe a = Bpe::train(corpus, 2000, options);
  const Bpe b = Bpe::train(corpus, 2000);
  EXPECT_TRUE(a == b);
  EXPECT_EQ(a.to_json(), b.to_json());
  EXPECT_EQ(a.vocab_size(), 2000);
  EXPECT_EQ(a.special_id(Bpe::kEndOfText), 1999);
  ASSERT_GE(reports.size(), 10u);
  for (size_t i = 1; i < reports.size(); ++i) EXPECT_GE(reports[i].tokens, reports[i - 1].tokens);
  EXPECT_EQ(reports.back().tokens, 1999);
  EXPECT_EQ(reports.back().target, 1999);
  const std::vector<int32_t> ids = a.encode(corpus);
  EXPECT_EQ(a.decode(ids), corpus);
  EXPECT_LT(ids.size() * 5, corpus.size() * 2);  // over 2.5 bytes per token
  for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < 1999);
}

TEST(BpeTrain, SavesAndLoads) {
  const Bpe bpe = Bpe::train(corpus_sample(50000), 600);
  test::TempDir dir("bpe");
  bpe.save(dir / "tokenizer.json");
  const Bpe back = Bpe::load(dir / "tokenizer.json");
  EXPECT_TRUE(back == bpe);
  EXPECT_EQ(back.source(), dir / "tokenizer.json");
  const std::string text = "Some text, with 123 numbers and <|endoftext|> in it.";
  EXPECT_EQ(back.encode(text, true), bpe.encode(text, true));
}

TEST(BpeTrain, EndOfTextSeparatesDocumentsAndIsNotLearned) {
  std::string corpus;
  for (int i = 0; i < 50; ++i) corpus += "hello world<|endoftext|>";
  const Bpe bpe = Bpe::train(corpus, 400);
  for (int32_t id = 256; id < bpe.vocab_size() - 1; ++id) {
    EXPECT_EQ(bpe.token_bytes(id).find('<'), std::string::npos) << bpe.token_bytes(id);
    EXPECT_EQ(bpe.token_bytes(id).find('|'), std::string::npos) << bpe.token_bytes(id);
  }
  const std::vector<int32_t> ids = bpe.encode(corpus.substr(0, 24), true);
  EXPECT_EQ(ids.back(), bpe.special_id(Bpe::kEndOfText));
  EXPECT_EQ(bpe.decode(ids), corpus.substr(0, 24));
}

TEST(BpeTrain, RefusesBadArguments) {
  EXPECT_TRUE(ThrowsWith([] { Bpe::train("abc", 256); }, {"[bpe]", "at least 257", "256"}));
  BpeTrainOptions options;
  options.min_frequency = 0;
  EXPECT_TRUE(ThrowsWith([&] { Bpe::train("abc", 300, options); }, {"[bpe]", "min_frequency"}));
}

// ---- bad input ----

// A small valid tokenizer.json as JSON, to break in one place.
nlohmann::json tiny() {
  static const std::string text = Bpe::train("the cat; the hat; the bat; the mat", 270).to_json();
  return nlohmann::json::parse(text);
}

void expect_refused(const nlohmann::json& j, const std::vector<std::string>& parts) {
  std::vector<std::string> all{"[bpe]", "bad.json"};
  all.insert(all.end(), parts.begin(), parts.end());
  EXPECT_TRUE(ThrowsWith([&] { Bpe::from_json(j.dump(), "bad.json"); }, all)) << parts[0];
}

TEST(BpeErrors, UnreadableOrCorruptFileNamesTheFileAndTheOffset) {
  EXPECT_TRUE(ThrowsWith([] { Bpe::load("/nonexistent/tokenizer.json"); },
                         {"[bpe]", "cannot read /nonexistent/tokenizer.json", "no such file"}));
  const std::string file = *read_whole_file(kR50kPath);
  test::TempDir dir("bpe_err");
  const std::string cut = dir.write("cut.json", file.substr(0, 700000));
  EXPECT_TRUE(ThrowsWith([&] { Bpe::load(cut); },
                         {"[bpe]", cut, "not valid JSON", "at byte offset 700000 of 700000"}));
  EXPECT_TRUE(ThrowsWith([] { Bpe::from_json("{\"model\": [1,,]}", "x.json"); },
                         {"[bpe] x.json is not valid JSON", "at byte offset 13"}));
  EXPECT_TRUE(ThrowsWith([] { Bpe::from_json("[]", "x.json"); }, {"[bpe] x.json", "JSON object"}));
  EXPECT_TRUE(ThrowsWith([] { Bpe::from_json("90e1201", "x.json"); },
                         {"[bpe] x.json is not valid JSON", "number overflow"}));
}

TEST(BpeErrors, MissingOrWrongKeysAreNamed) {
  nlohmann::json j = tiny();
  j["model"].erase("merges");
  expect_refused(j, {"model has no \"merges\""});
  j = tiny();
  j.erase("model");
  expect_refused(j, {"has no \"model\""});
  j = tiny();
  j["model"]["type"] = "WordPiece";
  expect_refused(j, {"model.type is \"WordPiece\", expected \"BPE\""});
  j = tiny();
  j["model"]["vocab"] = nlohmann::json::array();
  expect_refused(j, {"model.vocab is a array, expected a object"});
  j = tiny();
  j["normalizer"] = {{"type", "NFC"}};
  expect_refused(j, {"normalizer", "not supported"});
  j = tiny();
  j["pre_tokenizer"]["add_prefix_space"] = true;
  expect_refused(j, {"pre_tokenizer", "not supported"});
  j = tiny();
  j["added_tokens"][0].erase("content");
  expect_refused(j, {"added_tokens[0]", "\"content\""});
  j = tiny();
  j["model"]["vocab"]["a"] = "one";
  expect_refused(j, {"model.vocab[\"a\"] is not an integer id"});
}

TEST(BpeErrors, BadVocabularyIsNamedByKeyOrId) {
  nlohmann::json j = tiny();
  j["model"]["vocab"]["\u65e5"] = 0;
  expect_refused(j, {"model.vocab[\"\u65e5\"]", "U+65E5", "byte-level alphabet"});
  j = tiny();
  j["model"]["vocab"]["a"] = 98;  // "b" has 98 too
  expect_refused(j, {"id 98 is used twice"});
  j = tiny();
  const nlohmann::json vocab = j["model"]["vocab"];
  for (const auto& [key, id] : vocab.items())
    if (id == 256) j["model"]["vocab"].erase(key);
  expect_refused(j, {"id 256 is in neither model.vocab nor added_tokens"});
  j = tiny();
  j["model"]["vocab"]["zz"] = 100000;
  expect_refused(j, {"model.vocab[\"zz\"]", "id 100000 is out of range"});
  j = tiny();
  j["added_tokens"].push_back({{"id", 261}, {"content", "the"}});
  expect_refused(j, {"token 261 (\"the\") is also token 258"});
  j = tiny();
  j["model"]["merges"] = nlohmann::json::array();
  j["model"]["vocab"]["zz"] = j["model"]["vocab"]["a"];
  j["model"]["vocab"].erase("a");
  expect_refused(j, {"not byte level", "no token for byte 0x61"});
}

TEST(BpeErrors, BadMergesAreNamedByIndex) {
  nlohmann::json j = tiny();
  j["model"]["merges"][0] = "t zzq";
  expect_refused(j, {"model.merges[0] (\"t zzq\")", "\"zzq\" is not in model.vocab"});
  j = tiny();
  j["model"]["merges"][1] = "q q";
  expect_refused(j, {"model.merges[1] (\"q q\")", "the merged token \"qq\" is not in model.vocab"});
  j = tiny();
  j["model"]["merges"][2] = "abc";
  expect_refused(j, {"model.merges[2]", "is not \"left right\""});
  j = tiny();
  j["model"]["merges"][3] = 7;
  expect_refused(j, {"model.merges[3] is neither"});
  j = tiny();
  const std::string first = j["model"]["merges"][0];
  j["model"]["merges"][0] = {first.substr(0, first.find(' ')), first.substr(first.find(' ') + 1)};
  EXPECT_TRUE(Bpe::from_json(j.dump(), "pairs.json") == Bpe::from_json(tiny().dump()));
}

TEST(BpeErrors, DecodeNamesTheIdItsPositionAndTheTokenizer) {
  test::TempDir dir("bpe_decode");
  const std::string path = dir.write("tokenizer.json", tiny().dump());
  const Bpe bpe = Bpe::load(path);
  const std::string range = "out of range [0, " + std::to_string(bpe.vocab_size()) + ") of ";
  EXPECT_TRUE(ThrowsWith(
      [&] {
        bpe.decode({1, int32_t(bpe.vocab_size())});
      },
      {"[bpe] id " + std::to_string(bpe.vocab_size()) + " at position 1 is " + range + path}));
  EXPECT_TRUE(ThrowsWith([&] { bpe.decode_bytes({-1}); }, {"[bpe] id -1 at position 0", path}));
  EXPECT_TRUE(ThrowsWith([&] { bpe.token_bytes(60000); }, {"[bpe] id 60000", range + path}));
}

}  // namespace
}  // namespace lmlab::data
