// bfloat16 and mixed precision (autograd/autocast.h): the bf16 rounding itself (ties to even,
// specials, exact widening), the casts on the tape (values, layouts, gradients), bf16 matmul and
// attention against float32 with bf16 tolerances, the autocast scope (casts recorded, parameters'
// gradients in float32, backward with autocast off) and the tape's bf16 gradient sums. These run
// on the CPU, whose bf16 kernels are the float32 kernels on widened operands with the results
// rounded once (the numerics the GPU's bf16 kernels follow; tests/cuda holds the two together).
//
// Tolerances: a bf16 rounding errs by at most 2^-8 relative. A product of rounded operands with
// a rounded result is within 3 * 2^-8 of the float32 one per element of a typical magnitude;
// sums of many such terms with mixed signs can lose relative accuracy where they cancel, so
// whole tensors are compared as max |bf16 - f32| <= tol * max |f32| with tol 1e-2 (values) and
// 2e-2 (gradients: two bf16 products deep).
#include <cfloat>
#include <cmath>
#include <vector>

#include "autograd/autocast.h"
#include "tests/test_util.h"

using namespace lmlab;

namespace {

float widen(uint16_t bits) {
  bf16 b;
  b.bits = bits;
  return float(b);
}
uint16_t bits_of(float f) { return bf16(f).bits; }

Tensor randn32(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  return Tensor::randn(shape, gen);
}
std::vector<double> values(const Tensor& t) {
  return t.detach().to(DType::F32).to(DType::F64).to_vector<double>();
}
double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : values(t)) m = std::max(m, std::abs(v));
  return m;
}
// max |a - b| / max |b|.
double rel_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = values(a), y = values(b);
  EXPECT_EQ(x.size(), y.size());
  double m = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m / std::max(max_abs(b), 1e-30);
}
bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return values(a) == values(b) && a.shape() == b.shape();
}

}  // namespace

