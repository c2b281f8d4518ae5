// The child processes of an ablation (ablation/pool.h): fork + execv with the log as stdout and
// stderr, waitpid without blocking.
#include "train/ablation/pool.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "autograd/error.h"
#include "train/common/text.h"

namespace lmlab::train {

namespace {

// In the child, after fork: the log as stdout and stderr, the thread counts, then the binary.
[[noreturn]] void exec_child(const std::vector<std::string>& args, const std::string& log,
                             int threads) {
  prctl(PR_SET_PDEATHSIG, SIGTERM);  // the runner died: checkpoint and stop
  const int fd = open(log.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
  if (fd >= 0) {
    dup2(fd, 1);
    dup2(fd, 2);
    close(fd);
  }
  const std::string t = std::to_string(threads);
  setenv("OMP_NUM_THREADS", t.c_str(), 1);
  setenv("OPENBLAS_NUM_THREADS", t.c_str(), 1);
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(argv[0], argv.data());
  std::fprintf(stderr, "ablate: cannot execute %s: %s\n", argv[0], std::strerror(errno));
  _exit(127);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

ChildPool::~ChildPool() {
  signal_all(SIGTERM);
  for (const Child& c : running_) {
    int status = 0;
    while (waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

void ChildPool::start(size_t id, const std::vector<std::string>& args, const std::string& log,
                      int threads) {
  std::ofstream(log, std::ios::app) << "$ " << shell_quote(args) << "\n";
  const pid_t pid = fork();
  if (pid < 0) throw Error("[ablate] fork failed: " + std::string(std::strerror(errno)));
  if (pid == 0) exec_child(args, log, threads);
  running_.push_back({id, pid, std::chrono::steady_clock::now()});
}

std::vector<ChildPool::Exited> ChildPool::reap() {
  std::vector<Exited> exited;
  for (size_t k = 0; k < running_.size();) {
    int status = 0;
    if (waitpid(running_[k].pid, &status, WNOHANG) == 0) {
      ++k;
      continue;
    }
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    exited.push_back({running_[k].id, code, seconds_since(running_[k].start)});
    running_.erase(running_.begin() + long(k));
  }
  return exited;
}

void ChildPool::signal_all(int sig) const {
  for (const Child& c : running_) kill(c.pid, sig);
}

}  // namespace lmlab::train
