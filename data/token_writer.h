// Writing token files in lmlab's layout: nanoGPT's raw array of little-endian ids (uint16 while
// the vocabulary has at most 65536 ids, which nanoGPT's train.py reads as is; uint32 above, which
// it does not), each file written atomically, and meta.json beside them (data/token_meta.h).
// Every file goes through data/atomic_write.h.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "data/token_meta.h"

namespace lmlab::data {

class AtomicFile;  // data/atomic_write.h

// Streams ids into one raw token file: append() as often as needed, then commit(). Until commit
// the ids go to "<path>.tmp.<pid>"; an unfinished writer (an exception, a crash) never leaves a
// half-written `path`, and its destructor removes the temp file.
class TokenFileWriter {
 public:
  // Creates the temp file for ids of a vocabulary of `vocab_size` (dtype_for_vocab(vocab_size)).
  // Throws "[data] cannot create <path>.tmp.<pid> to write <path>: <reason>".
  TokenFileWriter(const std::string& path, int64_t vocab_size);
  ~TokenFileWriter();
  TokenFileWriter(const TokenFileWriter&) = delete;
  TokenFileWriter& operator=(const TokenFileWriter&) = delete;

  // Throws "[data] <path>: id 70000 (token 12 of the file) is out of range [0, 65536)".
  void append(std::span<const int32_t> ids);
  // fsync, rename over `path`, fsync of its directory; returns the file's meta.json entry (its
  // file name, token count and XXH64 checksum, computed as the bytes went out). Throws
  // "[data] <path>: no tokens to write" when nothing was appended (an empty file is not a token
  // file), or "[data] cannot write <path> (via <tmp>): <reason>".
  TokenFileEntry commit();

  TokenDType dtype() const { return dtype_; }
  int64_t tokens() const { return tokens_; }

 private:
  void flush();

  std::string path_;
  std::unique_ptr<AtomicFile> temp_;
  int64_t vocab_size_ = 0;
  TokenDType dtype_ = TokenDType::U16;
  int64_t tokens_ = 0;
  Xxh64 hash_;
  std::string buffer_;  // encoded ids not yet written (up to 1 MiB)
};

// meta_to_json(meta) written atomically to `meta_path`.
void write_meta(const std::string& meta_path, const TokenMeta& meta);

// A prepared directory in one call: creates `dir`, writes <dir>/train.bin and <dir>/val.bin
// (raw, dtype_for_vocab(vocab_size)), then <dir>/meta.json listing both, last, so a meta.json
// never describes files that are not yet complete. Returns the meta written.
TokenMeta write_token_dir(const std::string& dir, std::span<const int32_t> train,
                          std::span<const int32_t> val, int64_t vocab_size,
                          const TokenizerIdentity& tokenizer);

}  // namespace lmlab::data
