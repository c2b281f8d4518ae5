// The flash attention kernels (cuda::flash_attention_forward / _backward) against the CPU
// attention kernels in double on the same random N(0, 1) inputs: out, the row log-sum-exp and
// every gradient, for every case of test_cuda_attention.cpp, MHA / GQA / MQA, lengths around the
// 64-row tiles, query blocks shorter than the keys (KV-cache rows), head sizes 1..128, strided
// (B, T, H, HS) and padded layouts, and GPT-2-small shapes.
//
// Tolerances, max |gpu - cpu| <= rtol * max(max |cpu|, 1) per tensor (the floor matters only where
// the exact result vanishes: T = 1 gives dq = dk = 0, where TF32 leaves ~1e-6):
//   fp32 (TF32 off: fp32 FMAs)       1e-5 for everything; the sharp check of the tiling, masking
//                                    and online softmax, which both paths share;
//   TF32 on (tensor cores, WMMA)     2e-3 for out and lse, 4e-3 for dq, dk, dv (two TF32 products
//                                    deep; cuBLAS's TF32 attention errs as much: ~3e-4..8e-4 a
//                                    head);
//   bf16 (the bf16 overloads)        1e-2 for out, 2e-3 for lse, 2e-2 for dq, dk, dv. The inputs
//                                    are rounded to bf16 first and the reference runs on those
//                                    values, so only the kernels' own rounding counts: out, dq, dk
//                                    and dv are rounded to bf16 as stored (2^-9 relative, ~2e-3 of
//                                    the largest element), on top of TF32's P and dS (bf16 values
//                                    are exact in TF32: Q, K, V and dout are not rounded again;
//                                    ~5e-4 a product, ~1e-3 two deep) and D from the bf16 out
//                                    (2^-9); lse stays float, from exact q.k products (TF32's 2e-3
//                                    is loose for it). The margins are 3-5x of those estimates.
// Outputs start as NaN, so an element the kernels do not write fails; padding between the rows of
// a padded layout must still be NaN afterwards (a bf16 NaN too). The backward must be bitwise
// deterministic.
//
// Device-generic (cuda_test_util.h: DeviceParity): the /cuda half runs the flash kernels, the /cpu
// half the same harness on the CPU float kernels (lse from their att; for bf16 on the widened
// bf16 inputs, with out, dq, dk, dv rounded to bf16, as the op's CPU bf16 path does), so a harness
// bug fails in every CI run and not only on the GPU. The bf16 kernels are compiled, not yet run on
// a GPU.
#include <cmath>
#include <limits>

#include "autograd/kernels/attention.h"
#include "tests/cuda/cuda_test_util.h"

