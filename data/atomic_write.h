// The one atomic file write of lmlab: checkpoints, configs, metrics, results, reports, token files
// and tokenizers all go through it, so a crash or a full disk leaves either the old file or the
// new one, never half of one. It lives in data/ (the lowest layer that writes files) so that
// data/ and train/ share it.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace lmlab::data {

// A file being written: bytes go to "<path>.tmp.<pid>"; commit() fsyncs it, renames it over
// `path` and fsyncs the directory (so the rename survives a power cut). Destroyed before commit
// (an exception, an early return), it removes the temp file and `path` is untouched. Errors throw
// lmlab::Error("[<who>] cannot write <path> (via <tmp>): <reason>"), "cannot create <tmp>" when
// it cannot even be opened, with " (disk full?)" on ENOSPC / EFBIG.
class AtomicFile {
 public:
  AtomicFile(const std::string& path, const char* who);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);
  void commit();

 private:
  [[noreturn]] void fail(const char* what, int err) const;

  std::string path_, tmp_, who_;
  int fd_ = -1;
  bool renamed_ = false;
};

// Receives the next bytes of the file being written.
using ByteSink = std::function<void(const void* data, size_t size)>;

// Writes `path` atomically (an AtomicFile): `produce` hands its bytes to the sink. An exception
// from `produce` removes the temp file and propagates.
void write_file_atomic(const std::string& path, const std::function<void(const ByteSink&)>& produce,
                       const char* who);
// The same for a text already in memory.
void write_file_atomic(const std::string& path, std::string_view text, const char* who = "train");

}  // namespace lmlab::data
