// The one temporary directory of the tests: a fresh directory under the system temp path, removed
// with its contents when the TempDir goes out of scope.
#pragma once
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>

namespace lmlab::test {

class TempDir {
 public:
  // `tag` names the directory (lmlab_<tag>_<pid>_<n>), to tell leftovers apart.
  explicit TempDir(const std::string& tag = "test") {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("lmlab_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }
  // <dir>/<name>
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  // Writes `bytes` verbatim to <dir>/<name> and returns the full path.
  std::string write(const std::string& name, const std::string& bytes) const {
    const std::filesystem::path p = path_ / name;
    std::ofstream out(p, std::ios::binary);
    out.write(bytes.data(), std::streamsize(bytes.size()));
    return p.string();
  }

 private:
  std::filesystem::path path_;
};

}  // namespace lmlab::test