namespace lmlab::test {
namespace {

using kernels::HeadStrides;

class CudaFlashAttention : public DeviceParity {};

struct Case {
  int64_t B, NH, KVH, Tq, Tk, HS;
};
std::string name(const Case& c) {
  return "B " + std::to_string(c.B) + " NH " + std::to_string(c.NH) + " KVH " +
         std::to_string(c.KVH) + " Tq " + std::to_string(c.Tq) + " Tk " + std::to_string(c.Tk) +
         " HS " + std::to_string(c.HS);
}

// test_cuda_attention.cpp's cases, then tile edges (64-row tiles), KV-cache rows, head sizes.
const std::vector<Case> kCases = {
    {1, 1, 1, 1, 1, 1},       {2, 4, 4, 67, 67, 16},   {2, 6, 2, 33, 33, 8},
    {1, 8, 1, 130, 130, 32},  {3, 4, 2, 5, 29, 16},    {1, 12, 12, 257, 257, 64},
    {2, 2, 1, 7, 7, 64},      {1, 4, 2, 63, 63, 32},   {1, 4, 4, 64, 64, 64},
    {1, 4, 1, 65, 65, 64},    {2, 3, 3, 100, 100, 24}, {1, 4, 2, 129, 129, 64},
    {2, 4, 2, 1, 100, 32},    {1, 6, 3, 17, 130, 64},  {1, 2, 2, 64, 128, 16},
    {1, 2, 1, 70, 135, 48},   {1, 2, 2, 65, 100, 128}, {1, 3, 1, 7, 7, 100},
    {1, 2, 2, 129, 129, 128}, {2, 8, 2, 190, 200, 64},
};

// Strided layouts are checked on fewer cases: one small GQA case, one long KV-cache block.
const std::vector<Case> kStridedCases = {{2, 6, 3, 45, 45, 8}, {1, 4, 2, 70, 135, 64}};

// Relative tolerances (the top comment) for out, lse and the gradients.
struct Rtol {
  double out, lse, grad;
};
constexpr Rtol kFp32{1e-5, 1e-5, 1e-5}, kTf32{2e-3, 2e-3, 4e-3}, kBf16{1e-2, 2e-3, 2e-2};

enum class Layout { Contiguous, Transposed, Padded };

// A (B, H, T, HS) tensor of `dtype` on `device` holding `values` (float32, or NaN when undefined;
// rounded to bf16 for a bf16 tensor): contiguous, a transposed view of (B, T, H, HS) memory, or a
// narrowed view of a (B, H, T + 5, HS + 3) buffer (padding NaN).
struct Heads {
  Tensor base, view;
  HeadStrides strides() const { return {view.strides()[0], view.strides()[1], view.strides()[2]}; }
  template <class T = float>
  T* data() const {
    return view.data<T>();
  }
};
Heads make_heads(Device device, const Shape& s, Layout layout, const Tensor& values = Tensor(),
                 DType dtype = DType::F32) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Tensor v = values.defined() ? values : Tensor::full(s, nan);
  Heads d;
  if (layout == Layout::Contiguous) {
    d.base = v.clone().to(dtype).to(device);
    d.view = d.base;
  } else if (layout == Layout::Transposed) {
    d.base = transpose(v, 1, 2).clone().to(dtype).to(device);
    d.view = transpose(d.base, 1, 2);
  } else {
    Tensor host = Tensor::full({s[0], s[1], s[2] + 5, s[3] + 3}, nan);
    host.narrow(2, 0, s[2]).narrow(3, 0, s[3]).copy_(v);
    d.base = host.to(dtype).to(device);
    d.view = d.base.narrow(2, 0, s[2]).narrow(3, 0, s[3]);
  }
  return d;
}
// Every element of the base buffer outside the view is still NaN (nothing written past a row).
::testing::AssertionResult PaddingUntouched(const Heads& d, const std::string& what) {
  const std::vector<float> all =
      d.base.to(Device::CPU).contiguous().to(DType::F32).to_vector<float>();
  const Shape& s = d.view.shape();
  const Strides& st = d.view.strides();
  std::vector<char> inside(all.size(), 0);
  for (int64_t b = 0; b < s[0]; ++b)
    for (int64_t h = 0; h < s[1]; ++h)
      for (int64_t t = 0; t < s[2]; ++t)
        for (int64_t c = 0; c < s[3]; ++c)
          inside[size_t(b * st[0] + h * st[1] + t * st[2] + c)] = 1;
  for (size_t i = 0; i < all.size(); ++i)
    if (!inside[i] && !std::isnan(all[i]))
      return ::testing::AssertionFailure() << what << ": padding element " << i << " written";
  return ::testing::AssertionSuccess();
}

// max |got - want| <= rtol * max(max |want|, 1); got float or bf16 (any device, any layout), want
// double.
::testing::AssertionResult Near(const Tensor& got, const Tensor& want, double rtol,
                                const std::string& what) {
  const std::vector<float> g = got.to(Device::CPU).contiguous().to(DType::F32).to_vector<float>();
  const std::vector<double> w = want.contiguous().to_vector<double>();
  if (g.size() != w.size()) return ::testing::AssertionFailure() << what << ": sizes differ";
  double scale = 1, err = 0;
  size_t at = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    scale = std::max(scale, std::fabs(w[i]));
    const double e = std::fabs(double(g[i]) - w[i]);
    if (!(e <= err)) err = e, at = i;  // NaN (an element never written) counts as the worst
  }
  if (err <= rtol * scale) return ::testing::AssertionSuccess();
  const std::string dev = to_string(got.device());
  return ::testing::AssertionFailure()
         << what << ": max |" << dev << " - reference| = " << err << " at " << at << " (" << dev
         << " " << g[at] << ", reference " << w[at] << "), allowed " << rtol << " * " << scale;
}

struct Inputs {
  Tensor q, k, v, dout;  // CPU float32, contiguous (B, H, T, HS)
};
// N(0, 1) inputs; for bf16 rounded to bf16 values (still float32 tensors: the reference and the
// CPU half read them widened, the bf16 kernels get them converted exactly).
Inputs random_inputs(const Case& c, uint64_t seed, DType dtype = DType::F32) {
  Inputs in{randn32({c.B, c.NH, c.Tq, c.HS}, seed), randn32({c.B, c.KVH, c.Tk, c.HS}, seed + 1),
            randn32({c.B, c.KVH, c.Tk, c.HS}, seed + 2),
            randn32({c.B, c.NH, c.Tq, c.HS}, seed + 3)};
  if (dtype == DType::BF16)
    for (Tensor* x : {&in.q, &in.k, &in.v, &in.dout}) *x = x->to(DType::BF16).to(DType::F32);
  return in;
}

