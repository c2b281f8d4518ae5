// Fused softmax + cross-entropy: mean over counted tokens of logsumexp(z) - z_y, with its
// backward (softmax(z) - onehot(y)) / n_counted computed from the saved logits and logsumexp.
#include <string>

#include "autograd/kernels/reduce.h"
#include "autograd/kernels/softmax.h"
#include "autograd/ops.h"
#include "autograd/ops/dispatch.h"

namespace lmlab {

namespace {

constexpr const char* kOp = "cross_entropy";

// Checks the targets against the logits; returns how many tokens count (target != ignore_index).
// Reads the targets on the host (a device-to-host copy for CUDA tensors).
int64_t check_targets(const Tensor& logits, const Tensor& targets, int32_t ignore_index) {
  const std::string shapes =
      "logits " + to_string(logits.shape()) + ", targets " + to_string(targets.shape());
  if (targets.dtype() != DType::I32)
    throw Error("[cross_entropy] targets must be int32, got " + to_string(targets.dtype()) + " (" +
                shapes + ")");
  if (logits.dim() < 1)
    throw Error("[cross_entropy] logits need a class dim (..., V), got " + shapes);
  const Shape expected(logits.shape().begin(), logits.shape().end() - 1);
  if (targets.shape() != expected)
    throw Error("[cross_entropy] targets must have the logits shape without its last dim " +
                to_string(expected) + ", got " + shapes);
  if (logits.device() != targets.device())
    throw Error("[cross_entropy] logits are on " + to_string(logits.device()) + ", targets on " +
                to_string(targets.device()) + " (" + shapes + ")");
  const int64_t V = logits.shape().back();
  const std::vector<int32_t> host = targets.to_vector<int32_t>();
  int64_t count = 0;
  for (size_t i = 0; i < host.size(); ++i) {
    const int32_t t = host[i];
    if (t == ignore_index) continue;
    if (t < 0 || t >= V)
      throw Error("[cross_entropy] target " + std::to_string(t) + " at position " +
                  std::to_string(i) + " is out of range for " + std::to_string(V) + " classes (" +
                  shapes + ")");
    ++count;
  }
  return count;
}

// loss_rows and lse (rows) from z (rows, V); then loss = sum(loss_rows) / count, summed in double.
void forward_kernel(const Tensor& z, const Tensor& targets, const Tensor& loss_rows,
                    const Tensor& lse, const Tensor& loss, int64_t count, int32_t ignore) {
  const int64_t rows = loss_rows.numel(), V = z.shape().back();
  dispatch_float(z, kOp, [&]<class T, Device D>(Backend<T, D> be) {
    be.pick(cpu::cross_entropy_forward<T>, cuda::cross_entropy_forward)(
        z.data<T>(), targets.data<int32_t>(), loss_rows.data<T>(), lse.data<T>(), rows, V, ignore);
    be.pick(cpu::sum_dim<T>, cuda::sum_dim)(loss_rows.data<T>(), loss.data<T>(), 1, rows, 1,
                                            1.0 / double(count));
  });
}

// dz = dy / count * (softmax(z) - onehot(targets)) row by row, zero for ignored rows.
Tensor backward_kernel(const Tensor& z, const Tensor& lse, const Tensor& targets, const Tensor& dy,
                       int64_t count, int32_t ignore) {
  Tensor dz = Tensor::empty_like(z);
  const int64_t rows = lse.numel(), V = z.shape().back();
  dispatch_float(z, kOp, [&]<class T, Device D>(Backend<T, D> be) {
    if constexpr (be.cuda)  // dy stays on the device: the kernel forms dy / N itself
      cuda::cross_entropy_backward(z.data<T>(), lse.data<T>(), targets.data<int32_t>(),
                                   dy.data<T>(), count, dz.data<T>(), rows, V, ignore);
    else  // d(mean) / d(loss_r) = dy / N
      cpu::cross_entropy_backward(z.data<T>(), lse.data<T>(), targets.data<int32_t>(),
                                  dy.item() / double(count), dz.data<T>(), rows, V, ignore);
  });
  return dz;
}

}  // namespace

// loss = (1 / N) sum_{r : t_r != ignore_index} (logsumexp(z_r) - z_r[t_r]), N = number of counted
// tokens; logits z (..., V) float32/float64, targets int32 (...) -> a 0-d tensor, shape ().
// Backward: dz_r = dloss / N * (softmax(z_r) - onehot(t_r)), zero for ignored rows.
// Every counted target must lie in [0, V). When every target is ignored (N = 0) the loss is 0 with
// a zero gradient; PyTorch returns NaN there, we choose 0 so a batch of pure padding keeps a
// training loop finite. Reference: PyTorch F.cross_entropy(reduction="mean", ignore_index).
Tensor cross_entropy(const Tensor& logits, const Tensor& targets_in, int32_t ignore_index) {
  check_float(logits, kOp, "logits");
  check_defined(targets_in, kOp, "targets");
  const int64_t count = check_targets(logits, targets_in, ignore_index);
  const int64_t rows = targets_in.numel();
  Tensor z = logits.contiguous();  // records a copy node if logits was a strided view
  if (count == 0) {
    Tensor loss = Tensor::zeros({}, z.dtype(), z.device());
    const Shape shape = z.shape();
    const DType dtype = z.dtype();
    const Device device = z.device();
    tape::record(kOp, {z}, loss, [shape, dtype, device](const Tensor&) {
      return Grads{Tensor::zeros(shape, dtype, device)};
    });
    return loss;
  }
  Tensor targets = targets_in.contiguous();
  Tensor loss_rows = Tensor::empty({rows}, z.dtype(), z.device());
  Tensor lse = Tensor::empty({rows}, z.dtype(), z.device());
  Tensor loss = Tensor::empty({}, z.dtype(), z.device());
  forward_kernel(z, targets, loss_rows, lse, loss, count, ignore_index);
  if (tape::needs_grad({z})) {
    Saved sz(z), slse(lse), st(targets);
    tape::record(kOp, {z}, loss, [sz, slse, st, count, ignore_index](const Tensor& dy) {
      return Grads{
          backward_kernel(sz.get(kOp), slse.get(kOp), st.get(kOp), dy, count, ignore_index)};
    });
  }
  return loss;
}

}  // namespace lmlab
