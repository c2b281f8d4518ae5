// Causal scaled-dot-product attention with grouped KV heads (MHA / GQA / MQA): the fused op (one
// kernel each way, one tape node) and its composed twin built from matmul, masked_fill, softmax.
// docs/attention.md derives the backward and states the memory it saves.
#include "autograd/kernels/attention.h"

#include <cmath>
#include <limits>
#include <string>

#include "autograd/ops.h"

namespace lmlab {

namespace {

struct Dims {
  int64_t B, NH, KVH, Tq, Tk, HS;
};

// Checks q (B, NH, Tq, HS), k = v (B, KVH, Tk, HS), Tq <= Tk, NH % KVH == 0; every message names
// all three shapes.
Dims check_attention(const Tensor& q, const Tensor& k, const Tensor& v, const char* op) {
  check_defined(q, op, "q");
  check_defined(k, op, "k");
  check_defined(v, op, "v");
  check_float(q, op, "q");
  check_float(k, op, "k");
  check_float(v, op, "v");
  check_same_dtype(q, k, op);
  check_same_dtype(q, v, op);
  check_same_device(q, k, op);
  check_same_device(q, v, op);
  check_device_dtype(q, op);
  const std::string shapes = ": q is " + to_string(q.shape()) + ", k is " + to_string(k.shape()) +
                             ", v is " + to_string(v.shape());
  auto fail = [&](const std::string& what) {
    throw Error("[" + std::string(op) + "] " + what + shapes);
  };
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4)
    fail("q, k and v must be 4-D (B, heads, T, head size)");
  if (k.shape() != v.shape()) fail("k and v shapes differ");
  const Dims d{q.size(0), q.size(1), k.size(1), q.size(2), k.size(2), q.size(3)};
  if (k.size(0) != d.B)
    fail("batch sizes differ (" + std::to_string(d.B) + " vs " + std::to_string(k.size(0)) + ")");
  if (k.size(3) != d.HS)
    fail("head sizes differ (" + std::to_string(d.HS) + " vs " + std::to_string(k.size(3)) + ")");
  if (d.KVH == 0 || d.NH % d.KVH != 0)
    fail("n_head " + std::to_string(d.NH) + " is not divisible by n_kv_head " +
         std::to_string(d.KVH));
  if (d.Tq > d.Tk)
    fail("query length " + std::to_string(d.Tq) + " exceeds key length " + std::to_string(d.Tk));
  return d;
}

void forward_kernel(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, Tensor& att,
                    const Dims& d) {
  switch (q.device()) {
    case Device::CPU:
      if (q.dtype() == DType::F32)
        cpu::attention_forward(q.data<float>(), k.data<float>(), v.data<float>(), out.data<float>(),
                               att.data<float>(), d.B, d.NH, d.KVH, d.Tq, d.Tk, d.HS);
      else
        cpu::attention_forward(q.data<double>(), k.data<double>(), v.data<double>(),
                               out.data<double>(), att.data<double>(), d.B, d.NH, d.KVH, d.Tq, d.Tk,
                               d.HS);
      break;
    case Device::CUDA:
      cuda::attention_forward(q.data<float>(), k.data<float>(), v.data<float>(), out.data<float>(),
                              att.data<float>(), d.B, d.NH, d.KVH, d.Tq, d.Tk, d.HS);
      break;
  }
}

Grads backward_kernel(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& att,
                      const Tensor& dout_in, const Dims& d) {
  Tensor dout = dout_in.contiguous();
  Tensor dq = Tensor::zeros_like(q), dk = Tensor::zeros_like(k), dv = Tensor::zeros_like(v);
  if (q.numel() == 0 || k.numel() == 0) return Grads{dq, dk, dv};
  Tensor dscores = Tensor::empty_like(att);
  switch (q.device()) {
    case Device::CPU:
      if (q.dtype() == DType::F32)
        cpu::attention_backward(q.data<float>(), k.data<float>(), v.data<float>(),
                                att.data<float>(), dout.data<float>(), dq.data<float>(),
                                dk.data<float>(), dv.data<float>(), dscores.data<float>(), d.B,
                                d.NH, d.KVH, d.Tq, d.Tk, d.HS);
      else
        cpu::attention_backward(q.data<double>(), k.data<double>(), v.data<double>(),
                                att.data<double>(), dout.data<double>(), dq.data<double>(),
                                dk.data<double>(), dv.data<double>(), dscores.data<double>(), d.B,
                                d.NH, d.KVH, d.Tq, d.Tk, d.HS);
      break;
    case Device::CUDA:
      cuda::attention_backward(q.data<float>(), k.data<float>(), v.data<float>(), att.data<float>(),
                               dout.data<float>(), dq.data<float>(), dk.data<float>(),
                               dv.data<float>(), dscores.data<float>(), d.B, d.NH, d.KVH, d.Tq,
                               d.Tk, d.HS);
      break;
  }
  return Grads{dq, dk, dv};
}

}  // namespace

// Fused: one forward kernel saving att = softmax probabilities (B, NH, Tq, Tk), one tape node
// whose backward returns {dq, dk, dv} (docs/attention.md).
Tensor causal_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in) {
  const Dims d = check_attention(q_in, k_in, v_in, "causal_attention");
  Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  Tensor out = Tensor::zeros_like(q);
  Tensor att = Tensor::zeros({d.B, d.NH, d.Tq, d.Tk}, q.dtype(), q.device());
  if (q.numel() > 0 && k.numel() > 0) forward_kernel(q, k, v, out, att, d);
  if (tape::needs_grad({q, k, v})) {
    Saved sq(q), sk(k), sv(v), satt(att);
    tape::record("causal_attention", {q, k, v}, out, [sq, sk, sv, satt, d](const Tensor& dout) {
      const char* name = "causal_attention";
      return backward_kernel(sq.get(name), sk.get(name), sv.get(name), satt.get(name), dout, d);
    });
  }
  return out;
}

// Composed: q viewed as (B, KVH, G, Tq, HS) against k, v unsqueezed to (B, KVH, 1, Tk, HS), so
// matmul broadcasts each kv head over its G query heads (and sums their gradients) without copying.
Tensor causal_attention_composed(const Tensor& q, const Tensor& k, const Tensor& v) {
  const Dims d = check_attention(q, k, v, "causal_attention_composed");
  const int64_t G = d.NH / d.KVH;
  Tensor qg = reshape(q, {d.B, d.KVH, G, d.Tq, d.HS});
  Tensor kt = transpose(unsqueeze(k, 2), -2, -1);                      // (B, KVH, 1, HS, Tk)
  Tensor scores = mul(matmul(qg, kt), 1.0 / std::sqrt(double(d.HS)));  // (B, KVH, G, Tq, Tk)
  // Rows Tk - Tq .. Tk - 1 of the (Tk, Tk) mask: query i sits at position Tk - Tq + i.
  Tensor mask = narrow(causal_mask(d.Tk, q.device()), 0, d.Tk - d.Tq, d.Tq);
  Tensor att = softmax(masked_fill(scores, mask, -std::numeric_limits<double>::infinity()), -1);
  Tensor out = matmul(att, unsqueeze(v, 2));  // (B, KVH, G, Tq, HS)
  return reshape(out, {d.B, d.NH, d.Tq, d.HS});
}

}  // namespace lmlab
