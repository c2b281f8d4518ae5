#include "autograd/autocast.h"

#include <string>

#include "autograd/error.h"

namespace lmlab {

namespace {
thread_local DType autocast_state = DType::F32;
}

DType autocast_dtype() { return autocast_state; }

AutocastGuard::AutocastGuard(DType compute) : prev_(autocast_state) {
  if (compute != DType::F32 && compute != DType::BF16)
    throw Error("[autocast] computes in float32 (off) or bfloat16, not " + to_string(compute));
  autocast_state = compute;
}

AutocastGuard::~AutocastGuard() { autocast_state = prev_; }

}  // namespace lmlab
