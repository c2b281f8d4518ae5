// Helpers for the trainer and CLI tests: temporary run directories, small corpora, running the
// `lmlab` binary as a child process (fork + execve, no shell) with its stdout, stderr, exit code
// and peak memory, tmpfs mounts for disk faults, and checks on what a run leaves behind.
#pragma once
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/temp_dir.h"
#include "train/io/checkpoint.h"

extern char** environ;

namespace lmlab::test {

namespace fs = std::filesystem;
using namespace lmlab::train;

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

// ~`lines` lines of repetitive ASCII text (a few KB): easy to learn, every character recurs.
inline std::string small_corpus(int lines = 120) {
  const char* words[] = {"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog",
                         "and", "a",     "cat",   "sat", "on",    "mat",  "by",   "sea"};
  std::string text;
  for (int i = 0; i < lines; ++i) {
    for (int w = 0; w < 7; ++w) {
      text += words[(i * 3 + w * (i % 5 + 1)) % 16];
      text += w == 6 ? ".\n" : " ";
    }
  }
  return text;
}

// The rows of a metrics.csv (header excluded), each split at commas.
inline std::vector<std::vector<std::string>> csv_rows(const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(read_file(path));
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::string cell;
    std::istringstream ls(line);
    while (std::getline(ls, cell, ',')) cells.push_back(cell);
    if (!line.empty() && line.back() == ',') cells.push_back("");
    rows.push_back(cells);
  }
  return rows;
}

inline std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// The lmlab binary: $LMLAB_BUILD_DIR/lmlab (ctest sets it), else ../lmlab from the test binary.
inline std::string lmlab_binary() {
  if (const char* dir = std::getenv("LMLAB_BUILD_DIR")) return std::string(dir) + "/lmlab";
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return (self.parent_path().parent_path() / "lmlab").string();
}

// configs/tiny.yaml in the source tree.
inline std::string tiny_config() { return std::string(LMLAB_SOURCE_DIR) + "/configs/tiny.yaml"; }

struct ChildOptions {
  std::vector<std::string> env;  // extra "NAME=value" entries (override inherited ones)
  long fsize_limit = -1;         // RLIMIT_FSIZE in bytes for the child (SIGXFSZ ignored), -1: none
};

// A child process whose stdout and stderr go to files in `io_dir`.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& io_dir, const ChildOptions& o = {})
      : out_path_(io_dir + "/child_" + std::to_string(serial()) + ".out"),
        err_path_(out_path_.substr(0, out_path_.size() - 4) + ".err") {
    // Everything the child needs is built before fork: after it only async-signal-safe calls.
    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e) {
      const std::string entry = *e;
      bool overridden = false;
      for (const std::string& x : o.env)
        overridden |= entry.compare(0, x.find('=') + 1, x, 0, x.find('=') + 1) == 0;
      if (!overridden) env_strings.push_back(entry);
    }
    env_strings.insert(env_strings.end(), o.env.begin(), o.env.end());
    std::vector<char*> args, envp;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    for (const std::string& e : env_strings) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    const int out = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out, 1);
      ::dup2(err, 2);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      ::signal(SIGINT, SIG_DFL);
      ::signal(SIGTERM, SIG_DFL);
      if (o.fsize_limit >= 0) {
        ::signal(SIGXFSZ, SIG_IGN);  // a write past the limit fails with EFBIG instead of killing
        struct rlimit rl {
          rlim_t(o.fsize_limit), rlim_t(o.fsize_limit)
        };
        ::setrlimit(RLIMIT_FSIZE, &rl);
      }
      ::execve(args[0], args.data(), envp.data());
      ::_exit(127);
    }
    ::close(out);
    ::close(err);
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int sig) const { ::kill(pid_, sig); }
  // Waits up to timeout_s; returns the exit code (128 + n when killed by signal n, -1 on timeout:
  // the child is then killed).
  int wait(double timeout_s = 60) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    int status = 0;
    while (true) {
      struct rusage usage {};
      const pid_t r = ::wait4(pid_, &status, WNOHANG, &usage);
      if (r == pid_) {
        max_rss_kb_ = usage.ru_maxrss;
        break;
      }
      if (std::chrono::steady_clock::now() > end) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        reaped_ = true;
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    reaped_ = true;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
  }
  std::string out() const { return read_file(out_path_); }
  std::string err() const { return read_file(err_path_); }
  // The child's peak resident set in KiB, once wait() has reaped it (0 before, or when killed
  // at the timeout).
  long max_rss_kb() const { return max_rss_kb_; }

 private:
  static int serial() {
    static std::atomic<int> n{0};
    return n++;
  }
  std::string out_path_, err_path_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  long max_rss_kb_ = 0;
};

struct RunResult {
  int code = -1;  // exit code; 128 + n for signal n; -1 on timeout
  std::string out, err;
  long max_rss_kb = 0;  // the child's peak resident set
};

