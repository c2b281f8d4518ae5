// Causal scaled-dot-product attention with grouped KV heads (MHA / GQA / MQA): the fused op (one
// kernel each way, one tape node) and its composed twin built from matmul, masked_fill, softmax.
// docs/attention.md derives the backward and states the memory it saves.
#include "autograd/kernels/attention.h"

#include <cmath>
#include <limits>
#include <string>

#include "autograd/autocast.h"
#include "autograd/kernels/cuda_runtime.h"
#include "autograd/ops.h"
#include "autograd/ops/dispatch.h"

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

// The GPU runs the op as the flash kernels (kernels/attention.h: the log-sum-exp saved instead of
// att, heads read through their strides) when cuda::set_flash_attention turned them on, they serve
// the head size and the inputs are bfloat16 or TF32 is on; else as cuBLAS GEMMs on contiguous
// heads (float32).
bool flash_path(const Tensor& q, const Dims& d) {
  return q.device() == Device::CUDA && cuda::flash_attention_enabled() &&
         (cuda::tf32_enabled() || q.dtype() == DType::BF16) &&
         cuda::flash_attention_supported(d.HS);
}

// The CPU and flash kernels take a tensor as it is when its head-size dim is contiguous and
// positions are at least a row apart (nn's transposed (B, T, heads, HS) views, the KV cache's
// narrowed buffers); anything else is copied first. The cuBLAS path takes contiguous (B, heads, T,
// HS).
Tensor kernel_layout(const Tensor& t, bool strided = false) {
  if (t.device() != Device::CPU && !strided) return t.contiguous();
  const Strides& s = t.strides();
  const bool ok = (s[3] == 1 || t.size(3) <= 1) && s[2] >= t.size(3) && s[0] >= 0 && s[1] >= 0;
  return ok ? t : t.contiguous();
}

cpu::HeadStrides head_strides(const Tensor& t) {
  return {t.strides()[0], t.strides()[1], t.strides()[2]};
}

// A (B, H, T, HS) output laid out like `like`. CPU and flash: uninitialised (the kernels write
// every element), as (B, T, H, HS) memory seen through a transposed view when `like` is such a
// view (so the caller's transpose back is free), else contiguous. The cuBLAS path: contiguous
// zeros.
Tensor empty_in_layout_of(const Tensor& like, const Shape& shape, bool strided = false) {
  const Device dev = like.device();
  if (dev != Device::CPU && !strided) return Tensor::zeros(shape, like.dtype(), dev);
  const Strides& s = like.strides();
  if (s[1] < s[2] && shape[1] > 1 && shape[2] > 1)
    return transpose(Tensor::empty({shape[0], shape[2], shape[1], shape[3]}, like.dtype(), dev), 1,
                     2);
  return Tensor::empty(shape, like.dtype(), dev);
}

void forward_kernel(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, Tensor& att,
                    const Dims& d) {
  dispatch_float(q, "causal_attention", [&]<class T, Device D>(Backend<T, D> be) {
    if constexpr (be.cuda)  // contiguous operands
      cuda::attention_forward(q.data<T>(), k.data<T>(), v.data<T>(), out.data<T>(), att.data<T>(),
                              d.B, d.NH, d.KVH, d.Tq, d.Tk, d.HS);
    else  // operands in place, through their head strides
      cpu::attention_forward(q.data<T>(), head_strides(q), k.data<T>(), head_strides(k),
                             v.data<T>(), head_strides(v), out.data<T>(), head_strides(out),
                             att.data<T>(), d.B, d.NH, d.KVH, d.Tq, d.Tk, d.HS);
  });
}

Grads backward_kernel(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& att,
                      const Tensor& dout_in, const Dims& d) {
  if (q.numel() == 0 || k.numel() == 0)
    return Grads{Tensor::zeros_like(q), Tensor::zeros_like(k), Tensor::zeros_like(v)};
  const Tensor dout = kernel_layout(dout_in);
  Tensor dq = empty_in_layout_of(q, q.shape());
  Tensor dk = empty_in_layout_of(k, k.shape());
  Tensor dv = empty_in_layout_of(k, v.shape());  // dk and dv share one layout
  Tensor dscores = Tensor::empty_like(att);
  dispatch_float(q, "causal_attention", [&]<class T, Device D>(Backend<T, D> be) {
    if constexpr (be.cuda)
      cuda::attention_backward(q.data<T>(), k.data<T>(), v.data<T>(), att.data<T>(), dout.data<T>(),
                               dq.data<T>(), dk.data<T>(), dv.data<T>(), dscores.data<T>(), d.B,
                               d.NH, d.KVH, d.Tq, d.Tk, d.HS);
    else
      cpu::attention_backward(q.data<T>(), head_strides(q), k.data<T>(), head_strides(k),
                              v.data<T>(), head_strides(v), att.data<T>(), dout.data<T>(),
                              head_strides(dout), dq.data<T>(), head_strides(dq), dk.data<T>(),
                              dv.data<T>(), head_strides(dk), dscores.data<T>(), d.B, d.NH, d.KVH,
                              d.Tq, d.Tk, d.HS);
  });
  return Grads{dq, dk, dv};
}

