// Inverted dropout (Srivastava et al. 2014; PyTorch's convention): the mask is drawn from a
// counter-based generator, so a given (seed, offset) gives the same mask on any thread count.
#include <string>

#include "autograd/kernels/index.h"
#include "autograd/ops.h"
#include "autograd/ops/dispatch.h"

namespace lmlab {

// mask[i] = [u_i >= p] / (1 - p) with u_i = uniform(seed, offset + i), in x's dtype and device.
static Tensor dropout_mask(const Tensor& x, double p, Generator& gen) {
  Tensor mask = Tensor::empty(x.shape(), x.dtype(), x.device());
  const int64_t n = mask.numel();
  const uint64_t offset = gen.advance(uint64_t(n));
  if (n == 0) return mask;
  dispatch_float(mask, "dropout", [&]<class T, Device D>(Backend<T, D> be) {
    be.pick(cpu::dropout_mask<T>, cuda::dropout_mask)(mask.data<T>(), n, p, gen.seed(), offset);
  });
  return mask;
}

// y = x * mask; backward dx = dy * mask (the mask holds 0 or 1 / (1 - p)).
Tensor dropout(const Tensor& x, double p, Generator& gen, bool training) {
  check_float(x, "dropout", "x");
  if (!(p >= 0 && p < 1))
    throw Error("[dropout] p must be in [0, 1), got p = " + std::to_string(p) + " for x of shape " +
                to_string(x.shape()));
  if (!training || p == 0) return x;
  const Tensor mask = dropout_mask(x, p, gen);
  Tensor y;
  {
    NoGradGuard guard;  // one "dropout" node below, not a "mul" node
    y = mul(x, mask);
  }
  tape::record("dropout", {x}, y, [mask](const Tensor& dy) { return Grads{mul(dy, mask)}; });
  return y;
}

}  // namespace lmlab
