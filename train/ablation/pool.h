// The child processes of an ablation (ablation/runner.h): each run is an `lmlab train` process
// with its stdout and stderr appended to the run's train.log, started and reaped here, at most
// `jobs` at a time. Nothing here knows about specs or reports.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace lmlab::train {

class ChildPool {
 public:
  struct Child {
    size_t id;  // the caller's name for it (the index of its run)
    pid_t pid;
    std::chrono::steady_clock::time_point start;
  };
  struct Exited {
    size_t id;
    int code;        // the exit status, or 128 + the signal that ended it
    double seconds;  // from its start to its reaping
  };

  explicit ChildPool(int jobs) : jobs_(jobs) {}
  // Children still running (an exception unwound the caller) get SIGTERM (they checkpoint and
  // stop) and are waited for: none outlives the pool.
  ~ChildPool();
  ChildPool(const ChildPool&) = delete;
  ChildPool& operator=(const ChildPool&) = delete;

  bool empty() const { return running_.empty(); }
  bool full() const { return int(running_.size()) >= jobs_; }
  const std::vector<Child>& running() const { return running_; }  // in start order

  // Appends "$ <args, shell-quoted>" to `log`, then runs args[0] (a path) with `args` in a child
  // whose stdout and stderr append to `log`, OMP_NUM_THREADS and OPENBLAS_NUM_THREADS set to
  // `threads`, and SIGTERM as its parent-death signal. Throws lmlab::Error if fork fails; a binary
  // that cannot be executed exits 127 (its reason in the log).
  void start(size_t id, const std::vector<std::string>& args, const std::string& log, int threads);
  // The children that have exited since the last call (without waiting), in start order.
  std::vector<Exited> reap();
  // Sends `sig` to every running child.
  void signal_all(int sig) const;

 private:
  int jobs_;
  std::vector<Child> running_;
};

}  // namespace lmlab::train
