// Embedding lookup: gathers rows of a (V, C) table by int32 token ids; the backward scatter-adds
// the upstream rows into a zero (V, C) gradient (deterministic with repeated ids).
#include <string>

#include "autograd/kernels/index.h"
#include "autograd/ops.h"
#include "autograd/ops/dispatch.h"

namespace lmlab {

// Throws on the first id outside [0, V), naming its row-major position in ids.
static void check_ids_in_range(const int32_t* ids, int64_t N, int64_t V) {
  for (int64_t n = 0; n < N; ++n) {
    if (ids[n] < 0 || ids[n] >= V)
      throw Error("[embedding] token id " + std::to_string(ids[n]) + " at position " +
                  std::to_string(n) + " is out of range for a vocabulary of " + std::to_string(V));
  }
}

// dweight = zeros(V, C); dweight[ids[n], :] += dout[n, :] for every n (sequential over n).
static Tensor embedding_backward(const Tensor& dout_in, const Tensor& ids, int64_t V, int64_t C) {
  Tensor dout = dout_in.contiguous();
  Tensor dweight = Tensor::zeros({V, C}, dout.dtype(), dout.device());
  const int64_t N = ids.numel();
  if (N == 0 || C == 0) return dweight;
  dispatch_float(dout, "embedding", [&]<class T, Device D>(Backend<T, D> be) {
    be.pick(cpu::embedding_backward<T>, cuda::embedding_backward)(
        dout.data<T>(), ids.data<int32_t>(), dweight.data<T>(), N, C);
  });
  return dweight;
}

Tensor embedding(const Tensor& weight_in, const Tensor& ids_in) {
  check_float(weight_in, "embedding", "weight");
  check_defined(ids_in, "embedding", "ids");
  if (weight_in.dim() != 2)
    throw Error("[embedding] weight must be 2-D (V, C), got shape " + to_string(weight_in.shape()));
  if (ids_in.dtype() != DType::I32)
    throw Error("[embedding] ids must be int32, got " + to_string(ids_in.dtype()) + " of shape " +
                to_string(ids_in.shape()));
  if (ids_in.device() != weight_in.device())
    throw Error("[embedding] weight is on " + to_string(weight_in.device()) + " but ids are on " +
                to_string(ids_in.device()));
  const int64_t V = weight_in.size(0), C = weight_in.size(1);
  Tensor weight = weight_in.contiguous();  // records a copy node when weight is a strided view
  Tensor ids = ids_in.contiguous();
  const int64_t N = ids.numel();
  if (ids.device() == Device::CPU) {
    check_ids_in_range(ids.data<int32_t>(), N, V);
  } else {
    const std::vector<int32_t> host = ids.to_vector<int32_t>();
    check_ids_in_range(host.data(), N, V);
  }

  Shape out_shape = ids.shape();
  out_shape.push_back(C);
  Tensor out = Tensor::empty(out_shape, weight.dtype(), weight.device());
  if (out.numel() > 0)
    dispatch_float(weight, "embedding", [&]<class T, Device D>(Backend<T, D> be) {
      be.pick(cpu::embedding_forward<T>, cuda::embedding_forward)(
          weight.data<T>(), ids.data<int32_t>(), out.data<T>(), N, C);
    });
  if (tape::needs_grad({weight})) {
    Saved sids(ids);
    tape::record("embedding", {weight}, out, [sids, V, C](const Tensor& dout) {
      return Grads{embedding_backward(dout, sids.get("embedding"), V, C)};
    });
  }
  return out;
}

}  // namespace lmlab
