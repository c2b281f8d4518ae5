// SIGINT/SIGTERM recorded for the life of a scope (train/signal_scope.h).
#include "train/common/signal_scope.h"

#include <atomic>
#include <vector>

namespace lmlab::train {

namespace {
std::atomic<int> g_received{0};
extern "C" void on_stop_signal(int sig) { g_received = sig; }

// The handler runs on a stack of its own (SA_ONSTACK), never on the interrupted code's. A SIGINT
// during training corrupted the heap inside oneDNN's sgemm in about 1 run of 100 on a loaded
// machine (none in 400 with OpenBLAS GEMMs, none in ~400 with this stack); the suspect is the
// handler's frame landing on data that JIT code keeps below its stack pointer. Only the thread that
// made the scope has this stack: a signal the kernel hands to another thread (an OpenMP worker)
// still runs on that thread's own stack.
std::vector<char>& signal_stack() {
  static std::vector<char> stack(size_t(1) << 16);
  return stack;
}
}  // namespace

StopSignalScope::StopSignalScope() {
  g_received = 0;
  stack_t ss{};
  ss.ss_sp = signal_stack().data();
  ss.ss_size = signal_stack().size();
  has_old_stack_ = sigaltstack(&ss, &old_stack_) == 0;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sa.sa_flags = SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int_);
  sigaction(SIGTERM, &sa, &old_term_);
}

StopSignalScope::~StopSignalScope() {
  sigaction(SIGINT, &old_int_, nullptr);
  sigaction(SIGTERM, &old_term_, nullptr);
  if (has_old_stack_) sigaltstack(&old_stack_, nullptr);
}

int StopSignalScope::received() { return g_received; }

}  // namespace lmlab::train
