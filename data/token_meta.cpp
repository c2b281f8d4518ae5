// Token dtypes, the XXH64 checksum and meta.json (data/token_meta.h).
#include "data/token_meta.h"

#include <bit>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "autograd/error.h"
#include "data/read_file.h"

namespace lmlab::data {

namespace {

using nlohmann::json;
using nlohmann::ordered_json;

// XXH64's primes (xxhash_spec.md).
constexpr uint64_t kP1 = 0x9E3779B185EBCA87ULL, kP2 = 0xC2B2AE3D27D4EB4FULL,
                   kP3 = 0x165667B19E3779F9ULL, kP4 = 0x85EBCA77C2B2AE63ULL,
                   kP5 = 0x27D4EB2F165667C5ULL;

template <class T>
T load(const unsigned char* p) {  // little-endian (the host's: token files need it anyway)
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

uint64_t xxh_round(uint64_t acc, uint64_t lane) { return std::rotl(acc + lane * kP2, 31) * kP1; }

// One 32-byte stripe into the four accumulators.
void stripe(uint64_t* acc, const unsigned char* p) {
  for (int i = 0; i < 4; ++i) acc[i] = xxh_round(acc[i], load<uint64_t>(p + 8 * i));
}

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw Error("[data] " + where + ": " + what);
}

// The member `key` of `j`, which must exist and have the kind `is` checks.
const json& member(const json& j, const char* key, bool (json::*is)() const, const char* kind,
                   const std::string& where) {
  const auto it = j.find(key);
  if (it == j.end()) fail(where, std::string("no \"") + key + "\" field");
  if (!((*it).*is)()) fail(where, std::string("\"") + key + "\" is not " + kind);
  return *it;
}

int64_t integer(const json& j, const char* key, const std::string& where) {
  return member(j, key, &json::is_number_integer, "an integer", where).get<int64_t>();
}

std::string text(const json& j, const char* key, const std::string& where) {
  return member(j, key, &json::is_string, "a string", where).get<std::string>();
}

uint64_t checksum_field(const json& j, const std::string& where) {
  const std::string s = text(j, "checksum", where);
  const std::optional<uint64_t> h = parse_checksum(s);
  if (!h) fail(where, "checksum \"" + s + "\" is not \"xxh64:\" and 16 hex digits");
  return *h;
}

TokenDType dtype_from(const std::string& name, const std::string& where) {
  if (name == "uint16") return TokenDType::U16;
  if (name == "uint32") return TokenDType::U32;
  fail(where, "unknown dtype \"" + name + "\" (expected uint16 or uint32)");
}

TokenizerIdentity tokenizer_from(const json& j, const std::string& where) {
  const json& t = member(j, "tokenizer", &json::is_object, "an object", where);
  TokenizerIdentity id;
  id.name = text(t, "name", where + " tokenizer");
  id.checksum = checksum_field(t, where + " tokenizer");
  if (t.contains("serialized")) id.serialized = text(t, "serialized", where + " tokenizer");
  if (!id.serialized.empty() && xxh64(id.serialized) != id.checksum)
    fail(where, "the tokenizer's serialized form does not match its checksum");
  return id;
}

std::vector<TokenFileEntry> files_from(const json& j, const std::string& where) {
  const json& files = member(j, "files", &json::is_object, "an object", where);
  std::vector<TokenFileEntry> out;
  for (const auto& [name, f] : files.items()) {
    const std::string at = where + " files." + name;
    if (name.empty() || name.find('/') != std::string::npos)
      fail(where, "file name \"" + name + "\" must be a plain name in meta.json's directory");
    if (!f.is_object()) fail(at, "not an object");
    TokenFileEntry e{name, integer(f, "tokens", at), checksum_field(f, at)};
    if (e.tokens < 1) fail(at, "tokens must be positive, got " + std::to_string(e.tokens));
    out.push_back(e);
  }
  return out;
}

void check_header_fields(const json& j, TokenMeta& meta, const std::string& where) {
  const int64_t version = integer(j, "version", where);
  if (version != kMetaVersion)
    fail(where, "unsupported meta.json version " + std::to_string(version) + " (this lmlab reads " +
                    std::to_string(kMetaVersion) + ")");
  meta.format = text(j, "format", where);
  if (meta.format != "raw" && meta.format != "llm.c")
    fail(where, "unknown format \"" + meta.format + "\" (expected raw or llm.c)");
  meta.dtype = dtype_from(text(j, "dtype", where), where);
  meta.vocab_size = integer(j, "vocab_size", where);
  if (meta.vocab_size < 1)
    fail(where, "vocab_size must be positive, got " + std::to_string(meta.vocab_size));
  if (meta.dtype == TokenDType::U16 && meta.vocab_size > 65536)
    fail(where, "vocab_size " + std::to_string(meta.vocab_size) + " does not fit uint16 ids");
}

}  // namespace

int64_t dtype_bytes(TokenDType dtype) { return dtype == TokenDType::U16 ? 2 : 4; }

const char* dtype_name(TokenDType dtype) { return dtype == TokenDType::U16 ? "uint16" : "uint32"; }

TokenDType dtype_for_vocab(int64_t vocab_size) {
  return vocab_size <= 65536 ? TokenDType::U16 : TokenDType::U32;
}

void Xxh64::update(const void* data, size_t size) {
  if (size == 0) return;  // `data` may then be null, which memcpy must not see
  const unsigned char* p = static_cast<const unsigned char*>(data);
  total_ += size;
  if (buffered_ + size < 32) {
    std::memcpy(buffer_ + buffered_, p, size);
    buffered_ += size;
    return;
  }
  if (buffered_ > 0) {  // complete the buffered stripe
    const size_t fill = 32 - buffered_;
    std::memcpy(buffer_ + buffered_, p, fill);
    stripe(acc_, buffer_);
    p += fill;
    size -= fill;
    buffered_ = 0;
  }
  for (; size >= 32; p += 32, size -= 32) stripe(acc_, p);
  std::memcpy(buffer_, p, size);
  buffered_ = size;
}

uint64_t Xxh64::digest() const {
  uint64_t h = kP5;  // seed 0 + P5, for inputs shorter than one stripe
  if (total_ >= 32) {
    h = std::rotl(acc_[0], 1) + std::rotl(acc_[1], 7) + std::rotl(acc_[2], 12) +
        std::rotl(acc_[3], 18);
    for (const uint64_t a : acc_) h = (h ^ xxh_round(0, a)) * kP1 + kP4;
  }
  h += total_;
  const unsigned char* p = buffer_;
  size_t n = buffered_;
  for (; n >= 8; p += 8, n -= 8) h = std::rotl(h ^ xxh_round(0, load<uint64_t>(p)), 27) * kP1 + kP4;
  if (n >= 4) {
    h = std::rotl(h ^ uint64_t(load<uint32_t>(p)) * kP1, 23) * kP2 + kP3;
    p += 4;
    n -= 4;
  }
  for (; n > 0; ++p, --n) h = std::rotl(h ^ uint64_t(*p) * kP5, 11) * kP1;
  h = (h ^ (h >> 33)) * kP2;
  h = (h ^ (h >> 29)) * kP3;
  return h ^ (h >> 32);
}

uint64_t xxh64(std::string_view bytes) {
  Xxh64 h;
  h.update(bytes.data(), bytes.size());
  return h.digest();
}

std::string format_checksum(uint64_t hash) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "xxh64:%016llx", static_cast<unsigned long long>(hash));
  return buf;
}

