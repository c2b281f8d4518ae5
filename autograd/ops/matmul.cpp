// Matrix product with NumPy batch broadcasting: a (..., M, K) @ b (..., K, N) -> (..., M, N).
// Operands reach BLAS in place: row-major matrices as NoTrans, transposed views as Trans, batch
// dims through their (broadcast) strides. A 2-D b against a batched a is one GEMM over all rows.
#include "autograd/kernels/matmul.h"

#include <algorithm>
#include <climits>
#include <optional>
#include <type_traits>

#include "autograd/autocast.h"
#include "autograd/ops.h"
#include "autograd/ops/dispatch.h"

namespace lmlab {

namespace {

// How BLAS reads the last two dims (R, C) of `t`: stored row-major with row stride ld
// (trans = false), or as the row-major (C, R) transpose with row stride ld (trans = true).
struct Operand {
  Tensor t;  // the tensor read: the input itself, or a contiguous copy when no flag fits
  bool trans = false;
  int64_t ld = 1;
};

// Whether the last two dims (R, C) of x are stored as a row-major (C, R) matrix (a transposed
// view). A size-1 dim has no meaningful stride, so it never blocks a layout.
bool stored_transposed(const Tensor& x) {
  const int64_t R = x.size(-2), C = x.size(-1);
  const int64_t s0 = x.strides()[x.dim() - 2], s1 = x.strides()[x.dim() - 1];
  return (R == 1 || s0 == 1) && (C == 1 || s1 >= std::max<int64_t>(R, 1));
}

Operand blas_operand(const Tensor& x) {
  const int64_t R = x.size(-2), C = x.size(-1);
  const int64_t s0 = x.strides()[x.dim() - 2], s1 = x.strides()[x.dim() - 1];
  if ((C == 1 || s1 == 1) && (R == 1 || s0 >= std::max<int64_t>(C, 1)))
    return {x, false, R == 1 ? std::max<int64_t>(C, 1) : s0};
  if (stored_transposed(x)) return {x, true, C == 1 ? std::max<int64_t>(R, 1) : s1};
  return {contiguous_copy(x), false, std::max<int64_t>(C, 1)};
}

// x (..., R, C) as one (rows, C) view without a copy, when its leading dims collapse into a
// single dim of uniform stride (a contiguous activation (B, T, C), or a slice of one).
std::optional<Tensor> flat_rows(const Tensor& x) {
  if (x.dim() == 2) return x;
  const int64_t C = x.size(-1);
  int64_t rows = 1, row_stride = std::max<int64_t>(C, 1), expected = 0;
  bool first = true;
  for (int64_t d = x.dim() - 2; d >= 0; --d) {
    const int64_t n = x.shape()[d], s = x.strides()[d];
    if (n == 1) continue;  // size-1 dims have no meaningful stride
    if (first) {
      row_stride = s;
      first = false;
    } else if (s != expected) {
      return std::nullopt;
    }
    rows *= n;
    expected = s * n;
  }
  return make_view(x, {rows, C}, {row_stride, x.strides()[x.dim() - 1]}, x.offset());
}

// Rows of x as a 2-D (rows, C) matrix: a view when possible, else a contiguous copy.
Tensor rows_of(const Tensor& x) {
  if (std::optional<Tensor> v = flat_rows(x)) return *v;
  return reshape(contiguous_copy(x), {-1, x.size(-1)});
}

Shape batch_of(const Tensor& x) { return Shape(x.shape().begin(), x.shape().end() - 2); }
Strides batch_strides(const Tensor& x) {
  return Strides(x.strides().begin(), x.strides().end() - 2);
}

// y[i] = a[i] @ b[i] for every index i of `batch`, one GEMM after another (BLAS threads each
// one), elements of type T through `gemm` (cpu::gemm's arguments). Batch dims are addressed
// through strides; broadcast dims have stride 0. Each y[i] (M, N) is contiguous = op(a[i]) (M, K)
// @ op(b[i]) (K, N).
template <class T, class TOut = T, class Gemm>
void batched_gemm(Gemm gemm, const Operand& a, const Operand& b, const Shape& batch, int64_t M,
                  int64_t N, int64_t K, Tensor& y) {
  using Scalar = std::conditional_t<std::is_same_v<T, bf16>, float, T>;  // alpha and beta
  const int64_t nb = int64_t(batch.size());
  const Strides sa = broadcast_strides(batch_of(a.t), batch_strides(a.t), batch);
  const Strides sb = broadcast_strides(batch_of(b.t), batch_strides(b.t), batch);
  const T* pa = a.t.data<T>();
  const T* pb = b.t.data<T>();
  TOut* py = y.data<TOut>();
  std::vector<int64_t> idx(nb, 0);
  int64_t off_a = 0, off_b = 0;
  for (int64_t i = 0, n = numel(batch); i < n; ++i) {
    gemm(a.trans, b.trans, M, N, K, Scalar(1), pa + off_a, a.ld, pb + off_b, b.ld, Scalar(0),
         py + i * M * N, N);
    for (int64_t d = nb - 1; d >= 0; --d) {  // odometer step over the batch index
      off_a += sa[d];
      off_b += sb[d];
      if (++idx[d] < batch[d]) break;
      off_a -= sa[d] * batch[d];
      off_b -= sb[d] * batch[d];
      idx[d] = 0;
    }
  }
}

Tensor product(const Tensor& a, const Tensor& b, DType out);

// bfloat16 on the CPU: the operands widened to float32 (exact), one float32 product (so every
// bf16 x bf16 term is exact and the sums run in float32, as the GPU's bf16 GEMM does), the result
// rounded to bfloat16 once unless float32 is asked for. An emulation for checking numerics, slower
// than float32.
Tensor widened_product(const Tensor& a, const Tensor& b, DType out) {
  const Tensor y = product(to_dtype(a, DType::F32), to_dtype(b, DType::F32), DType::F32);
  return out == DType::BF16 ? to_dtype(y, DType::BF16) : y;
}

// The forward product, no checks and no recording. Its dtype `out` is the operands', or float32
// from bf16 operands (autocast: the float32 sums themselves, not rounded to bf16).
Tensor product(const Tensor& a, const Tensor& b, DType out) {
  if (a.dtype() == DType::BF16 && a.device() == Device::CPU) return widened_product(a, b, out);
  Shape batch = broadcast_shapes(batch_of(a), batch_of(b), "matmul");
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  Shape shape = batch;
  shape.push_back(M);
  shape.push_back(N);
  Tensor y = Tensor::empty(shape, out, a.device());
  if (y.numel() == 0) return y;
  if (K == 0) return y.fill_(0);
  Tensor lhs = a;
  int64_t rows = M;
  if (b.dim() == 2 && a.dim() > 2) {
    // (..., M, K) @ (K, N): the leading dims of a fold into the rows of one GEMM.
    if (std::optional<Tensor> flat = flat_rows(a)) {
      lhs = *flat;
      rows = flat->size(0);
      batch.clear();
    }
  }
  const Operand oa = blas_operand(lhs), ob = blas_operand(b);
  if (a.dtype() == DType::BF16 && out == DType::F32) {
    batched_gemm<bf16, float>(cuda::gemm_bf16_f32, oa, ob, batch, rows, N, K, y);
    return y;
  }
  if (a.dtype() == DType::BF16) {
    batched_gemm<bf16>(cuda::gemm_bf16, oa, ob, batch, rows, N, K, y);
    return y;
  }
  dispatch_float(a, "matmul", [&]<class T, Device D>(Backend<T, D> be) {
    batched_gemm<T>(be.pick(cpu::gemm<T>, cuda::gemm), oa, ob, batch, rows, N, K, y);
  });
  return y;
}

void check_operands(const Tensor& a, const Tensor& b) {
  check_defined(a, "matmul", "a");
  check_defined(b, "matmul", "b");
  const std::string shapes = "a is " + to_string(a.shape()) + ", b is " + to_string(b.shape());
  if (!is_float(a.dtype()) || !is_float(b.dtype()))
    throw Error("[matmul] needs floating-point tensors, got a " + to_string(a.dtype()) + " " +
                to_string(a.shape()) + ", b " + to_string(b.dtype()) + " " + to_string(b.shape()));
  check_same_dtype(a, b, "matmul");
  if (a.device() != b.device())
    throw Error("[matmul] device mismatch: a " + to_string(a.shape()) + " is on " +
                to_string(a.device()) + ", b " + to_string(b.shape()) + " is on " +
                to_string(b.device()));
  check_device_dtype(a, "matmul");
  if (a.dim() < 2 || b.dim() < 2)
    throw Error("[matmul] both operands need at least 2 dims (unsqueeze a vector): " + shapes);
  if (a.size(-1) != b.size(-2)) throw Error("[matmul] inner dims differ: " + shapes);
  // BLAS takes 32-bit sizes; the rows of a (all of its leading dims) may become one GEMM's M.
  if (a.numel() / std::max<int64_t>(a.size(-1), 1) > INT_MAX || a.size(-1) > INT_MAX ||
      b.size(-1) > INT_MAX)
    throw Error("[matmul] a GEMM dim exceeds 2^31 - 1: " + shapes);
  const Shape ba = batch_of(a), bb = batch_of(b);
  for (size_t i = 1; i <= std::min(ba.size(), bb.size()); ++i) {
    const int64_t x = ba[ba.size() - i], y = bb[bb.size() - i];
    if (x != y && x != 1 && y != 1)
      throw Error("[matmul] batch dims " + to_string(ba) + " and " + to_string(bb) +
                  " do not broadcast: " + shapes);
  }
}

}  // namespace

namespace {

// The gradients of y = a @ b from dy (of a's and b's dtype): av is a where b needs its gradient,
// bv is b where a needs its own (else undefined).
Grads matmul_grads(const Tensor& dy, const Tensor& av, const Tensor& bv, const Shape& shape_a,
                   const Shape& shape_b, bool b_transposed) {
  Grads g(2);
  // da = dy @ b^T: (..., M, N) @ (..., N, K), summed over the dims a was broadcast along.
  if (bv.defined()) g[0] = sum_to(matmul(dy, transpose(bv, -1, -2)), shape_a);
  if (av.defined()) {
    if (shape_b.size() == 2) {
      // db = sum over every row r of a_r^T dy_r = A^T @ DY with A (rows, K), DY (rows, N):
      // one GEMM, no (B, K, N) temporary. Transposed b: (DY^T @ A)^T, the same sums.
      if (b_transposed)
        g[1] = transpose(matmul(transpose(rows_of(dy), -1, -2), rows_of(av)), 0, 1);
      else
        g[1] = matmul(transpose(rows_of(av), -1, -2), rows_of(dy));
    } else {
      // db = a^T @ dy per batch, summed over the dims b was broadcast along.
      g[1] = sum_to(matmul(transpose(av, -1, -2), dy), shape_b);
    }
  }
  return g;
}

// The node of y = a @ b. With dy_to_bf16 (autocast: bf16 a and b, float32 y), dy is rounded to
// bf16 first, so the backward's two products are bf16 GEMMs too.
void record_matmul(const Tensor& a, const Tensor& b, const Tensor& y, bool dy_to_bf16) {
  // Each gradient needs the other operand: save a only if b needs its gradient, and vice versa.
  Saved sa(b.requires_grad() ? a : Tensor()), sb(a.requires_grad() ? b : Tensor());
  const Shape shape_a = a.shape(), shape_b = b.shape();
  // b a transposed view of a row-major matrix (a Linear's weight^T): its gradient is formed as
  // that matrix's gradient, contiguous, so the leaf takes it without a transposing copy.
  const bool b_transposed = b.dim() == 2 && b.size(0) > 1 && b.size(1) > 1 && stored_transposed(b);
  tape::record(
      "matmul", {a, b}, y, [sa, sb, shape_a, shape_b, b_transposed, dy_to_bf16](const Tensor& dy) {
        const Tensor d = dy_to_bf16 ? to_dtype(dy, DType::BF16) : dy;
        return matmul_grads(d, sa.get("matmul"), sb.get("matmul"), shape_a, shape_b, b_transposed);
      });
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_operands(a, b);
  // Mixed precision (autocast.h): bf16 casts of a and b on the tape, and a float32 result: their
  // bf16 products summed in float32 (not rounded to bf16).
  const bool mixed = autocast_bf16() && a.dtype() == DType::F32;
  const Tensor x = mixed ? to_dtype(a, DType::BF16) : a;
  const Tensor w = mixed ? to_dtype(b, DType::BF16) : b;
  Tensor y;
  {
    NoGradGuard no_grad;  // copies made for BLAS are internal, not graph nodes
    y = product(x, w, mixed ? DType::F32 : x.dtype());
  }
  if (tape::needs_grad({x, w})) record_matmul(x, w, y, mixed);
  return y;
}

}  // namespace lmlab
