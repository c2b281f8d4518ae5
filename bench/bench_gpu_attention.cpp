// Attention kernels on the GPU, forward + backward: the cuBLAS path (cuda::attention_forward /
// _backward, which materialise att and dscores, (B, NH, T, T) floats each) against the flash
// kernels (cuda::flash_attention_*, which keep the row log-sum-exp and a row term D, (B, NH, T)
// each) at GPT-2 small's attention: B 8, NH 12, KVH 12, HS 64, T 1024, 2048 and 4096. TF32 on
// (tensor cores for both), then one fp32 case (cuBLAS fp32 against the flash kernels' FMA path).
// Times are medians over --reps runs after 3 warm-up runs, by CUDA events on the one stream.
// Each case also prints the largest difference between the two paths' results, relative to the
// cuBLAS result's largest magnitude (TF32: ~1e-3 expected; anything near 1 is a bug).
//
//   bench_gpu_attention [--reps 20] [--batch 8] [--heads 12] [--kv-heads 12]
// One readable line per case, then an "ATTN key=value ..." line (scripts/gpu_check.sh logs both).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "autograd/kernels/attention.h"
#include "autograd/kernels/cuda_runtime.h"
#include "autograd/random.h"
#include "autograd/tensor.h"
#include "train/common/stats.h"

using namespace lmlab;

namespace {

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw Error(std::string("[bench] ") + what + ": " + cudaGetErrorString(err));
}

struct Shape4 {
  int64_t B, NH, KVH, T, HS;
};

// Median forward and forward + backward times in ms of `reps` runs after 3 warm-up runs.
struct Times {
  double fwd_ms, total_ms;
};
Times time_runs(const std::function<void()>& fwd, const std::function<void()>& bwd, int reps) {
  cudaEvent_t start, mid, end;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&mid), "cudaEventCreate");
  check(cudaEventCreate(&end), "cudaEventCreate");
  std::vector<double> f, t;
  for (int r = 0; r < 3 + reps; ++r) {
    check(cudaEventRecord(start, 0), "cudaEventRecord");  // the legacy default stream
    fwd();
    check(cudaEventRecord(mid, 0), "cudaEventRecord");
    bwd();
    check(cudaEventRecord(end, 0), "cudaEventRecord");
    check(cudaEventSynchronize(end), "cudaEventSynchronize");
    float a = 0, b = 0;
    check(cudaEventElapsedTime(&a, start, mid), "cudaEventElapsedTime");
    check(cudaEventElapsedTime(&b, start, end), "cudaEventElapsedTime");
    if (r >= 3) f.push_back(a), t.push_back(b);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(mid);
  cudaEventDestroy(end);
  return {train::median(f), train::median(t)};
}

// max |a - b| / max |b| over two device tensors of one shape.
double rel_diff(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_vector<float>(), y = b.to_vector<float>();
  double err = 0, scale = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    scale = std::max(scale, double(std::fabs(y[i])));
    const double e = std::fabs(double(x[i]) - double(y[i]));
    if (!(e <= err)) err = e;
  }
  return err / std::max(scale, 1e-30);
}

// The flash path's results against the cuBLAS path's (rel_diff of each).
struct Diffs {
  double out, dq, dk, dv;
  double max() const { return std::max({out, dq, dk, dv}); }
};

// A case's readable line and its ATTN key=value line; scratch_mb is the flash kernels' own.
void print_case(const Shape4& s, bool tf32, const Times& cublas, const Times& flash,
                double scratch_mb, const Diffs& d) {
  const double att_mb = 2.0 * double(s.B * s.NH * s.T * s.T) * 4 / 1e6;
  const double lse_mb = double(s.B * s.NH * s.T) * 4 / 1e6;
  std::printf(
      "attention B=%lld NH=%lld KVH=%lld T=%lld HS=%lld %s: cuBLAS %.2f ms (fwd %.2f) | flash "
      "%.2f ms (fwd %.2f) | %.2fx | att+dscores %.1f MB vs lse %.2f MB + scratch %.2f MB | "
      "flash vs cuBLAS: out %.1e dq %.1e dk %.1e dv %.1e%s\n",
      (long long)s.B, (long long)s.NH, (long long)s.KVH, (long long)s.T, (long long)s.HS,
      tf32 ? "TF32" : "FP32", cublas.total_ms, cublas.fwd_ms, flash.total_ms, flash.fwd_ms,
      cublas.total_ms / flash.total_ms, att_mb, lse_mb, scratch_mb, d.out, d.dq, d.dk, d.dv,
      d.max() > 1e-2 ? "  MISMATCH" : "");
  std::printf(
      "ATTN B=%lld NH=%lld KVH=%lld T=%lld HS=%lld tf32=%d cublas_ms=%.3f cublas_fwd_ms=%.3f "
      "flash_ms=%.3f flash_fwd_ms=%.3f att_dscores_mb=%.1f lse_mb=%.2f flash_scratch_mb=%.2f "
      "max_rel_diff=%.2e\n",
      (long long)s.B, (long long)s.NH, (long long)s.KVH, (long long)s.T, (long long)s.HS,
      tf32 ? 1 : 0, cublas.total_ms, cublas.fwd_ms, flash.total_ms, flash.fwd_ms, att_mb, lse_mb,
      scratch_mb, d.max());
  std::fflush(stdout);
}