// dq, dk, dv of the flash path from the forward's out and lse (no att).
Grads flash_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                     const Tensor& lse, const Tensor& dout_in, const Dims& d) {
  const Tensor dout = kernel_layout(dout_in, true);
  Tensor dq = empty_in_layout_of(q, q.shape(), true);
  Tensor dk = empty_in_layout_of(k, k.shape(), true);
  Tensor dv = empty_in_layout_of(k, v.shape(), true);  // dk and dv share one layout
  auto run = [&]<class T>(T) {
    cuda::flash_attention_backward(q.data<T>(), head_strides(q), k.data<T>(), head_strides(k),
                                   v.data<T>(), head_strides(v), out.data<T>(), head_strides(out),
                                   lse.data<float>(), dout.data<T>(), head_strides(dout),
                                   dq.data<T>(), head_strides(dq), dk.data<T>(), dv.data<T>(),
                                   head_strides(dk), d.B, d.NH, d.KVH, d.Tq, d.Tk, d.HS);
  };
  if (q.dtype() == DType::BF16)
    run(bf16());
  else
    run(float());
  return Grads{dq, dk, dv};
}

// The flash path: one forward kernel saving lse (B, NH, Tq), one tape node whose backward
// recomputes the probabilities from it.
Tensor flash_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const Dims& d) {
  Tensor q = kernel_layout(q_in, true), k = kernel_layout(k_in, true),
         v = kernel_layout(v_in, true);
  Tensor out = empty_in_layout_of(q, q.shape(), true);
  Tensor lse = Tensor::empty({d.B, d.NH, d.Tq}, DType::F32, Device::CUDA);
  auto run = [&]<class T>(T) {
    cuda::flash_attention_forward(q.data<T>(), head_strides(q), k.data<T>(), head_strides(k),
                                  v.data<T>(), head_strides(v), out.data<T>(), head_strides(out),
                                  lse.data<float>(), d.B, d.NH, d.KVH, d.Tq, d.Tk, d.HS);
  };
  if (q.dtype() == DType::BF16)
    run(bf16());
  else
    run(float());
  if (tape::needs_grad({q, k, v})) {
    Saved sq(q), sk(k), sv(v), so(out), slse(lse);
    tape::record("causal_attention", {q, k, v}, out, [sq, sk, sv, so, slse, d](const Tensor& g) {
      const char* name = "causal_attention";
      return flash_backward(sq.get(name), sk.get(name), sv.get(name), so.get(name), slse.get(name),
                            g, d);
    });
  }
  return out;
}

// bfloat16 without a bf16 kernel (the CPU; the GPU off the flash path): the float32 op between
// casts on the tape, so inputs, output and gradients are rounded where a bf16 kernel rounds them.
Tensor widened_attention(const Tensor& q, const Tensor& k, const Tensor& v) {
  AutocastGuard off(DType::F32);  // the float32 op inside must not cast back to bf16
  const DType f = DType::F32;
  return to_dtype(causal_attention(to_dtype(q, f), to_dtype(k, f), to_dtype(v, f)), DType::BF16);
}

}  // namespace

// Fused: one forward kernel saving att = softmax probabilities (B, NH, Tq, Tk), one tape node
// whose backward returns {dq, dk, dv} (docs/attention.md); on the GPU with TF32 or bf16, the
// flash path. Under autocast (autocast.h), float32 inputs run as bfloat16 between casts.
Tensor causal_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in) {
  const Dims d = check_attention(q_in, k_in, v_in, "causal_attention");
  if (autocast_bf16() && q_in.dtype() == DType::F32) {
    const DType h = DType::BF16;
    return to_dtype(causal_attention(to_dtype(q_in, h), to_dtype(k_in, h), to_dtype(v_in, h)),
                    DType::F32);
  }
  if (flash_path(q_in, d) && q_in.numel() > 0 && k_in.numel() > 0)
    return flash_attention(q_in, k_in, v_in, d);
  if (q_in.dtype() == DType::BF16) return widened_attention(q_in, k_in, v_in);
  Tensor q = kernel_layout(q_in), k = kernel_layout(k_in), v = kernel_layout(v_in);
  const bool work = q.numel() > 0 && k.numel() > 0;
  Tensor out = work ? empty_in_layout_of(q, q.shape()) : Tensor::zeros_like(q);
  const Shape att_shape{d.B, d.NH, d.Tq, d.Tk};  // CPU kernels write every element of att
  Tensor att = work && q.device() == Device::CPU ? Tensor::empty(att_shape, q.dtype())
                                                 : Tensor::zeros(att_shape, q.dtype(), q.device());
  if (work) forward_kernel(q, k, v, out, att, d);
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
