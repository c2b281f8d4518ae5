// Atomic file writes: temp file, fsync, rename, fsync of the directory.
#include "data/atomic_write.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "autograd/error.h"

namespace lmlab::data {

namespace {

std::string errno_text() { return std::strerror(errno); }

// "[who] " followed by the parts (appended, not operator+: GCC 12's -Wrestrict misfires on it).
template <class... Parts>
Error error_of(const std::string& who, const Parts&... parts) {
  std::string msg = "[";
  msg += who;
  msg += "] ";
  (msg += ... += parts);
  return Error(msg);
}

// Makes a rename in the directory of `path` durable.
void fsync_directory(const std::string& path, const std::string& who) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::string dir = parent.empty() ? std::string(".") : parent.string();
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    throw error_of(who, "wrote ", path,
                   " but cannot open its directory to fsync it: ", errno_text());
  const int rc = ::fsync(dfd);
  ::close(dfd);
  if (rc != 0)
    throw error_of(who, "wrote ", path, " but the fsync of its directory failed: ", errno_text());
}

}  // namespace

AtomicFile::AtomicFile(const std::string& path, const char* who)
    : path_(path), tmp_(path + ".tmp." + std::to_string(::getpid())), who_(who) {
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw error_of(who_, "cannot create ", tmp_, " to write ", path_, ": ", errno_text());
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!renamed_) ::unlink(tmp_.c_str());
}

void AtomicFile::fail(const char* what, int err) const {
  throw error_of(who_, "cannot write ", path_, " (via ", tmp_, "): ", what, std::strerror(err),
                 err == ENOSPC || err == EFBIG ? " (disk full?)" : "");
}

void AtomicFile::write(const void* data, size_t n) {
  if (fd_ < 0) throw error_of(who_, "cannot write ", path_, ": written after commit");
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) fail("", errno);
    p += w;
    n -= size_t(w);
  }
}

void AtomicFile::commit() {
  if (fd_ < 0) throw error_of(who_, "cannot write ", path_, ": committed twice");
  if (::fsync(fd_) != 0) fail("fsync failed: ", errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("close failed: ", errno);
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) fail("rename failed: ", errno);
  renamed_ = true;
  fsync_directory(path_, who_);
}

void write_file_atomic(const std::string& path, const std::function<void(const ByteSink&)>& produce,
                       const char* who) {
  AtomicFile file(path, who);
  produce([&](const void* data, size_t n) { file.write(data, n); });
  file.commit();
}

void write_file_atomic(const std::string& path, std::string_view text, const char* who) {
  write_file_atomic(
      path, [&](const ByteSink& sink) { sink(text.data(), text.size()); }, who);
}

}  // namespace lmlab::data
