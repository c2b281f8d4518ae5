// What token files share: the id types on disk, the XXH64 checksum of their bytes, and meta.json,
// lmlab's description of a prepared directory (dtype, vocabulary, tokenizer, files). The files
// themselves are data/token_file.h (reading, mapped) and data/token_writer.h (writing).
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lmlab::data {

// How ids are stored on disk: little-endian unsigned 16- or 32-bit integers.
enum class TokenDType { U16, U32 };
int64_t dtype_bytes(TokenDType dtype);     // 2 or 4
const char* dtype_name(TokenDType dtype);  // "uint16" or "uint32" (numpy's names)
// uint16 when every id of the vocabulary fits (vocab_size <= 65536), else uint32.
TokenDType dtype_for_vocab(int64_t vocab_size);

// XXH64 with seed 0 (Yann Collet's xxHash, doc/xxhash_spec.md), over bytes fed in any pieces: a
// checksum that catches a corrupt, truncated or swapped file, NOT a cryptographic hash (no
// defence against a file crafted on purpose). Written here in a few lines rather than linked;
// about 10 GB/s, so verifying a file costs its read, and the same value as `xxh64sum FILE`
// (Debian's xxhash package) and Python's xxhash.xxh64(bytes).hexdigest().
class Xxh64 {
 public:
  void update(const void* data, size_t size);
  uint64_t digest() const;

 private:
  uint64_t acc_[4] = {0x9E3779B185EBCA87ULL + 0xC2B2AE3D27D4EB4FULL, 0xC2B2AE3D27D4EB4FULL, 0,
                      0 - 0x9E3779B185EBCA87ULL};  // seed 0 + P1 + P2, seed + P2, seed, seed - P1
  unsigned char buffer_[32] = {};                  // the start of a 32-byte stripe
  size_t buffered_ = 0;
  uint64_t total_ = 0;
};
uint64_t xxh64(std::string_view bytes);
// "xxh64:" followed by 16 lowercase hex digits (xxh64sum's); parse_checksum accepts exactly that.
std::string format_checksum(uint64_t hash);
std::optional<uint64_t> parse_checksum(const std::string& text);

// The tokenizer that produced the ids. `name` is for people ("char", "byte", "bpe:gpt2.json");
// `checksum` is the XXH64 of its full serialized form (Tokenizer::serialize()), which is what
// tells two tokenizers apart; `serialized` is that form itself when it is kept (a char tokenizer
// cannot be rebuilt without it once the corpus is gone), empty when it is too big to keep.
struct TokenizerIdentity {
  std::string name;
  std::string serialized;
  uint64_t checksum = 0;

  // {name, keep ? serialized : "", xxh64(serialized)}.
  static TokenizerIdentity of(std::string name, const std::string& serialized, bool keep = true);
};

// One token file of a prepared directory, named relative to the directory of meta.json.
struct TokenFileEntry {
  std::string file;       // "train.bin"
  int64_t tokens = 0;     // ids in the file (its header excluded)
  uint64_t checksum = 0;  // XXH64 of all the file's bytes (a header included)
};

inline constexpr const char* kMetaFileName = "meta.json";
inline constexpr int kMetaVersion = 1;

// meta.json: the layout and id type of the files it lists, their vocabulary and tokenizer.
struct TokenMeta {
  std::string format = "raw";  // "raw" (nanoGPT's headerless array) or "llm.c"
  TokenDType dtype = TokenDType::U16;
  int64_t vocab_size = 0;  // ids are in [0, vocab_size)
  TokenizerIdentity tokenizer;
  std::vector<TokenFileEntry> files;

  const TokenFileEntry* find(const std::string& file) const;  // nullptr when not listed
};

// Two-space indented JSON ending in a newline:
// {"format":"raw","version":1,"dtype":"uint16","vocab_size":65,
//  "tokenizer":{"name":"char","checksum":"xxh64:...","serialized":"..."},
//  "files":{"train.bin":{"tokens":900,"checksum":"xxh64:..."},"val.bin":{...}}}
std::string meta_to_json(const TokenMeta& meta);
// Throws "[data] <where>: ..." when `text` is not JSON, lacks a field or has one of the wrong
// type, names an unknown format, dtype or version, a vocab_size the dtype cannot hold, a file
// name with a '/', a negative token count or a malformed checksum.
TokenMeta meta_from_json(const std::string& text, const std::string& where);
// <directory of bin_path>/meta.json.
std::string meta_path_beside(const std::string& bin_path);
// The meta.json at `meta_path`, or nullopt when there is none; throws "[data] <meta_path>: ..."
// when it exists but cannot be read or parsed.
std::optional<TokenMeta> read_meta(const std::string& meta_path);

}  // namespace lmlab::data
