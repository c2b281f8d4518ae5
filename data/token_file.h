// TokenFile: a file of token ids mapped read-only (mmap), read in place without a copy, so a
// corpus larger than RAM costs only the pages a batch touches. Three layouts are recognised:
//   raw    nanoGPT's train.bin / val.bin (np.array(ids, dtype=np.uint16).tofile(path)): the ids,
//          little-endian, no header. lmlab writes the same, in uint32 when the vocabulary is over
//          65536 (then numpy reads it with dtype=np.uint32, nanoGPT's train.py does not).
//   llm.c  llm.c's .bin (dev/data/data_common.py): a header of 256 little-endian int32, header[0]
//          the magic, header[1] the version, header[2] the token count, then the ids: magic
//          20240520 version 1 = GPT-2, uint16; magic 20240801 version 7 = LLaMA-3, uint32.
// A meta.json beside the file (data/token_meta.h) that lists it gives its layout, dtype and
// vocabulary and is checked against it; without one the magic decides (llm.c), else raw uint16.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "data/token_meta.h"

namespace lmlab::data {

enum class TokenFormat { Raw, LlmC };
const char* format_name(TokenFormat format);  // "raw" or "llm.c"

inline constexpr int64_t kLlmcHeaderBytes = 1024;      // 256 int32
inline constexpr int32_t kLlmcMagicGpt2 = 20240520;    // version 1, uint16 ids
inline constexpr int32_t kLlmcMagicLlama3 = 20240801;  // version 7, uint32 ids
inline constexpr int32_t kLlmcMagicEval = 20240522;    // HellaSwag/MMLU files: not token files
inline constexpr int64_t kLlmcVocabGpt2 = 50257;       // the vocabulary each magic implies
inline constexpr int64_t kLlmcVocabLlama3 = 128256;

// How the mapping will be read, passed to madvise: Random (training windows: no read-ahead, so a
// window reads its own pages only) or Sequential (evaluation, verify: aggressive read-ahead).
enum class TokenAccess { Random, Sequential };

struct TokenFileOptions {
  // The bound on ids when no meta.json describes the file (0: none; an llm.c file then takes the
  // vocabulary its magic implies). A meta.json's vocab_size always wins.
  int64_t vocab_size = 0;
  TokenAccess access = TokenAccess::Random;
  bool use_meta = true;  // false: ignore any meta.json beside the file
};

class TokenFile {
 public:
  // Maps `path` and checks its shape: readable, not empty, a whole number of ids, an llm.c header
  // with a known magic and version and a count that matches the file's size, and the dtype and
  // token count of meta.json when it lists the file. Throws "[data] <path>: ..." otherwise.
  // Reads no id (cheap for any size); verify() reads them all.
  static TokenFile open(const std::string& path, const TokenFileOptions& options = {});

  TokenFile(TokenFile&& other) noexcept;
  TokenFile& operator=(TokenFile&& other) noexcept;
  TokenFile(const TokenFile&) = delete;
  TokenFile& operator=(const TokenFile&) = delete;
  ~TokenFile();

  const std::string& path() const { return path_; }
  TokenFormat format() const { return format_; }
  TokenDType dtype() const { return dtype_; }
  int64_t size() const { return count_; }             // ids
  int64_t vocab_size() const { return vocab_size_; }  // 0: unknown (ids are not range-checked)
  int64_t header_bytes() const { return header_bytes_; }
  int64_t file_bytes() const { return file_bytes_; }
  // meta.json's entry for this file, when one lists it.
  const std::optional<TokenFileEntry>& entry() const { return entry_; }
  const std::optional<TokenMeta>& meta() const { return meta_; }

  // The ids in place (throws "[data] <path>: holds uint32 ids, not uint16" for the other dtype).
  std::span<const uint16_t> u16() const;
  std::span<const uint32_t> u32() const;

  // ids [start, start + count) as int32 into `out`, each checked against vocab_size() (or, when
  // that is unknown, against the int32 range): "[data] <path>: token 1234 (byte offset 3492) is
  // 70000, not below vocab_size 65536". Throws on a range outside the file.
  void read(int64_t start, int64_t count, int32_t* out) const;
  // id i as int32, checked as read() checks.
  int32_t at(int64_t i) const;

  // One sequential pass over the whole file (a 4 GB file is a 4 GB read): every id checked as
  // read() checks, and the XXH64 of all the bytes compared with meta.json's checksum when it
  // lists one ("[data] <path>: checksum xxh64:... does not match meta.json's xxh64:...").
  // Returns that checksum. It reads with pread, 1 MB at a time, not through the mapping: it
  // costs no resident memory, only time (the file's read; the checksum runs at ~8 GB/s).
  uint64_t verify() const;

 private:
  TokenFile() = default;
  void release();
  void detect(const TokenFileOptions& options);
  void parse_llmc_header();
  void check_against_meta() const;
  const unsigned char* ids_begin() const { return base_ + header_bytes_; }
  void pread_exact(int64_t offset, int64_t bytes, void* out) const;
  template <class T>
  void verify_ids(Xxh64& hash) const;
  [[noreturn]] void fail(const std::string& what) const;
  [[noreturn]] void fail_id(int64_t index) const;  // id `index` is out of range

  std::string path_;
  const unsigned char* base_ = nullptr;  // the mapping, file_bytes_ long
  int fd_ = -1;                          // the file, open for verify()
  int64_t file_bytes_ = 0;
  int64_t header_bytes_ = 0;
  int64_t count_ = 0;
  int64_t vocab_size_ = 0;
  TokenFormat format_ = TokenFormat::Raw;
  TokenDType dtype_ = TokenDType::U16;
  TokenAccess access_ = TokenAccess::Random;
  std::optional<TokenMeta> meta_;
  std::optional<TokenFileEntry> entry_;
};

}  // namespace lmlab::data
