// SIGINT/SIGTERM recorded for the life of a scope (train/signal_scope.h).
#include "train/common/signal_scope.h"

#include <atomic>

namespace lmlab::train {

namespace {
std::atomic<int> g_received{0};
extern "C" void on_stop_signal(int sig) { g_received = sig; }
}  // namespace

StopSignalScope::StopSignalScope() {
  g_received = 0;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int_);
  sigaction(SIGTERM, &sa, &old_term_);
}

StopSignalScope::~StopSignalScope() {
  sigaction(SIGINT, &old_int_, nullptr);
  sigaction(SIGTERM, &old_term_, nullptr);
}

int StopSignalScope::received() { return g_received; }

}  // namespace lmlab::train
