// Row norms on the GPU, forward + backward: RMSNorm and LayerNorm over rows as short as a head
// (QK-norm: B 8 x T 1024 x 12 heads = 98304 rows of 64, and of 24) and as long as GPT-2 small's
// residual stream (8192 rows of 768). Rows of up to 1024 values run one warp per row, longer ones
// one block per row (autograd/kernels/cuda/norm.cu). Times are medians over --reps runs after 3
// warm-up runs, by CUDA events; GB/s counts the bytes each kernel must move (forward: x, y, w;
// backward: dy, x, dx and the row statistics), so the H200's ~4.8 TB/s is the roof.
//
//   bench_gpu_norm [--reps 50]
// One readable line per case, then a "NORM key=value ..." line (scripts/gpu_check.sh logs both).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "autograd/kernels/cuda_runtime.h"
#include "autograd/kernels/norm.h"
#include "autograd/random.h"
#include "autograd/tensor.h"
#include "train/common/stats.h"

using namespace lmlab;

namespace {

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw Error(std::string("[bench] ") + what + ": " + cudaGetErrorString(err));
}

// Median time in ms of `fn` over `reps` runs after 3 warm-up runs.
double median_ms(const std::function<void()>& fn, int reps) {
  cudaEvent_t start, end;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&end), "cudaEventCreate");
  std::vector<double> t;
  for (int r = 0; r < 3 + reps; ++r) {
    check(cudaEventRecord(start, 0), "cudaEventRecord");
    fn();
    check(cudaEventRecord(end, 0), "cudaEventRecord");
    check(cudaEventSynchronize(end), "cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start, end), "cudaEventElapsedTime");
    if (r >= 3) t.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(end);
  return train::median(t);
}

void run_case(const char* norm, int64_t rows, int64_t C, int reps) {
  Generator gen(1);
  auto dev = [&](std::vector<int64_t> shape) {
    return Tensor::randn(Shape(shape), gen, DType::F32).to(Device::CUDA);
  };
  const Tensor x = dev({rows, C}), w = dev({C}), b = dev({C}), dy = dev({rows, C});
  Tensor y = dev({rows, C}), dx = dev({rows, C}), dw = dev({C}), db = dev({C});
  Tensor mean = dev({rows}), rstd = dev({rows});
  const bool rms = std::string(norm) == "rms";
  const double fwd = median_ms(
      [&] {
        if (rms)
          cuda::rmsnorm_forward(x.data<float>(), w.data<float>(), y.data<float>(),
                                rstd.data<float>(), rows, C, 1e-5);
        else
          cuda::layernorm_forward(x.data<float>(), w.data<float>(), b.data<float>(),
                                  y.data<float>(), mean.data<float>(), rstd.data<float>(), rows, C,
                                  1e-5);
      },
      reps);
  const double bwd = median_ms(
      [&] {
        if (rms)
          cuda::rmsnorm_backward(dy.data<float>(), x.data<float>(), w.data<float>(),
                                 rstd.data<float>(), dx.data<float>(), dw.data<float>(), rows, C);
        else
          cuda::layernorm_backward(dy.data<float>(), x.data<float>(), w.data<float>(),
                                   mean.data<float>(), rstd.data<float>(), dx.data<float>(),
                                   dw.data<float>(), db.data<float>(), rows, C);
      },
      reps);
  const double row_bytes = double(rows) * double(C) * 4;
  const double fwd_gbs = 2 * row_bytes / (fwd * 1e6), bwd_gbs = 3 * row_bytes / (bwd * 1e6);
  std::printf("%s norm %lld x %lld: forward %.3f ms (%.0f GB/s) | backward %.3f ms (%.0f GB/s)\n",
              norm, (long long)rows, (long long)C, fwd, fwd_gbs, bwd, bwd_gbs);
  std::printf("NORM norm=%s rows=%lld C=%lld fwd_ms=%.4f fwd_gbs=%.0f bwd_ms=%.4f bwd_gbs=%.0f\n",
              norm, (long long)rows, (long long)C, fwd, fwd_gbs, bwd, bwd_gbs);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 50;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) != "--reps") {
      std::fprintf(stderr, "bench_gpu_norm: unknown option %s\n", argv[i]);
      return 2;
    }
    reps = std::max(1, std::atoi(argv[i + 1]));
  }
  if (!cuda::available()) {
    std::fprintf(stderr, "bench_gpu_norm: %s\n", cuda::unavailable_reason().c_str());
    return 1;
  }
  try {
    for (const char* norm : {"rms", "layer"})
      for (const auto& [rows, C] : std::vector<std::pair<int64_t, int64_t>>{
               {98304, 24}, {98304, 64}, {98304, 128}, {8192, 768}, {8192, 1536}, {2048, 4096}})
        run_case(norm, rows, C, reps);
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_gpu_norm: %s\n", e.what());
    return 1;
  }
  return 0;
}