void run_case(const Shape4& s, bool tf32, int reps) {
  cuda::set_tf32(tf32);
  const int64_t B = s.B, NH = s.NH, KVH = s.KVH, T = s.T, HS = s.HS;
  Generator gen(1);
  auto randn = [&](int64_t heads) {
    return Tensor::randn({B, heads, T, HS}, gen, DType::F32).to(Device::CUDA);
  };
  const Tensor q = randn(NH), k = randn(KVH), v = randn(KVH), dout = randn(NH);
  auto like = [](const Tensor& t) { return Tensor::empty(t.shape(), DType::F32, Device::CUDA); };
  // The cuBLAS path, with its (B, NH, T, T) att and dscores.
  Tensor out_c = like(q), dq_c = like(q), dk_c = like(k), dv_c = like(k);
  Tensor att = Tensor::empty({B, NH, T, T}, DType::F32, Device::CUDA), ds = like(att);
  const Times cublas = time_runs(
      [&] {
        cuda::attention_forward(q.data<float>(), k.data<float>(), v.data<float>(),
                                out_c.data<float>(), att.data<float>(), B, NH, KVH, T, T, HS);
      },
      [&] {
        cuda::attention_backward(q.data<float>(), k.data<float>(), v.data<float>(),
                                 att.data<float>(), dout.data<float>(), dq_c.data<float>(),
                                 dk_c.data<float>(), dv_c.data<float>(), ds.data<float>(), B, NH,
                                 KVH, T, T, HS);
      },
      reps);
  att = Tensor(), ds = Tensor();
  cuda::release_cache();
  // The flash kernels, with lse; D is their own scratch (measured as the peak above the inputs).
  const cuda::HeadStrides sq = cuda::contiguous_heads(NH, T, HS);
  const cuda::HeadStrides skv = cuda::contiguous_heads(KVH, T, HS);
  Tensor out_f = like(q), dq_f = like(q), dk_f = like(k), dv_f = like(k);
  Tensor lse = Tensor::empty({B, NH, T}, DType::F32, Device::CUDA);
  cuda::synchronize();
  const size_t before = cuda::allocated_bytes();
  cuda::reset_peak_bytes();
  const Times flash = time_runs(
      [&] {
        cuda::flash_attention_forward(q.data<float>(), sq, k.data<float>(), skv, v.data<float>(),
                                      skv, out_f.data<float>(), sq, lse.data<float>(), B, NH, KVH,
                                      T, T, HS);
      },
      [&] {
        cuda::flash_attention_backward(
            q.data<float>(), sq, k.data<float>(), skv, v.data<float>(), skv, out_f.data<float>(),
            sq, lse.data<float>(), dout.data<float>(), sq, dq_f.data<float>(), sq,
            dk_f.data<float>(), dv_f.data<float>(), skv, B, NH, KVH, T, T, HS);
      },
      reps);
  const Diffs d{rel_diff(out_f, out_c), rel_diff(dq_f, dq_c), rel_diff(dk_f, dk_c),
                rel_diff(dv_f, dv_c)};
  print_case(s, tf32, cublas, flash, double(cuda::peak_bytes() - before) / 1e6, d);
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 20;
  Shape4 s{8, 12, 12, 0, 64};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    const long long value = std::atoll(argv[i + 1]);
    if (key == "--reps")
      reps = int(std::max(1LL, value));
    else if (key == "--batch")
      s.B = value;
    else if (key == "--heads")
      s.NH = value;
    else if (key == "--kv-heads")
      s.KVH = value;
    else {
      std::fprintf(stderr, "bench_gpu_attention: unknown option %s\n", key.c_str());
      return 2;
    }
  }
  if (!cuda::available()) {
    std::fprintf(stderr, "bench_gpu_attention: %s\n", cuda::unavailable_reason().c_str());
    return 1;
  }
  try {
    for (int64_t T : {1024, 2048, 4096}) {
      s.T = T;
      run_case(s, true, reps);
    }
    s.T = 1024;
    run_case(s, false, reps);
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_gpu_attention: %s\n", e.what());
    return 1;
  }
  return 0;
}