// lse_i = s_ij - log a_ij at the row's largest a_ij (at least 1 / Tk: no cancellation), from the
// CPU kernels' att (B, NH, Tq, Tk) and q, k in (strided) CPU memory.
template <class T>
void lse_from_att(const Case& c, const T* att, const T* q, HeadStrides sq, const T* k,
                  HeadStrides sk, T* lse) {
  const double scale = 1 / std::sqrt(double(c.HS));
  for (int64_t row = 0; row < c.B * c.NH * c.Tq; ++row) {
    const int64_t i = row % c.Tq, b = row / c.Tq / c.NH, h = row / c.Tq % c.NH;
    const T* a = att + row * c.Tk;
    const int64_t j = std::max_element(a, a + c.Tk) - a;
    const T* qi = q + b * sq.batch + h * sq.head + i * sq.pos;
    const T* kj = k + b * sk.batch + h / (c.NH / c.KVH) * sk.head + j * sk.pos;
    double s = 0;
    for (int64_t e = 0; e < c.HS; ++e) s += double(qi[e]) * double(kj[e]);
    lse[row] = T(scale * s - std::log(double(a[j])));
  }
}

struct Results {
  Tensor out, lse, dq, dk, dv;  // CPU double, contiguous
};
// The CPU kernels in double.
Results reference(const Case& c, const Inputs& in) {
  const Tensor q = in.q.to(DType::F64), k = in.k.to(DType::F64), v = in.v.to(DType::F64);
  const Tensor dout = in.dout.to(DType::F64);
  const HeadStrides sq = cpu::contiguous_heads(c.NH, c.Tq, c.HS);
  const HeadStrides skv = cpu::contiguous_heads(c.KVH, c.Tk, c.HS);
  Results r{Tensor::empty(q.shape(), DType::F64), Tensor::empty({c.B, c.NH, c.Tq}, DType::F64),
            Tensor::empty(q.shape(), DType::F64), Tensor::empty(k.shape(), DType::F64),
            Tensor::empty(k.shape(), DType::F64)};
  Tensor att = Tensor::empty({c.B, c.NH, c.Tq, c.Tk}, DType::F64);
  Tensor ds = Tensor::empty(att.shape(), DType::F64);
  cpu::attention_forward(q.data<double>(), sq, k.data<double>(), skv, v.data<double>(), skv,
                         r.out.data<double>(), sq, att.data<double>(), c.B, c.NH, c.KVH, c.Tq, c.Tk,
                         c.HS);
  cpu::attention_backward(q.data<double>(), sq, k.data<double>(), skv, v.data<double>(), skv,
                          att.data<double>(), dout.data<double>(), sq, r.dq.data<double>(), sq,
                          r.dk.data<double>(), r.dv.data<double>(), skv, ds.data<double>(), c.B,
                          c.NH, c.KVH, c.Tq, c.Tk, c.HS);
  lse_from_att(c, att.data<double>(), q.data<double>(), sq, k.data<double>(), skv,
               r.lse.data<double>());
  return r;
}

struct Outputs {
  Heads out, dq, dk, dv;
  Tensor lse;
};

// The flash kernels for element type T (float or bf16) on the GPU.
template <class T>
void run_flash(const Case& c, const Heads& q, const Heads& k, const Heads& v, const Heads& dout,
               Outputs& f) {
  cuda::flash_attention_forward(q.data<T>(), q.strides(), k.data<T>(), k.strides(), v.data<T>(),
                                v.strides(), f.out.data<T>(), f.out.strides(), f.lse.data<float>(),
                                c.B, c.NH, c.KVH, c.Tq, c.Tk, c.HS);
  cuda::flash_attention_backward(q.data<T>(), q.strides(), k.data<T>(), k.strides(), v.data<T>(),
                                 v.strides(), f.out.data<T>(), f.out.strides(), f.lse.data<float>(),
                                 dout.data<T>(), dout.strides(), f.dq.data<T>(), f.dq.strides(),
                                 f.dk.data<T>(), f.dv.data<T>(), f.dk.strides(), c.B, c.NH, c.KVH,
                                 c.Tq, c.Tk, c.HS);
  cuda::synchronize();
}

