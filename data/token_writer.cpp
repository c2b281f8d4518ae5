// Writing token files and meta.json atomically (data/token_writer.h).
#include "data/token_writer.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "autograd/error.h"
#include "data/atomic_write.h"

namespace lmlab::data {

static_assert(std::endian::native == std::endian::little,
              "token files are little-endian: a big-endian host needs a byte-swapping writer");

namespace {

constexpr size_t kBufferBytes = size_t(1) << 20;

// ids[0, n) as little-endian T at out.
template <class T>
void encode(const int32_t* ids, size_t n, char* out) {
  for (size_t i = 0; i < n; ++i) {
    const T v = T(ids[i]);
    std::memcpy(out + i * sizeof(T), &v, sizeof(T));
  }
}

}  // namespace

TokenFileWriter::TokenFileWriter(const std::string& path, int64_t vocab_size)
    : path_(path), vocab_size_(vocab_size), dtype_(dtype_for_vocab(vocab_size)) {
  if (vocab_size < 1)
    throw Error("[data] " + path + ": vocab_size must be positive, got " +
                std::to_string(vocab_size));
  temp_ = std::make_unique<AtomicFile>(path, "data");
  buffer_.reserve(kBufferBytes);
}

TokenFileWriter::~TokenFileWriter() = default;

void TokenFileWriter::append(std::span<const int32_t> ids) {
  if (!temp_) throw Error("[data] " + path_ + ": append after commit");
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= vocab_size_)
      throw Error("[data] " + path_ + ": id " + std::to_string(ids[i]) + " (token " +
                  std::to_string(tokens_ + int64_t(i)) + " of the file) is out of range [0, " +
                  std::to_string(vocab_size_) + ")");
  const size_t bytes = size_t(dtype_bytes(dtype_));
  for (size_t done = 0; done < ids.size();) {
    const size_t n = std::min(ids.size() - done, (kBufferBytes - buffer_.size()) / bytes);
    const size_t at = buffer_.size();
    buffer_.resize(at + n * bytes);
    if (dtype_ == TokenDType::U16)
      encode<uint16_t>(ids.data() + done, n, buffer_.data() + at);
    else
      encode<uint32_t>(ids.data() + done, n, buffer_.data() + at);
    done += n;
    if (buffer_.size() + bytes > kBufferBytes) flush();
  }
  tokens_ += int64_t(ids.size());
}

void TokenFileWriter::flush() {
  hash_.update(buffer_.data(), buffer_.size());
  temp_->write(buffer_.data(), buffer_.size());
  buffer_.clear();
}

TokenFileEntry TokenFileWriter::commit() {
  if (!temp_) throw Error("[data] " + path_ + ": commit after commit");
  if (tokens_ == 0) throw Error("[data] " + path_ + ": no tokens to write");
  flush();
  temp_->commit();
  temp_.reset();
  return {std::filesystem::path(path_).filename().string(), tokens_, hash_.digest()};
}

void write_meta(const std::string& meta_path, const TokenMeta& meta) {
  write_file_atomic(meta_path, meta_to_json(meta), "data");
}

TokenMeta write_token_dir(const std::string& dir, std::span<const int32_t> train,
                          std::span<const int32_t> val, int64_t vocab_size,
                          const TokenizerIdentity& tokenizer) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error("[data] cannot create the directory " + dir + ": " + ec.message());
  TokenMeta meta;
  meta.format = "raw";
  meta.dtype = dtype_for_vocab(vocab_size);
  meta.vocab_size = vocab_size;
  meta.tokenizer = tokenizer;
  for (const auto& [name, ids] : {std::pair{"train.bin", train}, std::pair{"val.bin", val}}) {
    TokenFileWriter writer((std::filesystem::path(dir) / name).string(), vocab_size);
    writer.append(ids);
    meta.files.push_back(writer.commit());
  }
  write_meta((std::filesystem::path(dir) / kMetaFileName).string(), meta);
  return meta;
}

}  // namespace lmlab::data
