// The public differentiable API of lmlab. Every op checks its inputs at this boundary and throws
// lmlab::Error("[op] what is wrong, with the shapes"); every op here has a float64
// finite-difference gradient check in tests/autograd/ops/. Ops run on the input's device.
// Broadcasting follows NumPy: trailing dims align, size-1 dims stretch.
// Each declaration states its backward (dy: the gradient of the output, y: the output): this file
// is the one list of the ops and their derivatives. Pointwise f and f' are written once, for both
// devices, in autograd/kernels/pointwise.h.
#pragma once
#include <cstdint>
#include <vector>

#include "autograd/random.h"
#include "autograd/tape.h"
#include "autograd/tensor.h"

namespace lmlab {

// ---------------------------------------------------------------- elementwise, binary
// y = a + b, a - b, a * b, a / b with broadcasting; both float, same dtype and device.
// Backward: each input receives dy times its partial derivative, summed over its broadcast dims
// (sum_to): add dy, dy; sub dy, -dy; mul dy b, dy a; div dy / b, -dy y / b.
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);

// ---------------------------------------------------------------- elementwise, unary
Tensor neg(const Tensor& x);             // -x;              dx = -dy
Tensor add(const Tensor& x, double s);   // x + s;           dx = dy
Tensor mul(const Tensor& x, double s);   // x * s;           dx = s dy
Tensor rsub(const Tensor& x, double s);  // s - x;           dx = -dy
Tensor rdiv(const Tensor& x, double s);  // s / x;           dx = -dy y / x
Tensor exp(const Tensor& x);             // e^x;             dx = dy y
Tensor log(const Tensor& x);             // natural log;     dx = dy / x
Tensor sqrt(const Tensor& x);            // x^(1/2);         dx = dy / (2 y)
Tensor rsqrt(const Tensor& x);           // x^(-1/2);        dx = -dy y^3 / 2
Tensor pow(const Tensor& x, double p);   // x^p;             dx = dy p x^(p-1)
Tensor tanh(const Tensor& x);            //                  dx = dy (1 - y^2)
Tensor sigmoid(const Tensor& x);         // 1 / (1 + e^-x);  dx = dy y (1 - y)
Tensor relu(const Tensor& x);            // max(x, 0);       dx = dy [x > 0]
// GELU, tanh approximation (Hendrycks & Gimpel 2016; GPT-2):
//   y = 0.5 x (1 + t), t = tanh(k (x + 0.044715 x^3)), k = sqrt(2 / pi)
//   dx = dy (0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 * 0.044715 x^2))
Tensor gelu(const Tensor& x);
// SiLU / swish (Elfwing et al. 2017): y = x s, s = sigmoid(x);  dx = dy s (1 + x (1 - s))
Tensor silu(const Tensor& x);

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& x) { return neg(x); }
inline Tensor operator+(const Tensor& x, double s) { return add(x, s); }
inline Tensor operator+(double s, const Tensor& x) { return add(x, s); }
inline Tensor operator-(const Tensor& x, double s) { return add(x, -s); }
inline Tensor operator-(double s, const Tensor& x) { return rsub(x, s); }
inline Tensor operator*(const Tensor& x, double s) { return mul(x, s); }
inline Tensor operator*(double s, const Tensor& x) { return mul(x, s); }
inline Tensor operator/(const Tensor& x, double s) { return mul(x, 1.0 / s); }
inline Tensor operator/(double s, const Tensor& x) { return rdiv(x, s); }

// ---------------------------------------------------------------- reductions
// Over `dims` (empty = all dims; negative dims count from the end); keepdim keeps them as size 1.
// Backward: sum dx = dy, mean dx = dy / N, broadcast back over the N reduced elements.
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Maximum value. Backward splits dy evenly among tied maxima (PyTorch's amax rule).
Tensor max(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Variance sum((x - mean)^2) / (N - correction): correction 1 is unbiased (PyTorch's default),
// 0 is the biased variance LayerNorm uses. Backward: dx = dy 2 (x - mean) / (N - correction).
Tensor var(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false,
           int64_t correction = 1);
// Sums x over its broadcast dims so the result has `shape` (the adjoint of broadcasting).
// Backward: dx = dy broadcast back to x's shape.
Tensor sum_to(const Tensor& x, const Shape& shape);

// ---------------------------------------------------------------- linear algebra
// a (..., M, K) @ b (..., K, N) -> (..., M, N); batch dims broadcast, both at least 2-D.
// Transposed views are passed to BLAS as transpose flags, not copied. A 2-D b against a batched
// contiguous a is one GEMM over all rows (and so is its weight gradient).
// Backward: da = dy @ b^T, db = a^T @ dy (summed over broadcast batch dims).
Tensor matmul(const Tensor& a, const Tensor& b);

// ---------------------------------------------------------------- copies and conversions
// Backward: dx = dy, moved back to x's device / converted back to x's dtype.
Tensor contiguous_copy(const Tensor& x);  // x itself if contiguous, else a contiguous copy
Tensor clone(const Tensor& x);            // always a new contiguous copy
Tensor to_device(const Tensor& x, Device device);
Tensor to_dtype(const Tensor& x, DType dtype);  // gradients flow between float dtypes

// ---------------------------------------------------------------- shapes and views
// Backward: the inverse view of dy: reshape back (reshape, unsqueeze, squeeze), the inverse
// permutation (transpose, permute), dy placed into zeros of x's shape (narrow, slice), each input's
// piece of dy (concat; split's pieces are narrow views).
Tensor reshape(const Tensor& x, const Shape& shape);  // one dim may be -1
Tensor transpose(const Tensor& x, int64_t d0, int64_t d1);
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);
// Elements [start, start + length) of `dim` (a view). slice() takes [start, end).
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end);
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor squeeze(const Tensor& x, int64_t dim);
// Joins tensors along `dim`; all other dims must agree.
Tensor concat(const std::vector<Tensor>& xs, int64_t dim);
// Splits into pieces of `size` along `dim` (the last may be smaller), or into the given sizes.
std::vector<Tensor> split(const Tensor& x, int64_t size, int64_t dim);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim);

