// Op micro-benchmarks (Google Benchmark): sgemm through lmlab::matmul next to a direct cblas_sgemm
// on identical inputs (GFLOP/s), and the memory-bound ops add, gelu, softmax and the
// cross-entropy (GB/s).
// How to run them and the numbers measured: docs/PERFORMANCE.md.
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "autograd/tape.h"

using namespace lmlab;

namespace {

Tensor random_f32(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  return Tensor::randn(shape, gen);
}

// 2 M N K floating-point operations per GEMM, reported per second of wall time.
void set_gflops(benchmark::State& state, double M, double N, double K) {
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * K * double(state.iterations()) / 1e9,
                                                 benchmark::Counter::kIsRate);
}

// y (n, n) = a @ b through the op: checks, output allocation, layout choice, one GEMM.
void matmul_op(benchmark::State& state) {
  const int64_t n = state.range(0);
  NoGradGuard no_grad;
  Tensor a = random_f32({n, n}, 1), b = random_f32({n, n}, 2);
  for (auto _ : state) {
    Tensor y = matmul(a, b);
    benchmark::DoNotOptimize(y.data<float>());
  }
  set_gflops(state, double(n), double(n), double(n));
}

// The same product as one cblas_sgemm call on buffers made the same way, into a preallocated
// y: (M, K) @ (K, N) with args (M, N, K).
void matmul_cblas(benchmark::State& state) {
  const int M = int(state.range(0)), N = int(state.range(1)), K = int(state.range(2));
  Tensor a = random_f32({M, K}, 1), b = random_f32({K, N}, 2), y = Tensor::empty({M, N});
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a.data<float>(), K,
                b.data<float>(), N, 0.0f, y.data<float>(), N);
    benchmark::ClobberMemory();
  }
  set_gflops(state, M, N, K);
}

// y = a @ w^T with w^T a transposed view: BLAS reads it with the Trans flag, no copy.
void matmul_op_trans_b(benchmark::State& state) {
  const int64_t n = state.range(0);
  NoGradGuard no_grad;
  Tensor a = random_f32({n, n}, 1), w = random_f32({n, n}, 2);
  Tensor wt = transpose(w, -1, -2);
  for (auto _ : state) {
    Tensor y = matmul(a, wt);
    benchmark::DoNotOptimize(y.data<float>());
  }
  set_gflops(state, double(n), double(n), double(n));
}

// A linear layer's forward, (B, T, C) @ (C, 4C) with B 16, T 128, C 256: one GEMM of 2048 rows.
void linear_op(benchmark::State& state) {
  const int64_t B = 16, T = 128, C = 256;
  NoGradGuard no_grad;
  Tensor x = random_f32({B, T, C}, 3), w = random_f32({C, 4 * C}, 4);
  for (auto _ : state) {
    Tensor y = matmul(x, w);
    benchmark::DoNotOptimize(y.data<float>());
  }
  set_gflops(state, double(B * T), double(4 * C), double(C));
}

// y = a + b over 16M floats: reads 2 and writes 1 float per element.
void add_op(benchmark::State& state) {
  const int64_t n = int64_t(1) << 24;
  NoGradGuard no_grad;
  Tensor a = random_f32({n}, 5), b = random_f32({n}, 6);
  for (auto _ : state) {
    Tensor y = add(a, b);
    benchmark::DoNotOptimize(y.data<float>());
  }
  state.SetBytesProcessed(state.iterations() * n * 3 * int64_t(sizeof(float)));
}

// y = gelu(x) over 16M floats: reads 1 and writes 1 float per element.
void gelu_op(benchmark::State& state) {
  const int64_t n = int64_t(1) << 24;
  NoGradGuard no_grad;
  Tensor x = random_f32({n}, 7);
  for (auto _ : state) {
    Tensor y = gelu(x);
    benchmark::DoNotOptimize(y.data<float>());
  }
  state.SetBytesProcessed(state.iterations() * n * 2 * int64_t(sizeof(float)));
}

// softmax over the last dim of (4096, 1024) floats; counts each element read once and written
// once (the least traffic possible; a kernel that reads x twice moves more).
void softmax_op(benchmark::State& state) {
  const int64_t rows = 4096, cols = 1024;
  NoGradGuard no_grad;
  Tensor x = random_f32({rows, cols}, 8);
  for (auto _ : state) {
    Tensor y = softmax(x, -1);
    benchmark::DoNotOptimize(y.data<float>());
  }
  state.SetBytesProcessed(state.iterations() * rows * cols * 2 * int64_t(sizeof(float)));
}

// The mean cross-entropy of (rows, V) logits and its gradient, forward and backward: each logit
// read and its gradient written, so counts 2 floats per element. V 65 is the char vocabulary of
// the nanoGPT-CPU size, 8192 a BPE one; args (rows, V).
void cross_entropy_op(benchmark::State& state) {
  const int64_t rows = state.range(0), V = state.range(1);
  Tensor logits = random_f32({rows, V}, 9);
  logits.requires_grad_();
  std::vector<int32_t> t(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) t[size_t(r)] = int32_t((r * 7919) % V);
  const Tensor targets = Tensor::from_vector(t, {rows});
  for (auto _ : state) {
    logits.zero_grad();
    tape::backward(cross_entropy(logits, targets));
    benchmark::DoNotOptimize(logits.grad().data<float>());
  }
  state.SetBytesProcessed(state.iterations() * rows * V * 2 * int64_t(sizeof(float)));
}

// Wall time throughout (BLAS and OpenMP threads do the work, not only the calling thread), and a
// "min" next to Google Benchmark's mean / median / stddev: on a shared machine noise only adds.
benchmark::internal::Benchmark* timed(benchmark::internal::Benchmark* b) {
  return b->UseRealTime()->ComputeStatistics(
      "min", [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); });
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // Which kernels and how many threads: the numbers mean little without these.
  benchmark::AddCustomContext("openblas_corename", openblas_get_corename());
  benchmark::AddCustomContext("openblas_threads", std::to_string(openblas_get_num_threads()));
  benchmark::AddCustomContext("omp_max_threads", std::to_string(omp_get_max_threads()));
  // n = 16 probes the fixed cost per call (checks, output allocation), which larger n amortise.
  for (int64_t n : {16, 256, 512, 1024, 2048}) {
    timed(benchmark::RegisterBenchmark("sgemm/lmlab", matmul_op)->Arg(n));
    timed(benchmark::RegisterBenchmark("sgemm/cblas", matmul_cblas)->Args({n, n, n}));
  }
  timed(benchmark::RegisterBenchmark("sgemm_trans_b/lmlab", matmul_op_trans_b)->Arg(1024));
  timed(benchmark::RegisterBenchmark("linear_2048x256x1024/lmlab", linear_op));
  timed(benchmark::RegisterBenchmark("linear_2048x256x1024/cblas", matmul_cblas)
            ->Args({2048, 1024, 256}));
  timed(benchmark::RegisterBenchmark("add_16M/lmlab", add_op));
  timed(benchmark::RegisterBenchmark("gelu_16M/lmlab", gelu_op));
  timed(benchmark::RegisterBenchmark("softmax_4096x1024/lmlab", softmax_op));
  for (int64_t V : {65, 8192})
    timed(benchmark::RegisterBenchmark("cross_entropy_fwd_bwd/lmlab", cross_entropy_op)
              ->Args({768, V}));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