// The CPU float kernels, lse from their att.
void run_cpu(const Case& c, const Heads& q, const Heads& k, const Heads& v, const Heads& dout,
             Outputs& f) {
  Tensor att = Tensor::empty({c.B, c.NH, c.Tq, c.Tk}), ds = Tensor::empty(att.shape());
  cpu::attention_forward(q.data(), q.strides(), k.data(), k.strides(), v.data(), v.strides(),
                         f.out.data(), f.out.strides(), att.data<float>(), c.B, c.NH, c.KVH, c.Tq,
                         c.Tk, c.HS);
  lse_from_att(c, att.data<float>(), q.data(), q.strides(), k.data(), k.strides(),
               f.lse.data<float>());
  cpu::attention_backward(q.data(), q.strides(), k.data(), k.strides(), v.data(), v.strides(),
                          att.data<float>(), dout.data(), dout.strides(), f.dq.data(),
                          f.dq.strides(), f.dk.data(), f.dv.data(), f.dk.strides(),
                          ds.data<float>(), c.B, c.NH, c.KVH, c.Tq, c.Tk, c.HS);
}

// Float outputs rounded to bf16 into NaN-filled bf16 buffers of the same layout (lse stays float):
// what the op's CPU bf16 path stores.
Outputs rounded_to_bf16(const Outputs& g, Layout layout) {
  auto to_bf16 = [&](const Heads& h) {
    Heads r = make_heads(Device::CPU, h.view.shape(), layout, Tensor(), DType::BF16);
    r.view.copy_(h.view.to(DType::BF16));
    return r;
  };
  return {to_bf16(g.out), to_bf16(g.dq), to_bf16(g.dk), to_bf16(g.dv), g.lse};
}

// Forward then backward on `device`, inputs and outputs of `dtype` (float32 or bf16, lse float32)
// in `layout`, outputs starting as NaN: the flash kernels on the GPU; on the CPU the CPU float
// kernels (for bf16 on the widened inputs, outputs rounded to bf16), which checks this harness in
// every build.
Outputs run_device(Device device, const Case& c, const Inputs& in, Layout layout,
                   DType dtype = DType::F32) {
  if (device == Device::CPU && dtype == DType::BF16)
    return rounded_to_bf16(run_device(device, c, in, layout), layout);
  const Heads q = make_heads(device, in.q.shape(), layout, in.q, dtype);
  const Heads k = make_heads(device, in.k.shape(), layout, in.k, dtype);
  const Heads v = make_heads(device, in.v.shape(), layout, in.v, dtype);
  const Heads dout = make_heads(device, in.dout.shape(), layout, in.dout, dtype);
  const Tensor none;
  Outputs f{make_heads(device, in.q.shape(), layout, none, dtype),
            make_heads(device, in.q.shape(), layout, none, dtype),
            make_heads(device, in.k.shape(), layout, none, dtype),
            make_heads(device, in.k.shape(), layout, none, dtype),
            Tensor::full({c.B, c.NH, c.Tq}, std::numeric_limits<double>::quiet_NaN(), DType::F32,
                         device)};
  if (device == Device::CPU)
    run_cpu(c, q, k, v, dout, f);
  else if (dtype == DType::BF16)
    run_flash<bf16>(c, q, k, v, dout, f);
  else
    run_flash<float>(c, q, k, v, dout, f);
  return f;
}

::testing::AssertionResult Check(Device device, const Case& c, const Inputs& in,
                                 const Results& want, Layout layout, Rtol rtol,
                                 const std::string& mode, DType dtype = DType::F32) {
  const Outputs got = run_device(device, c, in, layout, dtype);
  const std::string what = mode + " " + name(c);
  for (auto r : {Near(got.out.view, want.out, rtol.out, what + " out"),
                 Near(got.lse, want.lse, rtol.lse, what + " lse"),
                 Near(got.dq.view, want.dq, rtol.grad, what + " dq"),
                 Near(got.dk.view, want.dk, rtol.grad, what + " dk"),
                 Near(got.dv.view, want.dv, rtol.grad, what + " dv")})
    if (!r) return r;
  if (layout == Layout::Padded)
    for (const Heads* d : {&got.out, &got.dq, &got.dk, &got.dv}) {
      ::testing::AssertionResult r = PaddingUntouched(*d, what);
      if (!r) return r;
    }
  return ::testing::AssertionSuccess();
}
// Random inputs of `dtype`'s values, checked against the CPU double kernels on those values.
::testing::AssertionResult Matches(Device device, const Case& c, uint64_t seed, Layout layout,
                                   Rtol rtol, const std::string& mode, DType dtype = DType::F32) {
  const Inputs in = random_inputs(c, seed, dtype);
  return Check(device, c, in, reference(c, in), layout, rtol, mode, dtype);
}

