// Learning-rate schedules: linear warmup, then cosine decay to min_lr (nanoGPT's get_lr) or a
// constant rate.
#pragma once
#include <cstdint>
#include <string>

namespace lmlab::optim {

struct LrSchedule {
  enum Kind { Cosine, Constant };
  Kind kind = Cosine;
  double lr = 1e-3;          // peak rate, > 0
  double min_lr = 1e-4;      // floor of the cosine, in [0, lr]
  int64_t warmup_iters = 0;  // >= 0
  int64_t decay_iters = 0;   // >= warmup_iters; the iteration at which the cosine reaches min_lr

  // The rate at iteration it >= 0 (validates first):
  //   it < warmup_iters:  lr * (it + 1) / warmup_iters                      (both kinds)
  //   Constant:           lr
  //   Cosine, it >= decay_iters: min_lr
  //   Cosine, otherwise:  ratio = (it - warmup) / (decay_iters - warmup),
  //                       min_lr + 0.5 (1 + cos(pi ratio)) (lr - min_lr)
  double at(int64_t it) const;
  // Throws "[lr_schedule] <field> ..., got <value>" for an invalid field.
  void validate() const;
};

// "cosine" / "constant" (for configs); throws "[lr_schedule] unknown schedule '...'".
LrSchedule::Kind schedule_kind_from_string(const std::string& name);
std::string to_string(LrSchedule::Kind kind);

}  // namespace lmlab::optim
