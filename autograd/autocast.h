// Mixed precision, PyTorch's autocast: while an AutocastGuard(DType::BF16) is alive on a thread,
// matmul and causal_attention given float32 inputs cast them to bfloat16 (to_dtype: a cast node on
// the tape, whose backward casts the gradient back) and run in bfloat16 with float32 accumulation,
// returning float32 (matmul: the float32 sums themselves; attention: its bf16 output cast back).
// Every other op keeps float32, so norms, softmax and the loss compute in float32, and parameters
// and optimizer state stay float32 (master weights): the weight's cast node hands its bf16 gradient
// back as float32 to the parameter's slot. Any layer built from these ops, a user's own included,
// gets mixed precision without a change. What the bf16 ops save for backward is their bf16 inputs
// (half the bytes).
//
//   { AutocastGuard autocast(DType::BF16); loss = model.loss(x, y); }   // forward in bf16
//   tape::backward(loss);   // runs with autocast off (backward rules keep the dtypes they saw)
#pragma once
#include "autograd/types.h"

namespace lmlab {

// The compute dtype of the autocast scope on this thread: BF16 inside one, F32 (off) otherwise.
DType autocast_dtype();
// True when an op on float32 inputs should run in bfloat16 now.
inline bool autocast_bf16() { return autocast_dtype() == DType::BF16; }

// Sets this thread's autocast dtype (F32 or BF16) while alive; restores the previous one after.
class AutocastGuard {
 public:
  explicit AutocastGuard(DType compute);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  DType prev_;
};

}  // namespace lmlab