std::optional<uint64_t> parse_checksum(const std::string& text) {
  const std::string prefix = "xxh64:";
  if (text.size() != prefix.size() + 16 || text.compare(0, prefix.size(), prefix) != 0)
    return std::nullopt;
  uint64_t h = 0;
  for (size_t i = prefix.size(); i < text.size(); ++i) {
    const char c = text[i];
    const int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (digit < 0) return std::nullopt;
    h = h << 4 | uint64_t(digit);
  }
  return h;
}

TokenizerIdentity TokenizerIdentity::of(std::string name, const std::string& serialized,
                                        bool keep) {
  return {std::move(name), keep ? serialized : std::string(), xxh64(serialized)};
}

const TokenFileEntry* TokenMeta::find(const std::string& file) const {
  for (const TokenFileEntry& e : files)
    if (e.file == file) return &e;
  return nullptr;
}

std::string meta_to_json(const TokenMeta& meta) {
  ordered_json j;
  j["format"] = meta.format;
  j["version"] = kMetaVersion;
  j["dtype"] = dtype_name(meta.dtype);
  j["vocab_size"] = meta.vocab_size;
  ordered_json& tok = j["tokenizer"];
  tok["name"] = meta.tokenizer.name;
  tok["checksum"] = format_checksum(meta.tokenizer.checksum);
  if (!meta.tokenizer.serialized.empty()) tok["serialized"] = meta.tokenizer.serialized;
  j["files"] = ordered_json::object();
  for (const TokenFileEntry& e : meta.files)
    j["files"][e.file] = {{"tokens", e.tokens}, {"checksum", format_checksum(e.checksum)}};
  return j.dump(2) + "\n";
}

TokenMeta meta_from_json(const std::string& text, const std::string& where) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) fail(where, "not valid JSON");
  if (!j.is_object()) fail(where, "not a JSON object");
  TokenMeta meta;
  check_header_fields(j, meta, where);
  meta.tokenizer = tokenizer_from(j, where);
  meta.files = files_from(j, where);
  return meta;
}

std::string meta_path_beside(const std::string& bin_path) {
  return (std::filesystem::path(bin_path).parent_path() / kMetaFileName).string();
}

std::optional<TokenMeta> read_meta(const std::string& meta_path) {
  std::error_code ec;
  if (!std::filesystem::exists(meta_path, ec)) return std::nullopt;
  std::string why;
  const std::optional<std::string> bytes = read_whole_file(meta_path, &why);
  if (!bytes) fail(meta_path, "cannot read: " + why);
  return meta_from_json(*bytes, meta_path);
}

}  // namespace lmlab::data