// ---------------------------------------------------------------- indexing and masking
// weight (V, C), ids int32 of any shape -> (*ids.shape, C). Backward scatter-adds into weight.
// Throws "[embedding] token id 70 at position 3 is out of range for a vocabulary of 65".
Tensor embedding(const Tensor& weight, const Tensor& ids);
// y = mask ? value : x; mask int32 (nonzero = fill), broadcast to x. dx = dy where mask is 0.
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);
// int32 (T, T) with 1 above the diagonal (j > i): the positions causal attention hides (no grad).
Tensor causal_mask(int64_t T, Device device = Device::CPU);
// Inverted dropout: zeroes each element with probability p and scales the rest by 1 / (1 - p);
// the identity when !training or p == 0. The mask is drawn from `gen` (reproducible).
// Backward: dx = dy times the same scaled mask.
Tensor dropout(const Tensor& x, double p, Generator& gen, bool training = true);

// ---------------------------------------------------------------- softmax and losses
// softmax along `dim`, with the row max subtracted. Backward: dx = y (dy - sum(dy y)).
Tensor softmax(const Tensor& x, int64_t dim = -1);
// log_softmax = x - logsumexp(x). Backward: dx = dy - softmax(x) sum(dy).
Tensor log_softmax(const Tensor& x, int64_t dim = -1);
// Fused softmax + cross-entropy: mean over tokens of logsumexp(z) - z_y.
// logits (..., V) float, targets int32 of shape (...); tokens whose target is ignore_index do not
// count (neither in the sum nor the mean). Backward: (softmax(z) - onehot(y)) / n_counted.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int32_t ignore_index = -100);
// cross_entropy(matmul(h, w^T), targets) for h (N, C), w (V, C) (an LM head's weight), without
// the (N, V) logits in memory at once: rows in chunks of chunk_rows (0: about 2^24 logits), the
// gradients of h and w formed chunk by chunk during the forward and scaled by dy in the backward.
// With one chunk for every row it is that composition itself, bit for bit. Under autocast
// (autocast.h) the chunked path runs its GEMMs on bf16 roundings of h and w with float32 logits,
// and rounds the logits' gradient to bf16 before the two gradient GEMMs (h's and w's gradients
// float32); the softmax and the loss stay float32.
Tensor linear_cross_entropy(const Tensor& h, const Tensor& w, const Tensor& targets,
                            int32_t ignore_index = -100, int64_t chunk_rows = 0);

// ---------------------------------------------------------------- fused layers
// Each fused op has a composed twin built from the primitive ops above; tests hold them equal.
// A twin's backward is autograd's through those primitives; the fused ops' are stated below.
// LayerNorm over the last dim (biased variance, eps inside the sqrt; Ba et al. 2016, PyTorch):
//   y = (x - mean) / sqrt(var + eps) * weight + bias;  x (..., C), weight (C), bias (C) or
//   undefined Backward (docs/layernorm.md): dx = rstd (g - mean(g) - x_hat mean(g x_hat)), g = dy
//   weight; dweight = sum over rows of dy x_hat, dbias = sum over rows of dy.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);
Tensor layer_norm_composed(const Tensor& x, const Tensor& weight, const Tensor& bias,
                           double eps = 1e-5);
// RMSNorm over the last dim, LLaMA convention (eps inside the rsqrt; Zhang & Sennrich 2019):
//   y = x * rsqrt(mean(x^2) + eps) * weight;  x (..., C), weight (C); accumulates in fp32 or better
//   Backward: dx = rstd (g - x_hat mean(g x_hat)), g = dy weight, x_hat = x rstd;
//   dweight = sum over rows of dy x_hat.
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps = 1e-5);
Tensor rms_norm_composed(const Tensor& x, const Tensor& weight, double eps = 1e-5);
// Causal scaled-dot-product attention with grouped KV heads (MHA when KVH == NH, MQA when 1):
//   q (B, NH, Tq, HS), k and v (B, KVH, Tk, HS), Tq <= Tk, NH % KVH == 0 -> (B, NH, Tq, HS).
//   Query i sits at absolute position Tk - Tq + i (so Tq < Tk is decoding against a KV cache) and
//   sees keys j <= that position. Query head h reads kv head h / (NH / KVH); K and V are never
//   copied per query head. scores = q k^T / sqrt(HS), causal mask, row max subtracted, softmax.
//   Backward (docs/attention.md): datt = dout v^T, dscores = att (datt - rowsum(att datt)),
//   dq = scale dscores k, dk = scale dscores^T q, dv = att^T dout (dk, dv summed over the query
//   heads of a group).
Tensor causal_attention(const Tensor& q, const Tensor& k, const Tensor& v);
Tensor causal_attention_composed(const Tensor& q, const Tensor& k, const Tensor& v);

}  // namespace lmlab