TEST_P(CudaFlashAttention, SupportedHeadSizes) {
  EXPECT_FALSE(cuda::flash_attention_supported(0));
  EXPECT_TRUE(cuda::flash_attention_supported(1));
  EXPECT_TRUE(cuda::flash_attention_supported(64));
  EXPECT_TRUE(cuda::flash_attention_supported(128));
  EXPECT_FALSE(cuda::flash_attention_supported(129));
  if (device() != Device::CUDA) return;
  const Case c{1, 1, 1, 4, 4, 129};
  EXPECT_THROW(run_device(device(), c, random_inputs(c, 1), Layout::Contiguous), Error);
}

TEST_P(CudaFlashAttention, Fp32MatchesCpu) {
  for (const Case& c : kCases)
    EXPECT_TRUE(Matches(device(), c, 11, Layout::Contiguous, kFp32, "fp32"));
}

TEST_P(CudaFlashAttention, Tf32MatchesCpu) {
  use_tf32();
  for (const Case& c : kCases)
    EXPECT_TRUE(Matches(device(), c, 11, Layout::Contiguous, kTf32, "tf32"));
}

// bf16 in and out, tensor cores whatever set_tf32 says (it stays off here), every case and the
// strided layouts.
TEST_P(CudaFlashAttention, Bf16MatchesCpu) {
  for (const Case& c : kCases)
    EXPECT_TRUE(Matches(device(), c, 11, Layout::Contiguous, kBf16, "bf16", DType::BF16));
  for (Layout layout : {Layout::Transposed, Layout::Padded})
    for (const Case& c : kStridedCases)
      EXPECT_TRUE(Matches(device(), c, 21, layout, kBf16,
                          layout == Layout::Padded ? "bf16 padded" : "bf16 transposed",
                          DType::BF16));
}

TEST_P(CudaFlashAttention, StridedLayouts) {
  for (bool tf32 : {false, true}) {
    if (tf32) use_tf32();
    for (Layout layout : {Layout::Transposed, Layout::Padded})
      for (const Case& c : kStridedCases)
        EXPECT_TRUE(Matches(device(), c, 21, layout, tf32 ? kTf32 : kFp32,
                            std::string(tf32 ? "tf32" : "fp32") +
                                (layout == Layout::Padded ? " padded" : " transposed")));
  }
}

TEST_P(CudaFlashAttention, Gpt2SmallShapes) {
  if (device() != Device::CUDA) GTEST_SKIP() << "GPU-sized: the harness is checked by the others";
  for (int64_t kvh : {12, 4, 1}) {
    const Case c{2, 12, kvh, 1024, 1024, 64};
    const Inputs in = random_inputs(c, 31);
    const Results want = reference(c, in);
    cuda::set_tf32(true);
    EXPECT_TRUE(Check(device(), c, in, want, Layout::Transposed, kTf32, "tf32"));
    cuda::set_tf32(false);
    EXPECT_TRUE(Check(device(), c, in, want, Layout::Contiguous, kFp32, "fp32"));
  }
}

TEST_P(CudaFlashAttention, BackwardIsDeterministic) {
  const Case c{2, 8, 2, 190, 200, 64};
  const Inputs in = random_inputs(c, 41);
  auto twice = [&](DType dtype, const std::string& mode) {
    const Outputs a = run_device(device(), c, in, Layout::Transposed, dtype);
    const Outputs b = run_device(device(), c, in, Layout::Transposed, dtype);
    EXPECT_TRUE(Same(a.out.view, b.out.view, mode + " out"));
    EXPECT_TRUE(Same(a.lse, b.lse, mode + " lse"));
    EXPECT_TRUE(Same(a.dq.view, b.dq.view, mode + " dq"));
    EXPECT_TRUE(Same(a.dk.view, b.dk.view, mode + " dk"));
    EXPECT_TRUE(Same(a.dv.view, b.dv.view, mode + " dv"));
  };
  twice(DType::F32, "fp32");
  use_tf32();
  twice(DType::F32, "tf32");
  twice(DType::BF16, "bf16");
}

INSTANTIATE_TEST_SUITE_P(Devices, CudaFlashAttention, ::testing::Values(Device::CUDA, Device::CPU),
                         device_name);

}  // namespace
}  // namespace lmlab::test
