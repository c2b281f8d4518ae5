// LrSchedule: validation and the warmup + cosine / constant rate at an iteration.
#include "optim/schedule.h"

#include <cmath>
#include <numbers>
#include <sstream>

#include "autograd/error.h"

namespace lmlab::optim {

static std::string num(double x) {
  std::ostringstream os;
  os << x;
  return os.str();
}

static void require(bool ok, const char* what, const std::string& value) {
  if (!ok) throw Error(std::string("[lr_schedule] ") + what + ", got " + value);
}

void LrSchedule::validate() const {
  require(std::isfinite(lr) && lr > 0, "lr must be finite and > 0", num(lr));
  require(min_lr >= 0 && min_lr <= lr, "min_lr must be in [0, lr]",
          num(min_lr) + " with lr " + num(lr));
  require(warmup_iters >= 0, "warmup_iters must be >= 0", std::to_string(warmup_iters));
  require(decay_iters >= warmup_iters, "decay_iters must be >= warmup_iters",
          std::to_string(decay_iters) + " with warmup_iters " + std::to_string(warmup_iters));
}

double LrSchedule::at(int64_t it) const {
  validate();
  require(it >= 0, "iteration must be >= 0", std::to_string(it));
  if (it < warmup_iters) return lr * double(it + 1) / double(warmup_iters);
  if (kind == Constant) return lr;
  if (it >= decay_iters) return min_lr;
  const double ratio = double(it - warmup_iters) / double(decay_iters - warmup_iters);
  const double coeff = 0.5 * (1.0 + std::cos(std::numbers::pi * ratio));  // 1 -> 0
  return min_lr + coeff * (lr - min_lr);
}

LrSchedule::Kind schedule_kind_from_string(const std::string& name) {
  if (name == "cosine") return LrSchedule::Cosine;
  if (name == "constant") return LrSchedule::Constant;
  throw Error("[lr_schedule] unknown schedule '" + name + "' (expected cosine or constant)");
}

std::string to_string(LrSchedule::Kind kind) {
  return kind == LrSchedule::Cosine ? "cosine" : "constant";
}

}  // namespace lmlab::optim
