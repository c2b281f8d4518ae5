// Token files (data/token_file.h, token_meta.h, token_writer.h): the XXH64 checksum, meta.json,
// round trips in uint16 and uint32, llm.c's header and nanoGPT's raw layout, a mapped dataset's
// batches against the in-memory dataset's, every bad input with its message, and the memory a
// training run's sampling costs on a 4 GB (sparse) file against a 40 MB one.
#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "autograd/error.h"
#include "data/dataset.h"
#include "data/token_file.h"
#include "data/token_meta.h"
#include "data/token_writer.h"
#include "tests/temp_dir.h"
#include "tests/test_util.h"

namespace lmlab::data {
namespace {

using test::TempDir;
using test::ThrowsWith;

// n ids below `vocab`, scrambled (7919 is prime), so a run of them names its position.
std::vector<int32_t> ids_of(int64_t n, int64_t vocab) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[size_t(i)] = int32_t((i * 7919 + 13) % vocab);
  return t;
}

// The little-endian bytes of `ids` as T.
template <class T>
std::string raw_bytes(const std::vector<int32_t>& ids) {
  std::string out(ids.size() * sizeof(T), '\0');
  for (size_t i = 0; i < ids.size(); ++i) {
    const T v = T(ids[i]);
    std::memcpy(out.data() + i * sizeof(T), &v, sizeof(T));
  }
  return out;
}

// llm.c's layout: 256 int32 (magic, version, count, zeros), then the ids as T.
template <class T>
std::string llmc_bytes(int32_t magic, int32_t version, int32_t count,
                       const std::vector<int32_t>& ids) {
  std::string header(1024, '\0');
  const int32_t fields[3] = {magic, version, count};
  std::memcpy(header.data(), fields, sizeof fields);
  return header + raw_bytes<T>(ids);
}

TokenizerIdentity char_tokenizer() {
  return TokenizerIdentity::of("char", R"({"kind":"char","vocab_size":3,"vocab":"abc"})");
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(TokenMeta, Xxh64MatchesXxhsum) {
  // `printf ... | xxhsum -H1` (Debian's xxhash 0.8.1): every path of the algorithm, from no stripe
  // (under 32 bytes: the 8-, 4- and 1-byte tails) to many stripes with a tail.
  EXPECT_EQ(xxh64(""), 0xef46db3751d8e999ULL);
  EXPECT_EQ(xxh64("a"), 0xd24ec4f1a98c6e5bULL);
  EXPECT_EQ(xxh64("abc"), 0x44bc2cf5ad770999ULL);
  EXPECT_EQ(xxh64("foobar"), 0xa2aa05ed9085aaf9ULL);
  EXPECT_EQ(xxh64("0123456789abcdef0123456789abcdef"), 0x642a94958e71e6c5ULL);
  EXPECT_EQ(xxh64("The quick brown fox jumps over the lazy dog"), 0x0b242d361fda71bcULL);
  std::string bytes;  // bytes 0..255 three times, then "xyz": 771 bytes
  for (int r = 0; r < 3; ++r)
    for (int b = 0; b < 256; ++b) bytes.push_back(char(b));
  bytes += "xyz";
  EXPECT_EQ(xxh64(bytes), 0xe921a1b45bd779f8ULL);
  for (const size_t cut : {size_t(0), size_t(1), size_t(31), size_t(32), size_t(33), size_t(500)}) {
    Xxh64 pieces;  // any split of the bytes gives the same value
    pieces.update(bytes.data(), cut);
    pieces.update(bytes.data() + cut, 3);
    pieces.update(bytes.data() + cut + 3, bytes.size() - cut - 3);
    EXPECT_EQ(pieces.digest(), xxh64(bytes)) << cut;
  }
  EXPECT_EQ(format_checksum(0x0b242d361fda71bcULL), "xxh64:0b242d361fda71bc");
  EXPECT_EQ(parse_checksum("xxh64:0b242d361fda71bc"), 0x0b242d361fda71bcULL);
  for (const char* bad : {"", "xxh64:", "xxh64:0B242d361fda71bc", "xxh64:0b242d361fda71b",
                          "crc32:0b242d361fda71bc", "xxh64:0b242d361fda71bc "})
    EXPECT_FALSE(parse_checksum(bad).has_value()) << bad;
}

TEST(TokenMeta, JsonRoundTrip) {
  TokenMeta meta;
  meta.dtype = TokenDType::U32;
  meta.vocab_size = 100277;
  meta.tokenizer = TokenizerIdentity::of("bpe:big.json", std::string(1000, 'x'), /*keep=*/false);
  meta.files = {{"train.bin", 900, 0x0123456789abcdefULL}, {"val.bin", 100, 42}};
  const std::string json = meta_to_json(meta);
  EXPECT_NE(json.find("\"dtype\": \"uint32\""), std::string::npos) << json;
  EXPECT_EQ(json.find("serialized"), std::string::npos) << "not kept: " << json;
  const TokenMeta back = meta_from_json(json, "m.json");
  EXPECT_EQ(back.format, "raw");
  EXPECT_EQ(back.dtype, TokenDType::U32);
  EXPECT_EQ(back.vocab_size, 100277);
  EXPECT_EQ(back.tokenizer.name, "bpe:big.json");
  EXPECT_EQ(back.tokenizer.checksum, xxh64(std::string(1000, 'x')));
  ASSERT_EQ(back.files.size(), 2u);
  EXPECT_EQ(back.find("train.bin")->tokens, 900);
  EXPECT_EQ(back.find("train.bin")->checksum, 0x0123456789abcdefULL);
  EXPECT_EQ(back.find("val.bin")->checksum, 42u);
  EXPECT_EQ(back.find("test.bin"), nullptr);
  const TokenMeta kept = meta_from_json(
      meta_to_json({.vocab_size = 3, .tokenizer = char_tokenizer(), .files = {{"a.bin", 1, 0}}}),
      "m.json");
  EXPECT_EQ(kept.tokenizer.serialized, char_tokenizer().serialized);
}

TEST(TokenMeta, CorruptMetaIsRefusedWithTheField) {
  const std::string good = meta_to_json(
      {.vocab_size = 3, .tokenizer = char_tokenizer(), .files = {{"train.bin", 5, 7}}});
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    const size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{ nope", "not valid JSON"},
      {"[1, 2]", "not a JSON object"},
      {with("\"version\": 1", "\"version\": 2"), "unsupported meta.json version 2"},
      {with("\"format\": \"raw\"", "\"format\": \"npy\""), "unknown format \"npy\""},
      {with("\"dtype\": \"uint16\"", "\"dtype\": \"int8\""), "unknown dtype \"int8\""},
      {with("\"vocab_size\": 3", "\"vocab_size\": 70000"), "vocab_size 70000 does not fit uint16"},
      {with("\"vocab_size\": 3", "\"vocab_size\": \"3\""), "\"vocab_size\" is not an integer"},
      {with("\"vocab_size\": 3", "\"vocab_size\": 0"), "vocab_size must be positive"},
      {with("\"tokens\": 5", "\"tokens\": -5"), "tokens must be positive, got -5"},
      {with("\"train.bin\"", "\"../train.bin\""), "must be a plain name"},
      {with("\"xxh64:0000000000000007\"", "\"7\""), "checksum \"7\" is not"},
      {with("\"name\": \"char\"", "\"nome\": \"char\""), "tokenizer: no \"name\" field"},
      {with("abc", "abd"), "serialized form does not match its checksum"},
  };
  for (const auto& c : cases)  // (clang before 16 cannot capture a structured binding)
    EXPECT_TRUE(ThrowsWith([&] { meta_from_json(c.first, "/d/meta.json"); },
                           {"[data] /d/meta.json", c.second}))
        << c.first;
}

TEST(TokenFile, RoundTripUint16) {
  TempDir dir("tokens");
  const std::vector<int32_t> train = ids_of(5000, 65536), val = ids_of(700, 65536);
  const TokenMeta meta = write_token_dir(dir.str(), train, val, 65536, char_tokenizer());
  EXPECT_EQ(meta.dtype, TokenDType::U16);
  EXPECT_EQ(std::filesystem::file_size(dir / "train.bin"), 10000u);  // nanoGPT's layout: no header
  EXPECT_EQ(slurp(dir / "train.bin"), raw_bytes<uint16_t>(train));
  EXPECT_EQ(read_meta(dir / "meta.json")->find("val.bin")->tokens, 700);
  const TokenFile f = TokenFile::open(dir / "train.bin");
  EXPECT_EQ(f.format(), TokenFormat::Raw);
  EXPECT_EQ(f.dtype(), TokenDType::U16);
  EXPECT_EQ(f.size(), 5000);
  EXPECT_EQ(f.vocab_size(), 65536);
  EXPECT_EQ(f.header_bytes(), 0);
  EXPECT_EQ(f.meta()->tokenizer.checksum, char_tokenizer().checksum);
  EXPECT_EQ(f.verify(), meta.find("train.bin")->checksum);
  EXPECT_EQ(f.verify(), xxh64(slurp(dir / "train.bin")));
  std::vector<int32_t> back(train.size());
  f.read(0, f.size(), back.data());
  EXPECT_EQ(back, train);
  EXPECT_EQ(f.u16()[4999], uint16_t(train[4999]));  // in place: a view of the mapping
  EXPECT_TRUE(ThrowsWith([&] { f.u32(); }, {"holds uint16 ids, not uint32"}));
}

TEST(TokenFile, RoundTripUint32AboveSixtyFiveThousandIds) {
  TempDir dir("tokens");
  const int64_t vocab = 100277;  // cl100k's size: does not fit uint16
  std::vector<int32_t> train = ids_of(3000, vocab), val = ids_of(300, vocab);
  train[7] = int32_t(vocab - 1);
  const TokenMeta meta = write_token_dir(dir.str(), train, val, vocab, char_tokenizer());
  EXPECT_EQ(meta.dtype, TokenDType::U32);
  EXPECT_EQ(std::filesystem::file_size(dir / "train.bin"), 12000u);
  EXPECT_EQ(slurp(dir / "train.bin"), raw_bytes<uint32_t>(train));
  const TokenFile f = TokenFile::open(dir / "train.bin");
  EXPECT_EQ(f.dtype(), TokenDType::U32);
  EXPECT_EQ(f.vocab_size(), vocab);
  EXPECT_EQ(f.at(7), vocab - 1);
  EXPECT_EQ(f.verify(), meta.find("train.bin")->checksum);
  std::vector<int32_t> back(size_t(f.size()));
  f.read(0, f.size(), back.data());
  EXPECT_EQ(back, train);
  EXPECT_EQ(f.u32()[7], uint32_t(vocab - 1));
}

TEST(TokenFile, ReadsNanoGptRawFilesWithoutMeta) {
  TempDir dir("tokens");
  const std::vector<int32_t> ids = ids_of(1001, 50257);
  const TokenFile f = TokenFile::open(dir.write("train.bin", raw_bytes<uint16_t>(ids)));
  EXPECT_EQ(f.format(), TokenFormat::Raw);
  EXPECT_EQ(f.dtype(), TokenDType::U16);  // assumed without a meta.json
  EXPECT_EQ(f.size(), 1001);
  EXPECT_EQ(f.vocab_size(), 0);  // unknown: ids are not range-checked (uint16 fits int32)
  EXPECT_FALSE(f.meta().has_value());
  for (int64_t i : {0, 500, 1000}) EXPECT_EQ(f.at(i), ids[size_t(i)]);
  // The caller may bound the ids when no meta.json does.
  const TokenFile bounded = TokenFile::open(dir / "train.bin", {.vocab_size = 50257});
  EXPECT_EQ(bounded.vocab_size(), 50257);
  EXPECT_EQ(bounded.verify(), xxh64(raw_bytes<uint16_t>(ids)));
  // A meta.json that does not list the file says nothing about it.
  write_meta(dir / "meta.json", {.dtype = TokenDType::U32,
                                 .vocab_size = 70000,
                                 .tokenizer = char_tokenizer(),
                                 .files = {{"other.bin", 1, 0}}});
  EXPECT_EQ(TokenFile::open(dir / "train.bin").dtype(), TokenDType::U16);
}

TEST(TokenFile, ReadsLlmcHeaders) {
  TempDir dir("tokens");
  const std::vector<int32_t> gpt2 = ids_of(777, 50257);
  const TokenFile a =
      TokenFile::open(dir.write("gpt2.bin", llmc_bytes<uint16_t>(kLlmcMagicGpt2, 1, 777, gpt2)));
  EXPECT_EQ(a.format(), TokenFormat::LlmC);
  EXPECT_EQ(a.dtype(), TokenDType::U16);
  EXPECT_EQ(a.header_bytes(), 1024);
  EXPECT_EQ(a.size(), 777);
  EXPECT_EQ(a.vocab_size(), 50257);  // implied by the GPT-2 magic
  std::vector<int32_t> back(777);
  a.read(0, 777, back.data());
  EXPECT_EQ(back, gpt2);
  EXPECT_EQ(a.verify(), xxh64(slurp(dir / "gpt2.bin")));  // the header is checksummed too

  std::vector<int32_t> llama = ids_of(300, 128256);
  llama[299] = 128255;
  const TokenFile b = TokenFile::open(
      dir.write("llama3.bin", llmc_bytes<uint32_t>(kLlmcMagicLlama3, 7, 300, llama)));
  EXPECT_EQ(b.dtype(), TokenDType::U32);
  EXPECT_EQ(b.vocab_size(), 128256);
  EXPECT_EQ(b.at(299), 128255);
  EXPECT_EQ(b.u32().size(), 300u);
}

// Writes train.bin and val.bin from `tokens` split as the in-memory dataset splits them
// (train_split_size, as `lmlab prepare` will), and returns the directory's path.
std::string prepared(const TempDir& dir, const std::vector<int32_t>& tokens, int64_t vocab) {
  const size_t n_train = size_t(train_split_size(int64_t(tokens.size()), 0.1));
  EXPECT_EQ(n_train, size_t(std::floor(double(tokens.size()) * 0.9)));
  write_token_dir(dir.str(), std::span(tokens).first(n_train), std::span(tokens).subspan(n_train),
                  vocab, char_tokenizer());
  return dir.str();
}

void expect_same_batches(const TokenDataset& a, const TokenDataset& b, int64_t B, int64_t T) {
  ASSERT_EQ(a.train_size(), b.train_size());
  ASSERT_EQ(a.val_size(), b.val_size());
  Generator ga(1234), gb(1234);
  for (int step = 0; step < 20; ++step) {
    const Batch x = a.sample_batch(B, T, ga), y = b.sample_batch(B, T, gb);
    ASSERT_EQ(x.x.to_vector<int32_t>(), y.x.to_vector<int32_t>()) << step;
    ASSERT_EQ(x.y.to_vector<int32_t>(), y.y.to_vector<int32_t>()) << step;
  }
  EXPECT_EQ(ga.offset(), gb.offset());
  ASSERT_EQ(a.eval_batch_count(B, T), b.eval_batch_count(B, T));
  for (int64_t i = 0; i < a.eval_batch_count(B, T); ++i) {
    const EvalBatch x = a.eval_batch(B, T, i), y = b.eval_batch(B, T, i);
    EXPECT_EQ(x.count, y.count);
    EXPECT_EQ(x.length, y.length);
    EXPECT_EQ(x.x.to_vector<int32_t>(), y.x.to_vector<int32_t>()) << i;
    EXPECT_EQ(x.y.to_vector<int32_t>(), y.y.to_vector<int32_t>()) << i;
  }
}

TEST(TokenDatasetMapped, BatchesEqualTheInMemoryDatasetsBatches) {
  for (const int64_t vocab : {int64_t(1000), int64_t(90000)}) {  // uint16 and uint32 files
    TempDir dir("tokens");
    const std::vector<int32_t> tokens = ids_of(10007, vocab);
    const std::string d = prepared(dir, tokens, vocab);
    const TokenDataset memory(tokens, 0.1);
    const TokenDataset two_files(
        TokenFile::open(d + "/train.bin"),
        TokenFile::open(d + "/val.bin", {.access = TokenAccess::Sequential}));
    EXPECT_TRUE(two_files.mapped());
    EXPECT_EQ(two_files.size(), 10007);
    expect_same_batches(memory, two_files, 8, 64);
    expect_same_batches(memory, two_files, 3, 50);  // a short last eval window
    // One file split by val_fraction (what `lmlab prepare` streams: a writer, then meta.json).
    TempDir one("tokens");
    TokenFileWriter all(one / "all.bin", vocab);
    all.append(tokens);
    write_meta(one / "meta.json", {.dtype = all.dtype(),
                                   .vocab_size = vocab,
                                   .tokenizer = char_tokenizer(),
                                   .files = {all.commit()}});
    const TokenDataset one_file(TokenFile::open(one / "all.bin"), 0.1);
    EXPECT_EQ(one_file.train_file(), one_file.val_file());
    expect_same_batches(memory, one_file, 8, 64);
  }
}

TEST(TokenDatasetMapped, InMemoryAccessorsAndTokenizerMismatch) {
  TempDir a("tokens"), b("tokens");
  const std::vector<int32_t> tokens = ids_of(1000, 3);
  prepared(a, tokens, 3);
  const TokenDataset ds(TokenFile::open(a / "train.bin"), TokenFile::open(a / "val.bin"));
  EXPECT_TRUE(ThrowsWith([&] { ds.tokens(); },
                         {"[data] tokens() needs an in-memory dataset", a / "train.bin"}));
  EXPECT_TRUE(ThrowsWith([&] { ds.train_data(); }, {"train_data() needs an in-memory"}));
  std::vector<int32_t> v(2);
  ds.read_val(0, 2, v.data());
  EXPECT_EQ(v, (std::vector<int32_t>{tokens[900], tokens[901]}));
  // val.bin of another tokenizer (same vocabulary size, another vocabulary).
  write_token_dir(b.str(), std::span(tokens).first(900), std::span(tokens).subspan(900), 3,
                  TokenizerIdentity::of("char", R"({"kind":"char","vocab_size":3,"vocab":"xyz"})"));
  EXPECT_TRUE(ThrowsWith(
      [&] { TokenDataset(TokenFile::open(a / "train.bin"), TokenFile::open(b / "val.bin")); },
      {"[data]", "were tokenized differently", "tokenizer char (xxh64:"}));
  EXPECT_TRUE(ThrowsWith([&] { TokenDataset(TokenFile::open(a / "val.bin"), 0.999); },
                         {"[data] cannot split 100 tokens of " + a / "val.bin",
                          "with val_fraction 0.999000: the train split gets 0"}));
}

TEST(TokenFileErrors, MissingEmptyAndNotAFile) {
  TempDir dir("tokens");
  EXPECT_TRUE(ThrowsWith([&] { TokenFile::open(dir / "nope.bin"); },
                         {"[data] " + dir / "nope.bin" + ": cannot open: No such file"}));
  EXPECT_TRUE(ThrowsWith([&] { TokenFile::open(dir.write("empty.bin", "")); },
                         {"[data] " + dir / "empty.bin" + ": the file is empty"}));
  EXPECT_TRUE(ThrowsWith([&] { TokenFile::open(dir.str()); }, {"is a directory"}));
}

TEST(TokenFileErrors, TruncatedFiles) {
  TempDir dir("tokens");
  const std::vector<int32_t> ids = ids_of(500, 50257);
  EXPECT_TRUE(ThrowsWith(
      [&] { TokenFile::open(dir.write("odd.bin", raw_bytes<uint16_t>(ids) + "x")); },
      {"[data] " + dir / "odd.bin", "truncated: 1001 bytes is not a whole number of uint16 ids",
       "assumed without a meta.json", "at byte offset 1000"}));
  const std::string full = llmc_bytes<uint16_t>(kLlmcMagicGpt2, 1, 500, ids);
  EXPECT_TRUE(ThrowsWith(
      [&] { TokenFile::open(dir.write("short.bin", full.substr(0, full.size() - 100))); },
      {"[data] " + dir / "short.bin", "truncated: the llm.c header counts 500 tokens",
       "2024 bytes with the header", "the file has 1924 bytes: it holds tokens [0, 450) only"}));
  EXPECT_TRUE(
      ThrowsWith([&] { TokenFile::open(dir.write("long.bin", full + "abcd")); },
                 {"counts 500 tokens, but the file goes on for 4 bytes", "from byte offset 2024"}));
  EXPECT_TRUE(ThrowsWith([&] { TokenFile::open(dir.write("cut.bin", full.substr(0, 500))); },
                         {"the llm.c header is cut short: the file has 500 bytes"}));
  EXPECT_TRUE(ThrowsWith(
      [&] {
        TokenFile::open(dir.write("zero.bin", llmc_bytes<uint16_t>(kLlmcMagicGpt2, 1, 0, {})));
      },
      {"the llm.c header counts 0 tokens"}));
}

TEST(TokenFileErrors, BadMagicAndVersion) {
  TempDir dir("tokens");
  const std::vector<int32_t> ids = ids_of(10, 100);
  EXPECT_TRUE(ThrowsWith(
      [&] {
        TokenFile::open(dir.write("v2.bin", llmc_bytes<uint16_t>(kLlmcMagicGpt2, 2, 10, ids)));
      },
      {"[data] " + dir / "v2.bin",
       "bad version 2 in the llm.c header (magic 20240520, GPT-2, "
       "has version 1)"}));
  EXPECT_TRUE(ThrowsWith(
      [&] {
        TokenFile::open(dir.write("l1.bin", llmc_bytes<uint32_t>(kLlmcMagicLlama3, 1, 10, ids)));
      },
      {"bad version 1", "LLaMA-3, has version 7"}));
  EXPECT_TRUE(ThrowsWith(
      [&] {
        TokenFile::open(dir.write("eval.bin", llmc_bytes<uint16_t>(kLlmcMagicEval, 1, 10, ids)));
      },
      {"is an llm.c evaluation file (magic 20240522)"}));
  // Only a meta.json can claim llm.c for a file whose magic is unknown.
  dir.write("x.bin", llmc_bytes<uint16_t>(12345, 1, 10, ids));
  write_meta(dir / "meta.json", {.format = "llm.c",
                                 .vocab_size = 100,
                                 .tokenizer = char_tokenizer(),
                                 .files = {{"x.bin", 10, 0}}});
  EXPECT_TRUE(ThrowsWith([&] { TokenFile::open(dir / "x.bin"); },
                         {"[data] " + dir / "x.bin", "bad magic 12345 in the llm.c header",
                          "expected 20240520 for GPT-2 or 20240801 for LLaMA-3"}));
  EXPECT_EQ(TokenFile::open(dir / "x.bin", {.use_meta = false}).format(), TokenFormat::Raw);
}

TEST(TokenFileErrors, LlmcFileThatMetaDescribes) {
  TempDir dir("tokens");
  const std::vector<int32_t> ids = ids_of(777, 50257);
  const std::string bytes = llmc_bytes<uint16_t>(kLlmcMagicGpt2, 1, 777, ids);
  dir.write("gpt2.bin", bytes);
  TokenMeta meta{.format = "llm.c",
                 .vocab_size = 50257,
                 .tokenizer = char_tokenizer(),
                 .files = {{"gpt2.bin", 777, xxh64(bytes)}}};
  write_meta(dir / "meta.json", meta);
  EXPECT_EQ(TokenFile::open(dir / "gpt2.bin").verify(), xxh64(bytes));
  meta.files[0].tokens = 776;
  write_meta(dir / "meta.json", meta);
  EXPECT_TRUE(ThrowsWith([&] { TokenFile::open(dir / "gpt2.bin"); },
                         {"lists 776 tokens, the file holds 777 (1554 bytes of uint16 ids after "
                          "its header)"}));
  meta.files[0].tokens = 777;
  meta.dtype = TokenDType::U32;
  write_meta(dir / "meta.json", meta);
  EXPECT_TRUE(ThrowsWith([&] { TokenFile::open(dir / "gpt2.bin"); },
                         {"meta.json says uint32 ids, the llm.c header (GPT-2) uint16"}));
}

TEST(TokenFileErrors, MetaThatDisagreesWithTheFile) {
  TempDir dir("tokens");
  const std::vector<int32_t> train = ids_of(1000, 3000), val = ids_of(101, 3000);
  const TokenMeta meta = write_token_dir(dir.str(), train, val, 3000, char_tokenizer());
  auto rewrite = [&](auto edit) {
    TokenMeta m = meta;
    edit(m);
    write_meta(dir / "meta.json", m);
  };
  rewrite([](TokenMeta& m) { m.files[0].tokens = 999; });
  EXPECT_TRUE(ThrowsWith([&] { TokenFile::open(dir / "train.bin"); },
                         {"[data] " + dir / "train.bin", "meta.json (" + dir / "meta.json" +
                                                             ") lists 999 tokens, the file holds "
                                                             "1000 (2000 bytes of uint16 ids)"}));
  rewrite([](TokenMeta& m) { m.dtype = TokenDType::U32; });  // 2000 bytes: 500 uint32 ids
  EXPECT_TRUE(ThrowsWith([&] { TokenFile::open(dir / "train.bin"); },
                         {"lists 1000 tokens, the file holds 500 (2000 bytes of uint32 ids)"}));
  EXPECT_TRUE(ThrowsWith([&] { TokenFile::open(dir / "val.bin"); },  // 202 bytes
                         {"202 bytes is not a whole number of uint32 ids", "as meta.json says"}));
  rewrite([](TokenMeta& m) { m.files[0].checksum ^= 1; });
  const TokenFile f = TokenFile::open(dir / "train.bin");  // sizes agree: opens (no full read)
  EXPECT_TRUE(ThrowsWith(
      [&] { f.verify(); },
      {"[data] " + dir / "train.bin", "checksum " + format_checksum(meta.files[0].checksum) +
                                          " does not match meta.json's " +
                                          format_checksum(meta.files[0].checksum ^ 1)}));
  dir.write("meta.json", "{\"format\": ");
  EXPECT_TRUE(ThrowsWith([&] { TokenFile::open(dir / "train.bin"); },
                         {"[data] " + dir / "meta.json" + ": not valid JSON"}));
}

TEST(TokenFileErrors, IdsAtOrAboveTheVocabulary) {
  TempDir dir("tokens");
  std::vector<int32_t> tokens = ids_of(2000, 60000);
  const TokenMeta meta = write_token_dir(dir.str(), std::span(tokens).first(1800),
                                         std::span(tokens).subspan(1800), 60000, char_tokenizer());
  TokenMeta small = meta;  // the same files claimed for a vocabulary of 50
  small.vocab_size = 50;
  write_meta(dir / "meta.json", small);
  const TokenFile f = TokenFile::open(dir / "train.bin");  // opening reads no id
  int64_t first = 0;
  while (tokens[size_t(first)] < 50) ++first;
  const std::string where = "token " + std::to_string(first) + " (byte offset " +
                            std::to_string(2 * first) + ") is " +
                            std::to_string(tokens[size_t(first)]) + ", not below vocab_size 50";
  EXPECT_TRUE(ThrowsWith([&] { f.verify(); }, {"[data] " + dir / "train.bin" + ": " + where}));
  EXPECT_TRUE(ThrowsWith([&] { f.at(first); }, {where}));
  // Lazily, per batch: sampling a window that holds the id names it.
  const TokenDataset ds(TokenFile::open(dir / "train.bin"), TokenFile::open(dir / "val.bin"));
  Generator gen(5);
  EXPECT_TRUE(ThrowsWith([&] { ds.sample_batch(4, 16, gen); },
                         {"[data] " + dir / "train.bin" + ": token", "not below vocab_size 50"}));
  EXPECT_TRUE(ThrowsWith([&] { ds.eval_batch(4, 16, 0); },
                         {"[data] " + dir / "val.bin" + ": token", "not below vocab_size 50"}));
  EXPECT_TRUE(ThrowsWith([&] { f.read(1790, 20, tokens.data()); },
                         {"cannot read ids [1790, 1810): the file holds 1800"}));
}

TEST(TokenWriter, RefusesBadIdsAndLeavesNoTempFile) {
  TempDir dir("tokens");
  {
    TokenFileWriter w(dir / "t.bin", 100);
    EXPECT_EQ(w.dtype(), TokenDType::U16);
    w.append(std::vector<int32_t>{1, 2, 3});
    EXPECT_TRUE(ThrowsWith(
        [&] {
          w.append(std::vector<int32_t>{4, 100});
        },
        {"[data] " + dir / "t.bin" +
         ": id 100 (token 4 of the file) is out "
         "of range [0, 100)"}));
    EXPECT_TRUE(ThrowsWith([&] { w.append(std::vector<int32_t>{-1}); }, {"id -1"}));
  }  // never committed: neither t.bin nor its temp file is left
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
  TokenFileWriter empty(dir / "e.bin", 100);
  EXPECT_TRUE(ThrowsWith([&] { empty.commit(); }, {"[data] " + dir / "e.bin" + ": no tokens"}));
  // A large append crosses the 1 MiB buffer: the file and its checksum are still exact.
  const std::vector<int32_t> big = ids_of(1500000, 90000);
  TokenFileWriter w(dir / "big.bin", 90000);
  w.append(std::span(big).first(7));
  w.append(std::span(big).subspan(7));
  const TokenFileEntry e = w.commit();
  EXPECT_EQ(e.tokens, 1500000);
  EXPECT_EQ(e.checksum, xxh64(raw_bytes<uint32_t>(big)));
  EXPECT_EQ(slurp(dir / "big.bin"), raw_bytes<uint32_t>(big));
  EXPECT_FALSE(std::filesystem::exists(dir / ("big.bin.tmp." + std::to_string(::getpid()))));
}

}  // namespace
}  // namespace lmlab::data
