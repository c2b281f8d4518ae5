// Inverted dropout (Srivastava et al. 2014; PyTorch's convention): the mask is drawn from a
// counter-based generator, so a given (seed, offset) gives the same mask on any thread count.
#include <string>

#include "autograd/kernels/index.h"
#include "autograd/ops.h"

namespace lmlab {

// mask[i] = [u_i >= p] / (1 - p) with u_i = uniform(seed, offset + i), in x's dtype and device.
static Tensor dropout_mask(const Tensor& x, double p, Generator& gen) {
  Tensor mask = Tensor::empty(x.shape(), x.dtype(), x.device());
  const int64_t n = mask.numel();
  const uint64_t offset = gen.advance(uint64_t(n));
  if (n == 0) return mask;
  switch (x.device()) {
    case Device::CPU:
      if (x.dtype() == DType::F32)
        cpu::dropout_mask(mask.data<float>(), n, p, gen.seed(), offset);
      else
        cpu::dropout_mask(mask.data<double>(), n, p, gen.seed(), offset);
      break;
    case Device::CUDA: cuda::dropout_mask(mask.data<float>(), n, p, gen.seed(), offset); break;
  }
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