TEST(Bf16, RoundsToNearestTiesToEven) {
  EXPECT_EQ(bits_of(1.0f), 0x3f80);
  EXPECT_EQ(bits_of(1.0f + 0x1p-8f), 0x3f80);             // halfway, to the even 1.0
  EXPECT_EQ(bits_of(1.0f + 3 * 0x1p-8f), 0x3f82);         // halfway, to the even 1 + 2^-6
  EXPECT_EQ(bits_of(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);  // past halfway: up
  EXPECT_EQ(bits_of(-1.0f - 0x1p-8f - 0x1p-20f), 0xbf81);
  EXPECT_EQ(widen(0x3f81), 1.0f + 0x1p-7f);
  EXPECT_EQ(bits_of(-0.0f), 0x8000);
  EXPECT_EQ(bits_of(INFINITY), 0x7f80);
  EXPECT_EQ(bits_of(-INFINITY), 0xff80);
  EXPECT_EQ(bits_of(FLT_MAX), 0x7f80);  // past the largest bf16: overflows to inf, as PyTorch
  EXPECT_TRUE(std::isnan(widen(bits_of(NAN))));
  EXPECT_EQ(bits_of(1e-40f), 0x0001);  // float32 subnormals round like any other value
  // Widening is exact: every bf16 that is not a NaN rounds back to itself.
  int mismatches = 0;
  for (uint32_t b = 0; b < 0x10000; ++b)
    if (!std::isnan(widen(uint16_t(b))) && bits_of(widen(uint16_t(b))) != b) ++mismatches;
  EXPECT_EQ(mismatches, 0);
}

TEST(Bf16, TensorsHoldAndShowBf16Values) {
  Tensor h = Tensor::full({2, 3}, 1.0 + 0x1p-7, DType::BF16);
  EXPECT_EQ(h.dtype(), DType::BF16);
  EXPECT_EQ(h.storage()->nbytes(), 12u);
  EXPECT_EQ(h.at({1, 2}), 1.0 + 0x1p-7);
  h.set({0, 1}, 3.0);
  h.fill_(2.0);
  EXPECT_EQ(h.at({0, 1}), 2.0);
  EXPECT_NE(h.to_string().find("dtype=bfloat16"), std::string::npos);
  // Views and strided copies move 2-byte elements.
  Tensor x = randn32({3, 4}, 1);
  Tensor t = x.to(DType::BF16).transpose(0, 1).contiguous();
  EXPECT_TRUE(bitwise_equal(t, x.transpose(0, 1).to(DType::BF16)));
  EXPECT_TRUE(test::ThrowsWith([] { Tensor::zeros({2}, DType::I32).to(DType::BF16); },
                               {"[to] no conversion from int32 to bfloat16"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        Generator g(1);
        Tensor::randn({2}, g, DType::BF16);
      },
      {"[randn] dtype must be float32 or float64, got bfloat16"}));
}

// float32 -> bf16 rounds each element (bitwise bf16(float)), bf16 -> float32 widens exactly, and
// the casts are tape nodes: the gradient crosses a bf16 tensor rounded to bf16.
TEST(Bf16, CastsRoundWidenAndCarryGradients) {
  Tensor x = randn32({3, 5}, 2).requires_grad_();
  Tensor h = x.to(DType::BF16);
  ASSERT_EQ(h.dtype(), DType::BF16);
  const std::vector<float> xv = x.to_vector<float>();
  const std::vector<bf16> hv = h.to_vector<bf16>();
  for (size_t i = 0; i < xv.size(); ++i) EXPECT_EQ(hv[i].bits, bf16(xv[i]).bits);
  Tensor back = h.to(DType::F32);
  const std::vector<float> bv = back.to_vector<float>();
  for (size_t i = 0; i < xv.size(); ++i) EXPECT_EQ(bv[i], float(hv[i]));
  const Tensor w = randn32({3, 5}, 3);
  tape::backward(sum(mul(back, w)));
  ASSERT_EQ(x.grad().dtype(), DType::F32);
  const std::vector<float> g = x.grad().to_vector<float>(), wv = w.to_vector<float>();
  for (size_t i = 0; i < g.size(); ++i) EXPECT_EQ(g[i], float(bf16(wv[i])));
  // float64 <-> bf16 on the CPU (through float32, as PyTorch).
  const Tensor d = Tensor::from_vector(std::vector<double>{1.0 + 0x1p-8, -3.0}, {2});
  EXPECT_EQ(d.to(DType::BF16).to(DType::F64).to_vector<double>(), (std::vector<double>{1.0, -3.0}));
}

// A cast keeps a dense view's layout (a transposed weight stays transposed, strided attention
// heads stay strided: no copy), and its gradient flows back through that layout.
TEST(Bf16, CastsKeepTheLayoutOfDenseViews) {
  const Tensor w = randn32({4, 6}, 20).requires_grad_();
  const Tensor wt = w.transpose(0, 1);
  const Tensor h = wt.to(DType::BF16);
  EXPECT_EQ(h.strides(), wt.strides());
  EXPECT_TRUE(bitwise_equal(h, wt.contiguous().to(DType::BF16)));
  const Tensor heads = randn32({2, 5, 3, 4}, 21).transpose(1, 2);  // (B, H, T, HS) of (B, T, H, HS)
  EXPECT_EQ(heads.to(DType::BF16).strides(), heads.strides());
  const Tensor g = randn32({6, 4}, 22);
  tape::backward(sum(mul(h.to(DType::F32), g)));
  EXPECT_TRUE(bitwise_equal(w.grad(), g.to(DType::BF16).to(DType::F32).transpose(0, 1)));
  // A view that is not dense (a narrowed slice) is copied, then converted.
  const Tensor slice = randn32({4, 6}, 23).narrow(1, 1, 3);
  EXPECT_TRUE(slice.to(DType::BF16).is_contiguous());
}

TEST(Bf16, OpsWithoutBf16KernelsSaySoAndNameTheOnesThatHaveThem) {
  const Tensor h = randn32({2, 2}, 4).to(DType::BF16);
  EXPECT_TRUE(test::ThrowsWith([&] { lmlab::exp(h); },
                               {"bfloat16", "shape (2, 2)", "matmul", "causal_attention"}));
}

// bf16 matmul on the CPU: the float32 product of the widened operands rounded once, batched and
// with a transposed (Linear-style) weight; within a bf16 rounding of the exact product.
TEST(Bf16Matmul, IsTheRoundedFloatProductOfTheRoundedOperands) {
  const Tensor a = randn32({4, 6, 32}, 5).to(DType::BF16);
  const Tensor w = randn32({5, 32}, 6).to(DType::BF16);
  const Tensor y = matmul(a, w.transpose(0, 1));
  ASSERT_EQ(y.dtype(), DType::BF16);
  ASSERT_EQ(y.shape(), (Shape{4, 6, 5}));
  const Tensor a32 = a.to(DType::F32), w32 = w.to(DType::F32);
  EXPECT_TRUE(bitwise_equal(y, matmul(a32, w32.transpose(0, 1)).to(DType::BF16)));
  // Element by element within one bf16 rounding (2^-8 relative) of the exact (double) product.
  const std::vector<double> exact =
      matmul(a.to(DType::F64), w.to(DType::F64).transpose(0, 1)).to_vector<double>();
  const std::vector<double> got = values(y);
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_LE(std::abs(got[i] - exact[i]), 0x1p-8 * std::abs(exact[i]) + 1e-6) << i;
  EXPECT_TRUE(test::ThrowsWith([&] { matmul(a, w32.transpose(0, 1)); }, {"dtype mismatch"}));
}

// Under autocast a float32 matmul records bf16 casts of its operands and returns their product's
// float32 sums (not rounded to bf16): on the CPU exactly the float32 product of the widened
// operands. The parameters' gradients are float32, within bf16 error of the float32 op's.
TEST(Autocast, MatmulRunsInBf16AndParametersGetFloatGradients) {
  const Tensor x = randn32({2, 3, 16}, 7).requires_grad_();
  const Tensor w = randn32({5, 16}, 8).requires_grad_();
  Tensor y;
  {
    AutocastGuard autocast(DType::BF16);
    EXPECT_TRUE(autocast_bf16());
    y = matmul(x, w.transpose(0, 1));
  }
  EXPECT_FALSE(autocast_bf16());
  ASSERT_EQ(y.dtype(), DType::F32);
  const Tensor xh = x.detach().to(DType::BF16), wh = w.detach().to(DType::BF16);
  EXPECT_TRUE(bitwise_equal(y, matmul(xh.to(DType::F32), wh.to(DType::F32).transpose(0, 1))));
  const Tensor g = randn32(y.shape(), 9);
  tape::backward(sum(mul(y, g)));
  ASSERT_EQ(x.grad().dtype(), DType::F32);
  ASSERT_EQ(w.grad().dtype(), DType::F32);
  const Tensor dx = x.grad().clone(), dw = w.grad().clone();
  x.zero_grad();
  w.zero_grad();
  const Tensor y32 = matmul(x, w.transpose(0, 1));
  EXPECT_LE(rel_diff(y, y32), 1e-2);
  tape::backward(sum(mul(y32, g)));
  EXPECT_LE(rel_diff(dx, x.grad()), 2e-2);
  EXPECT_LE(rel_diff(dw, w.grad()), 2e-2);
  EXPECT_GT(rel_diff(dw, w.grad()), 0.0);  // it did run in bf16
}

TEST(Autocast, ScopesNestAndRefuseOtherDtypes) {
  EXPECT_EQ(autocast_dtype(), DType::F32);
  {
    AutocastGuard on(DType::BF16);
    {
      AutocastGuard off(DType::F32);
      EXPECT_FALSE(autocast_bf16());
    }
    EXPECT_TRUE(autocast_bf16());
  }
  EXPECT_FALSE(autocast_bf16());
  EXPECT_TRUE(test::ThrowsWith([] { AutocastGuard bad(DType::F64); },
                               {"[autocast]", "float32", "bfloat16", "float64"}));
  // float64 (gradient checks) is never cast.
  AutocastGuard on(DType::BF16);
  EXPECT_EQ(matmul(test::randn64({2, 3}, 1), test::randn64({3, 2}, 2)).dtype(), DType::F64);
}

// A backward run inside an autocast scope computes as it would outside: the rules keep the
// dtypes their forward chose (a float32 graph's gradients stay float32 products).
TEST(Autocast, BackwardRunsWithAutocastOff) {
  const Tensor x = randn32({4, 8}, 10).requires_grad_();
  const Tensor w = randn32({8, 3}, 11).requires_grad_();
  tape::backward(sum(matmul(x, w)));
  const Tensor dx = x.grad().clone();
  x.zero_grad();
  Tensor loss = sum(matmul(x, w));
  AutocastGuard autocast(DType::BF16);
  tape::backward(loss);
  EXPECT_TRUE(bitwise_equal(x.grad(), dx));
}

// Attention under autocast: q, k, v cast to bf16, the output cast back; on the CPU that is the
// float32 kernel on the widened operands, output rounded; gradients float32 within bf16 error.
TEST(Autocast, AttentionRunsInBf16WithFloatGradients) {
  const Tensor q = randn32({2, 4, 9, 8}, 12).requires_grad_();
  const Tensor k = randn32({2, 2, 9, 8}, 13).requires_grad_();
  const Tensor v = randn32({2, 2, 9, 8}, 14).requires_grad_();
  Tensor out;
  {
    AutocastGuard autocast(DType::BF16);
    out = causal_attention(q, k, v);
  }
  ASSERT_EQ(out.dtype(), DType::F32);
  auto round = [](const Tensor& t) { return t.detach().to(DType::BF16).to(DType::F32); };
  const Tensor emulated = causal_attention(round(q), round(k), round(v)).to(DType::BF16);
  EXPECT_TRUE(bitwise_equal(out, emulated.to(DType::F32)));
  const Tensor g = randn32(out.shape(), 15);
  tape::backward(sum(mul(out, g)));
  const Tensor dq = q.grad().clone(), dk = k.grad().clone(), dv = v.grad().clone();
  ASSERT_EQ(dq.dtype(), DType::F32);
  q.zero_grad(), k.zero_grad(), v.zero_grad();
  const Tensor out32 = causal_attention(q, k, v);
  EXPECT_LE(rel_diff(out, out32), 1e-2);
  tape::backward(sum(mul(out32, g)));
  EXPECT_LE(rel_diff(dq, q.grad()), 2e-2);
  EXPECT_LE(rel_diff(dk, k.grad()), 2e-2);
  EXPECT_LE(rel_diff(dv, v.grad()), 2e-2);
}

// A bf16 tensor used twice gets the sum of its two bf16 gradients (summed in float32, rounded
// once: bf16 has no elementwise kernels of its own).
TEST(Bf16, TapeSumsTheGradientsOfATensorUsedTwice) {
  const Tensor x = randn32({4, 4}, 16).requires_grad_();
  const Tensor h = x.to(DType::BF16);
  tape::backward(sum(matmul(h, h).to(DType::F32)));
  // d sum(H H) / dH = 1 H^T + H^T 1, each term a bf16 product.
  const Tensor h32 = h.detach().to(DType::F32), ones = Tensor::ones({4, 4});
  const Tensor expected = add(matmul(ones, h32.transpose(0, 1)), matmul(h32.transpose(0, 1), ones));
  EXPECT_LE(rel_diff(x.grad(), expected), 1e-2);
}

// The fused LM head under autocast (chunked: the logits never exist at once): bf16 GEMM operands,
// float32 logits, softmax and loss. Its loss is bitwise the float32 op's on bf16-rounded h and w
// (the forward rounds nothing else); its gradients are float32, within bf16 error of the float32
// op's (dz is rounded to bf16 before the two gradient GEMMs).
TEST(Autocast, FusedLmHeadRunsItsGemmsInBf16) {
  const Tensor h = randn32({37, 16}, 17).requires_grad_();
  const Tensor w = randn32({50, 16}, 18).requires_grad_();
  std::vector<int32_t> t(37);
  for (size_t i = 0; i < t.size(); ++i) t[i] = int32_t(i * 7 % 50);
  t[5] = -100;  // ignored
  const Tensor targets = Tensor::from_vector(t, {37});
  Tensor loss;
  {
    AutocastGuard autocast(DType::BF16);
    loss = linear_cross_entropy(h, w, targets, -100, 8);
  }
  ASSERT_EQ(loss.dtype(), DType::F32);
  auto round = [](const Tensor& x) { return x.detach().to(DType::BF16).to(DType::F32); };
  EXPECT_EQ(loss.item(), linear_cross_entropy(round(h), round(w), targets, -100, 8).item());
  tape::backward(loss);
  ASSERT_EQ(h.grad().dtype(), DType::F32);
  const Tensor dh = h.grad().clone(), dw = w.grad().clone();
  h.zero_grad();
  w.zero_grad();
  const Tensor loss32 = linear_cross_entropy(h, w, targets, -100, 8);
  EXPECT_NEAR(loss.item(), loss32.item(), 1e-2 * loss32.item());
  tape::backward(loss32);
  EXPECT_LE(rel_diff(dh, h.grad()), 2e-2);
  EXPECT_LE(rel_diff(dw, w.grad()), 2e-2);
  EXPECT_GT(rel_diff(dw, w.grad()), 0.0);
}
