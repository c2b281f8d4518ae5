// Token files mapped read-only: detection, the shape checks, reads and verify (data/token_file.h).
#include "data/token_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>
#include <vector>

#include "autograd/error.h"

namespace lmlab::data {

static_assert(std::endian::native == std::endian::little,
              "token files are little-endian and are read in place: a big-endian host needs a "
              "byte-swapping read");

namespace {

std::string str(int64_t v) { return std::to_string(v); }

int advice_of(TokenAccess access) {
  return access == TokenAccess::Random ? MADV_RANDOM : MADV_SEQUENTIAL;
}

// The index of the first id >= bound in src[0, n), or -1.
template <class T>
int64_t first_bad(const T* src, int64_t n, uint64_t bound) {
  for (int64_t i = 0; i < n; ++i)
    if (uint64_t(src[i]) >= bound) return i;
  return -1;
}

// src[0, n) as int32 into out; the index of the first id >= bound, or -1 (out then complete).
template <class T>
int64_t convert(const T* src, int64_t n, uint64_t bound, int32_t* out) {
  bool ok = true;
  for (int64_t i = 0; i < n; ++i) {
    const T v = src[i];
    ok &= uint64_t(v) < bound;
    out[i] = int32_t(v);
  }
  return ok ? -1 : first_bad(src, n, bound);
}

// The layout, dtype and vocabulary one llm.c magic stands for.
struct LlmcKind {
  int32_t magic, version;
  TokenDType dtype;
  int64_t vocab;
  const char* model;
};
constexpr LlmcKind kLlmcKinds[] = {
    {kLlmcMagicGpt2, 1, TokenDType::U16, kLlmcVocabGpt2, "GPT-2"},
    {kLlmcMagicLlama3, 7, TokenDType::U32, kLlmcVocabLlama3, "LLaMA-3"},
};

int32_t int32_at(const unsigned char* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

const char* format_name(TokenFormat format) { return format == TokenFormat::Raw ? "raw" : "llm.c"; }

TokenFile TokenFile::open(const std::string& path, const TokenFileOptions& options) {
  TokenFile f;
  f.path_ = path;
  f.access_ = options.access;
  f.fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);  // kept open for verify's reads
  if (f.fd_ < 0) f.fail(std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(f.fd_, &st) != 0) f.fail(std::string("cannot stat: ") + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) f.fail("is a directory, not a token file");
  if (!S_ISREG(st.st_mode)) f.fail("is not a regular file");
  if (st.st_size == 0) f.fail("the file is empty (no tokens)");
  void* p = ::mmap(nullptr, size_t(st.st_size), PROT_READ, MAP_SHARED, f.fd_, 0);
  if (p == MAP_FAILED) f.fail(std::string("cannot map: ") + std::strerror(errno));
  f.base_ = static_cast<const unsigned char*>(p);
  f.file_bytes_ = int64_t(st.st_size);
  f.detect(options);
  ::madvise(p, size_t(f.file_bytes_), advice_of(f.access_));
  return f;
}

TokenFile::TokenFile(TokenFile&& other) noexcept { *this = std::move(other); }

TokenFile& TokenFile::operator=(TokenFile&& other) noexcept {
  if (this == &other) return *this;
  release();
  path_ = std::move(other.path_);
  base_ = std::exchange(other.base_, nullptr);
  fd_ = std::exchange(other.fd_, -1);
  file_bytes_ = std::exchange(other.file_bytes_, 0);
  header_bytes_ = other.header_bytes_;
  count_ = std::exchange(other.count_, 0);
  vocab_size_ = other.vocab_size_;
  format_ = other.format_;
  dtype_ = other.dtype_;
  access_ = other.access_;
  meta_ = std::move(other.meta_);
  entry_ = std::move(other.entry_);
  return *this;
}

TokenFile::~TokenFile() { release(); }

void TokenFile::release() {
  if (base_) ::munmap(const_cast<unsigned char*>(base_), size_t(file_bytes_));
  if (fd_ >= 0) ::close(fd_);
  base_ = nullptr;
  fd_ = -1;
}

void TokenFile::fail(const std::string& what) const {
  throw Error("[data] " + path_ + ": " + what);
}

void TokenFile::fail_id(int64_t index) const {
  const uint64_t value =
      dtype_ == TokenDType::U16 ? uint64_t(u16()[size_t(index)]) : u32()[size_t(index)];
  const std::string where = "token " + str(index) + " (byte offset " +
                            str(header_bytes_ + index * dtype_bytes(dtype_)) + ") is " +
                            std::to_string(value);
  if (vocab_size_ > 0) fail(where + ", not below vocab_size " + str(vocab_size_));
  fail(where + ", beyond the int32 range of token ids");
}

// Layout, dtype, count and vocabulary: meta.json's when it lists the file, else the magic's.
void TokenFile::detect(const TokenFileOptions& options) {
  const std::string name = std::filesystem::path(path_).filename().string();
  if (options.use_meta) meta_ = read_meta(meta_path_beside(path_));
  if (meta_ && meta_->find(name)) entry_ = *meta_->find(name);
  if (!entry_) meta_.reset();  // a meta.json that does not list this file says nothing of it
  bool llmc = false;
  if (meta_) {
    llmc = meta_->format == "llm.c";
  } else if (file_bytes_ >= 4) {
    const int32_t magic = int32_at(base_);
    llmc = magic == kLlmcMagicGpt2 || magic == kLlmcMagicLlama3 || magic == kLlmcMagicEval;
  }
  vocab_size_ = options.vocab_size;
  if (llmc) {
    parse_llmc_header();
  } else {
    dtype_ = meta_ ? meta_->dtype : TokenDType::U16;
    const int64_t bytes = dtype_bytes(dtype_);
    if (file_bytes_ % bytes != 0)
      fail("truncated: " + str(file_bytes_) + " bytes is not a whole number of " +
           dtype_name(dtype_) + " ids (" + str(bytes) + " bytes each, " +
           (meta_ ? "as meta.json says" : "assumed without a meta.json") + "); the last id, at " +
           "byte offset " + str(file_bytes_ - file_bytes_ % bytes) + ", is cut short");
    count_ = file_bytes_ / bytes;
  }
  if (meta_) vocab_size_ = meta_->vocab_size;
  check_against_meta();
}

void TokenFile::parse_llmc_header() {
  format_ = TokenFormat::LlmC;
  if (file_bytes_ < kLlmcHeaderBytes)
    fail("the llm.c header is cut short: the file has " + str(file_bytes_) +
         " bytes, the header alone " + str(kLlmcHeaderBytes));
  const int32_t magic = int32_at(base_), version = int32_at(base_ + 4);
  const int64_t count = int32_at(base_ + 8);
  if (magic == kLlmcMagicEval)
    fail("is an llm.c evaluation file (magic " + str(magic) + "), not a file of training tokens");
  const LlmcKind* kind = nullptr;
  for (const LlmcKind& k : kLlmcKinds)
    if (k.magic == magic) kind = &k;
  if (!kind)
    fail("bad magic " + str(magic) + " in the llm.c header (expected " + str(kLlmcMagicGpt2) +
         " for GPT-2 or " + str(kLlmcMagicLlama3) + " for LLaMA-3)");
  if (version != kind->version)
    fail("bad version " + str(version) + " in the llm.c header (magic " + str(magic) + ", " +
         kind->model + ", has version " + str(kind->version) + ")");
  if (meta_ && meta_->dtype != kind->dtype)
    fail(std::string("meta.json says ") + dtype_name(meta_->dtype) + " ids, the llm.c header (" +
         kind->model + ") " + dtype_name(kind->dtype));
  dtype_ = kind->dtype;
  header_bytes_ = kLlmcHeaderBytes;
  if (vocab_size_ <= 0) vocab_size_ = kind->vocab;
  if (count <= 0) fail("the llm.c header counts " + str(count) + " tokens");
  const int64_t expected = kLlmcHeaderBytes + count * dtype_bytes(dtype_);
  if (file_bytes_ < expected)
    fail("truncated: the llm.c header counts " + str(count) + " tokens (" + str(expected) +
         " bytes with the header), the file has " + str(file_bytes_) +
         " bytes: it holds tokens [0, " +
         str((file_bytes_ - kLlmcHeaderBytes) / dtype_bytes(dtype_)) + ") only");
  if (file_bytes_ > expected)
    fail("the llm.c header counts " + str(count) + " tokens, but the file goes on for " +
         str(file_bytes_ - expected) + " bytes after them, from byte offset " + str(expected));
  count_ = count;
}

void TokenFile::check_against_meta() const {
  if (!entry_) return;
  if (entry_->tokens != count_)
    fail("meta.json (" + meta_path_beside(path_) + ") lists " + str(entry_->tokens) +
         " tokens, the file holds " + str(count_) + " (" + str(file_bytes_ - header_bytes_) +
         " bytes of " + dtype_name(dtype_) + " ids" + (header_bytes_ ? " after its header)" : ")"));
}

std::span<const uint16_t> TokenFile::u16() const {
  if (dtype_ != TokenDType::U16) fail("holds uint32 ids, not uint16");
  return {reinterpret_cast<const uint16_t*>(ids_begin()), size_t(count_)};
}

std::span<const uint32_t> TokenFile::u32() const {
  if (dtype_ != TokenDType::U32) fail("holds uint16 ids, not uint32");
  return {reinterpret_cast<const uint32_t*>(ids_begin()), size_t(count_)};
}

void TokenFile::read(int64_t start, int64_t count, int32_t* out) const {
  if (start < 0 || count < 0 || start > count_ - count)
    fail("cannot read ids [" + str(start) + ", " + str(start + count) + "): the file holds " +
         str(count_));
  const uint64_t bound = vocab_size_ > 0 ? uint64_t(vocab_size_) : uint64_t(1) << 31;
  const int64_t bad = dtype_ == TokenDType::U16 ? convert(u16().data() + start, count, bound, out)
                                                : convert(u32().data() + start, count, bound, out);
  if (bad >= 0) fail_id(start + bad);
}

int32_t TokenFile::at(int64_t i) const {
  int32_t v = 0;
  read(i, 1, &v);
  return v;
}

void TokenFile::pread_exact(int64_t offset, int64_t bytes, void* out) const {
  char* p = static_cast<char*>(out);
  while (bytes > 0) {
    const ssize_t got = ::pread(fd_, p, size_t(bytes), off_t(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) fail("cannot read at byte offset " + str(offset) + ": " + std::strerror(errno));
    if (got == 0) fail("the file shrank to " + str(offset) + " bytes while it was read");
    p += got;
    offset += got;
    bytes -= got;
  }
}

template <class T>
void TokenFile::verify_ids(Xxh64& hash) const {
  constexpr int64_t kChunkIds = int64_t(1) << 18;  // 512 KB or 1 MB at a time
  const uint64_t bound = vocab_size_ > 0 ? uint64_t(vocab_size_) : uint64_t(1) << 31;
  std::vector<T> chunk(size_t(std::min(kChunkIds, count_)));
  for (int64_t start = 0; start < count_; start += kChunkIds) {
    const int64_t n = std::min(kChunkIds, count_ - start);
    pread_exact(header_bytes_ + start * int64_t(sizeof(T)), n * int64_t(sizeof(T)), chunk.data());
    hash.update(chunk.data(), size_t(n) * sizeof(T));
    const int64_t bad = first_bad(chunk.data(), n, bound);
    if (bad >= 0) fail_id(start + bad);
  }
}

uint64_t TokenFile::verify() const {
  Xxh64 hash;
  std::vector<unsigned char> header(static_cast<size_t>(header_bytes_));
  pread_exact(0, header_bytes_, header.data());
  hash.update(header.data(), header.size());
  if (dtype_ == TokenDType::U16)
    verify_ids<uint16_t>(hash);
  else
    verify_ids<uint32_t>(hash);
  if (entry_ && hash.digest() != entry_->checksum)
    fail("checksum " + format_checksum(hash.digest()) + " does not match meta.json's " +
         format_checksum(entry_->checksum) + " (the file changed since it was written, or is " +
         "corrupt)");
  return hash.digest();
}

}  // namespace lmlab::data
