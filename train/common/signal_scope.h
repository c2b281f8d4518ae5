// The one SIGINT/SIGTERM scope of lmlab (a training run, an ablation): while a StopSignalScope is
// alive, those signals are recorded instead of ending the process, so the caller can finish a step
// and checkpoint (the trainer) or let its children checkpoint (ablate); the previous handlers come
// back when the scope ends, also when it ends by an exception.
#pragma once
#include <csignal>

namespace lmlab::train {

class StopSignalScope {
 public:
  StopSignalScope();  // clears the recorded signal
  ~StopSignalScope();
  StopSignalScope(const StopSignalScope&) = delete;
  StopSignalScope& operator=(const StopSignalScope&) = delete;

  // The last SIGINT or SIGTERM received in the latest scope (0: none); still readable after it
  // ended.
  static int received();

 private:
  struct sigaction old_int_ {
  }, old_term_{};
  stack_t old_stack_{};
  bool has_old_stack_ = false;
};

}  // namespace lmlab::train
