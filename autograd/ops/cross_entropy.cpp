// Fused softmax + cross-entropy: mean over counted tokens of logsumexp(z) - z_y, with its
// backward (softmax(z) - onehot(y)) / n_counted computed from the saved logits and logsumexp.
#include <algorithm>
#include <string>

#include "autograd/autocast.h"
#include "autograd/kernels/copy.h"
#include "autograd/kernels/matmul.h"
#include "autograd/kernels/reduce.h"
#include "autograd/kernels/softmax.h"
#include "autograd/ops.h"
#include "autograd/ops/dispatch.h"

namespace lmlab {

namespace {

constexpr const char* kOp = "cross_entropy";
constexpr const char* kLinearOp = "linear_cross_entropy";
// linear_cross_entropy's default chunk: about 2^24 logits (64 MB in float32) at a time.
constexpr int64_t kChunkLogits = int64_t{1} << 24;

// Checks the targets against logits of shape `logits` on `device`; returns how many tokens count
// (target != ignore_index). Reads the targets on the host (a device-to-host copy for CUDA tensors).
int64_t check_targets(const Shape& logits, Device device, const Tensor& targets,
                      int32_t ignore_index, const std::string& what) {
  const std::string shapes = what + ", targets " + to_string(targets.shape());
  if (targets.dtype() != DType::I32)
    throw Error("[cross_entropy] targets must be int32, got " + to_string(targets.dtype()) + " (" +
                shapes + ")");
  if (logits.empty())
    throw Error("[cross_entropy] logits need a class dim (..., V), got " + shapes);
  const Shape expected(logits.begin(), logits.end() - 1);
  if (targets.shape() != expected)
    throw Error("[cross_entropy] targets must have the logits shape without its last dim " +
                to_string(expected) + ", got " + shapes);
  if (device != targets.device())
    throw Error("[cross_entropy] logits are on " + to_string(device) + ", targets on " +
                to_string(targets.device()) + " (" + shapes + ")");
  const int64_t V = logits.back();
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

// loss = sum(loss_rows) / count, summed in double (the mean over the rows that count).
void mean_of_rows(const Tensor& loss_rows, const Tensor& loss, int64_t count, const char* op) {
  dispatch_float(loss, op, [&]<class T, Device D>(Backend<T, D> be) {
    be.pick(cpu::sum_dim<T>, cuda::sum_dim)(loss_rows.data<T>(), loss.data<T>(), 1,
                                            loss_rows.numel(), 1, 1.0 / double(count));
  });
}

// loss_rows and lse (rows) from z (rows, V); then loss = their mean over `count` rows.
void forward_kernel(const Tensor& z, const Tensor& targets, const Tensor& loss_rows,
                    const Tensor& lse, const Tensor& loss, int64_t count, int32_t ignore) {
  const int64_t rows = loss_rows.numel(), V = z.shape().back();
  dispatch_float(z, kOp, [&]<class T, Device D>(Backend<T, D> be) {
    be.pick(cpu::cross_entropy_forward<T>, cuda::cross_entropy_forward)(
        z.data<T>(), targets.data<int32_t>(), loss_rows.data<T>(), lse.data<T>(), rows, V, ignore);
  });
  mean_of_rows(loss_rows, loss, count, kOp);
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
  const int64_t count = check_targets(logits.shape(), logits.device(), targets_in, ignore_index,
                                      "logits " + to_string(logits.shape()));
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

namespace {

// linear_cross_entropy's tensors: inputs (contiguous), per-row losses, and the gradients of the
// mean loss (as if dy = 1; undefined when no gradient is needed), plus the chunk's scratch.
// Under autocast (bf16) the GEMMs read hr, wr, the bf16 roundings of h and w (bf16 tensors on
// CUDA; float32 tensors holding the bf16 values on the CPU, its emulation), write float32 logits
// and gradients, and read dz rounded to bf16 (dzb); the loss and softmax stay float32.
struct LinearCe {
  Tensor h, w, targets;    // (N, C), (V, C), (N)
  Tensor hr, wr;           // what the GEMMs read: h and w, or their bf16 roundings
  bool bf16 = false;       // autocast: bf16 GEMM operands, fp32 results
  Tensor loss_rows;        // (N)
  Tensor dh, dw;           // (N, C), (V, C)
  Tensor z, lse, dz, one;  // (chunk, V), (chunk), (chunk, V), 1 on the device (CUDA's dy)
  Tensor dzb;              // (chunk, V) bf16: dz rounded, under autocast
  int64_t count = 0;
  int32_t ignore = -100;
};

// x rounded to bf16, as the GEMMs read it: a bf16 tensor on CUDA, its float32 widening on the CPU
// (which has no bf16 GEMM). Not recorded: the op's node differentiates h and w themselves.
Tensor bf16_operand(const Tensor& x) {
  NoGradGuard no_grad;
  const Tensor h = to_dtype(x, DType::BF16);
  return x.device() == Device::CUDA ? h : to_dtype(h, DType::F32);
}

// dst = bf16(src), n elements, on the backend's device.
template <class T, Device D>
void cpu_or_cuda_convert(Backend<T, D> be, const T* src, bf16* dst, int64_t n) {
  if constexpr (be.cuda)
    cuda::convert(src, dst, n);
  else
    cpu::convert(src, dst, n);
}

// z = hr wr^T for rows [r0, r0 + n): float32 logits from float32 or bf16 operands.
template <class T, Device D>
void logits_gemm(Backend<T, D> be, LinearCe& f, int64_t r0, int64_t n) {
  const int64_t V = f.w.size(0), C = f.w.size(1);
  if constexpr (be.cuda) {
    if (f.bf16)
      return cuda::gemm_bf16_f32(false, true, n, V, C, 1.0f, f.hr.data<bf16>() + r0 * C, C,
                                 f.wr.data<bf16>(), C, 0.0f, f.z.data<float>(), V);
  }
  be.pick(cpu::gemm<T>, cuda::gemm)(false, true, n, V, C, T(1), f.hr.data<T>() + r0 * C, C,
                                    f.wr.data<T>(), C, T(0), f.z.data<T>(), V);
}

// dh_r = dz wr and dw (+)= dz^T hr_r (the first chunk writes dw, the later ones add). Under
// autocast dz is rounded to bf16 first (on the CPU: rounded in place through dzb).
template <class T, Device D>
void gradient_gemms(Backend<T, D> be, LinearCe& f, int64_t r0, int64_t n) {
  const int64_t V = f.w.size(0), C = f.w.size(1);
  const T beta = r0 == 0 ? 0 : 1;
  if (f.bf16) cpu_or_cuda_convert(be, f.dz.data<T>(), f.dzb.data<bf16>(), n * V);
  if constexpr (be.cuda) {
    if (f.bf16) {
      const bf16* dzb = f.dzb.data<bf16>();
      cuda::gemm_bf16_f32(false, false, n, C, V, 1.0f, dzb, V, f.wr.data<bf16>(), C, 0.0f,
                          f.dh.data<float>() + r0 * C, C);
      return cuda::gemm_bf16_f32(true, false, V, C, n, 1.0f, dzb, V, f.hr.data<bf16>() + r0 * C, C,
                                 float(beta), f.dw.data<float>(), C);
    }
  } else {
    if (f.bf16) cpu::convert(f.dzb.data<bf16>(), f.dz.data<T>(), n * V);  // widened back, exact
  }
  const T* dz = f.dz.data<T>();
  be.pick(cpu::gemm<T>, cuda::gemm)(false, false, n, C, V, T(1), dz, V, f.wr.data<T>(), C, T(0),
                                    f.dh.data<T>() + r0 * C, C);
  be.pick(cpu::gemm<T>, cuda::gemm)(true, false, V, C, n, T(1), dz, V, f.hr.data<T>() + r0 * C, C,
                                    beta, f.dw.data<T>(), C);
}

// Rows [r0, r0 + n): z = h_r w^T, the rows' losses; with gradients also
// dz = (softmax(z) - onehot(t)) / count, dh_r = dz w and dw (+)= dz^T h_r (the first chunk writes
// dw, the later ones add: no zero fill).
void linear_ce_rows(LinearCe& f, int64_t r0, int64_t n) {
  const int64_t V = f.w.size(0);
  dispatch_float(f.h, kLinearOp, [&]<class T, Device D>(Backend<T, D> be) {
    const int32_t* t = f.targets.data<int32_t>() + r0;
    T* z = f.z.data<T>();
    logits_gemm(be, f, r0, n);
    be.pick(cpu::cross_entropy_forward<T>, cuda::cross_entropy_forward)(
        z, t, f.loss_rows.data<T>() + r0, f.lse.data<T>(), n, V, f.ignore);
    if (!f.dh.defined()) return;
    T* dz = f.dz.data<T>();
    if constexpr (be.cuda)
      cuda::cross_entropy_backward(z, f.lse.data<T>(), t, f.one.data<T>(), f.count, dz, n, V,
                                   f.ignore);
    else
      cpu::cross_entropy_backward(z, f.lse.data<T>(), t, 1.0 / double(f.count), dz, n, V, f.ignore);
    gradient_gemms(be, f, r0, n);
  });
}

// h (N, C) and w (V, C): float, one dtype and device; returns the error's shape text.
std::string check_linear_operands(const Tensor& h, const Tensor& w) {
  check_float(h, kLinearOp, "h");
  check_float(w, kLinearOp, "w");
  const std::string shapes = "h " + to_string(h.shape()) + ", w " + to_string(w.shape());
  if (h.dim() != 2 || w.dim() != 2 || h.size(1) != w.size(1))
    throw Error("[linear_cross_entropy] needs h (N, C) and w (V, C), got " + shapes);
  if (h.dtype() != w.dtype() || h.device() != w.device())
    throw Error("[linear_cross_entropy] h is " + to_string(h.dtype()) + " on " +
                to_string(h.device()) + ", w " + to_string(w.dtype()) + " on " +
                to_string(w.device()) + " (" + shapes + ")");
  return shapes;
}

// The fused path: the chunk loop, the mean, and the node whose backward scales the gradients the
// forward computed by dy.
Tensor linear_cross_entropy_chunked(LinearCe& f, int64_t chunk) {
  const int64_t N = f.h.size(0), V = f.w.size(0);
  const DType dt = f.h.dtype();
  const Device dev = f.h.device();
  f.loss_rows = Tensor::empty({N}, dt, dev);
  f.z = Tensor::empty({chunk, V}, dt, dev);
  f.lse = Tensor::empty({chunk}, dt, dev);
  if (tape::needs_grad({f.h, f.w})) {
    f.dh = Tensor::empty(f.h.shape(), dt, dev);
    f.dw = Tensor::empty(f.w.shape(), dt, dev);
    f.dz = Tensor::empty({chunk, V}, dt, dev);
    f.one = Tensor::ones({}, dt, dev);
    if (f.bf16) f.dzb = Tensor::empty({chunk, V}, DType::BF16, dev);
  }
  for (int64_t r0 = 0; r0 < N; r0 += chunk) linear_ce_rows(f, r0, std::min(chunk, N - r0));
  Tensor loss = Tensor::empty({}, dt, dev);
  mean_of_rows(f.loss_rows, loss, f.count, kLinearOp);
  if (f.dh.defined())
    tape::record(kLinearOp, {f.h, f.w}, loss, [dh = f.dh, dw = f.dw](const Tensor& dy) {
      return Grads{mul(dh, dy), mul(dw, dy)};
    });
  return loss;
}

}  // namespace

// cross_entropy(h w^T, targets) without the (N, V) logits: rows in chunks of chunk_rows (0: about
// 2^24 logits at a time), the gradients of h and w computed chunk by chunk in the forward and
// scaled by dy in the backward (what an LM head over a large vocabulary needs). When one chunk
// holds every row it is the unfused composition, bit for bit.
Tensor linear_cross_entropy(const Tensor& h_in, const Tensor& w_in, const Tensor& targets_in,
                            int32_t ignore_index, int64_t chunk_rows) {
  const std::string shapes = check_linear_operands(h_in, w_in);
  check_defined(targets_in, kLinearOp, "targets");
  const int64_t N = h_in.size(0), V = w_in.size(0);
  const int64_t chunk =
      chunk_rows > 0 ? chunk_rows : std::max<int64_t>(1, kChunkLogits / std::max<int64_t>(V, 1));
  if (chunk >= N)
    return cross_entropy(matmul(h_in, transpose(w_in, 0, 1)), targets_in, ignore_index);
  LinearCe f;
  f.count = check_targets({N, V}, h_in.device(), targets_in, ignore_index,
                          "logits h w^T " + to_string(Shape{N, V}) + " from " + shapes);
  f.ignore = ignore_index;
  if (f.count == 0) {  // every target ignored: cross_entropy's 0, with zero gradients
    Tensor loss = Tensor::zeros({}, h_in.dtype(), h_in.device());
    tape::record(kLinearOp, {h_in, w_in}, loss,
                 [hs = h_in.shape(), ws = w_in.shape(), dt = h_in.dtype(),
                  dev = h_in.device()](const Tensor&) {
                   return Grads{Tensor::zeros(hs, dt, dev), Tensor::zeros(ws, dt, dev)};
                 });
    return loss;
  }
  f.h = h_in.contiguous();  // copy nodes for strided views, as cross_entropy's logits
  f.w = w_in.contiguous();
  f.targets = targets_in.contiguous();
  f.bf16 = autocast_bf16() && f.h.dtype() == DType::F32;
  f.hr = f.bf16 ? bf16_operand(f.h) : f.h;
  f.wr = f.bf16 ? bf16_operand(f.w) : f.w;
  return linear_cross_entropy_chunked(f, chunk);
}

}  // namespace lmlab