// Runs `lmlab <args...>` to completion and returns its exit code, stdout and stderr.
inline RunResult run_lmlab(const std::vector<std::string>& args, const std::string& io_dir,
                           const ChildOptions& o = {}, double timeout_s = 60) {
  std::vector<std::string> argv{lmlab_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  Child child(argv, io_dir, o);
  RunResult r;
  r.code = child.wait(timeout_s);
  r.out = child.out();
  r.err = child.err();
  r.max_rss_kb = child.max_rss_kb();
  return r;
}

// `lmlab train tiny.yaml --quiet --run-dir <run_dir>` on `corpus` with 1 thread, then
// "--set <s>" for each of `sets` and the `extra` arguments.
inline std::vector<std::string> tiny_train_args(const std::string& run_dir,
                                                const std::string& corpus,
                                                const std::vector<std::string>& sets = {},
                                                const std::vector<std::string>& extra = {}) {
  std::vector<std::string> a{"train", tiny_config(),           "--quiet", "--run-dir",      run_dir,
                             "--set", "data.corpus=" + corpus, "--set",   "train.threads=1"};
  for (const std::string& s : sets) a.insert(a.end(), {"--set", s});
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// A tmpfs mounted at `path` (created) for the life of the object, for real ENOSPC and EROFS
// faults. Needs root and CAP_SYS_ADMIN: ok() is false otherwise, and why() says what failed.
class TmpfsMount {
 public:
  TmpfsMount(const std::string& path, size_t bytes) : path_(path) {
    fs::create_directories(path);
    if (::geteuid() != 0) {
      why_ = "mounting a tmpfs needs root";
      return;
    }
    const std::string opts = "size=" + std::to_string(bytes);
    if (::mount("tmpfs", path.c_str(), "tmpfs", 0, opts.c_str()) != 0) {
      why_ = std::string("mount -t tmpfs failed: ") + std::strerror(errno);
      return;
    }
    mounted_ = true;
  }
  ~TmpfsMount() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;

  bool ok() const { return mounted_; }
  const std::string& why() const { return why_; }
  // Remounts read-only or read-write, with a new size; false on failure.
  bool remount(bool read_only, size_t bytes) const {
    const std::string opts = "size=" + std::to_string(bytes);
    const unsigned long flags = MS_REMOUNT | (read_only ? MS_RDONLY : 0);
    return ::mount("tmpfs", path_.c_str(), "tmpfs", flags, opts.c_str()) == 0;
  }

 private:
  std::string path_, why_;
  bool mounted_ = false;
};

// Every regular file under `dir` whose name contains ".tmp" (leftovers of an interrupted write).
inline std::vector<std::string> temp_leftovers(const std::string& dir) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec))
    if (e.path().filename().string().find(".tmp") != std::string::npos) found.push_back(e.path());
  return found;
}

// "key value" lines of `lmlab eval`'s stdout -> value of `key`.
inline std::string field(const std::string& out, const std::string& key) {
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + " ", 0) == 0) return line.substr(key.size() + 1);
  return "";
}

// Expects metrics.csv to hold exactly the steps 0 .. n-1, in order.
inline void expect_steps(const std::string& metrics, size_t n) {
  const auto rows = csv_rows(metrics);
  ASSERT_EQ(rows.size(), n);
  for (size_t i = 0; i < n; ++i) EXPECT_EQ(rows[i][0], std::to_string(i));
}

// Every parameter of a checkpoint is finite.
inline bool all_finite(const Checkpoint& c) {
  for (const auto& [name, t] : c.file.tensors)
    if (t.dtype() != DType::I32)
      for (double v : t.to(DType::F64).to_vector<double>())
        if (!std::isfinite(v)) return false;
  return true;
}

// A weights-only copy of a checkpoint: the parameters and the format/config/tokenizer metadata;
// no optimizer state, step, RNG state or format_version (which then defaults to 1).
inline std::string weights_only(const std::string& ckpt, const std::string& out) {
  SafeTensors full = load_safetensors(ckpt), w;
  for (const auto& [name, t] : full.tensors)
    if (name.rfind("adamw.", 0) != 0) w.tensors[name] = t;
  for (const char* key : {"format", "config", "tokenizer"}) w.metadata[key] = full.metadata.at(key);
  save_safetensors(out, w);
  return out;
}

// The regular files under `dir` (none: a failed run left nothing behind).
inline std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec))
    if (e.is_regular_file()) found.push_back(e.path().string());
  return found;
}

// Expects exit `code`, every part in stderr, and no file written in `run_dir`.
inline void expect_failure(const RunResult& r, int code, std::initializer_list<std::string> parts,
                           const std::string& run_dir = "") {
  EXPECT_EQ(r.code, code) << r.err;
  for (const std::string& p : parts)
    EXPECT_NE(r.err.find(p), std::string::npos) << "no \"" << p << "\" in: " << r.err;
  if (!run_dir.empty()) {
    EXPECT_EQ(files_in(run_dir), std::vector<std::string>{}) << r.err;
  }
}

// Every column but tokens_per_s and elapsed_s (timings) must match as text, row for row.
inline void expect_same_metrics(const std::string& a_path, const std::string& b_path) {
  const auto a = csv_rows(a_path), b = csv_rows(b_path);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].size(), 11u) << "row " << i;
    ASSERT_EQ(b[i].size(), 11u) << "row " << i;
    for (int col : {0, 1, 2, 3, 4, 5, 6, 7, 8})
      EXPECT_EQ(a[i][col], b[i][col]) << "row " << i << " column " << col;
  }
}

// Parameters and optimizer state of two checkpoints, bitwise.
inline void expect_same_tensors(const std::string& a_path, const std::string& b_path) {
  const SafeTensors a = load_safetensors(a_path), b = load_safetensors(b_path);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  std::vector<std::string> differ;
  for (const auto& [name, t] : a.tensors) {
    ASSERT_TRUE(b.contains(name)) << name;
    const Tensor& u = b.at(name);
    ASSERT_EQ(t.shape(), u.shape()) << name;
    if (std::memcmp(t.raw_data(), u.raw_data(), size_t(t.numel()) * dtype_size(t.dtype())) != 0)
      differ.push_back(name);
  }
  EXPECT_EQ(differ, std::vector<std::string>{}) << "tensors that are not bitwise equal";
}

}  // namespace lmlab::test
