// Layer benchmarks (Google Benchmark): fused RMSNorm vs fused LayerNorm, forward + backward, at
// the (B*T, C) sizes of issue 3 and at QK-norm's short rows (a head's 24 or 64 values), and causal
// attention forward + backward for n_kv_head in {n_head, 2, 1}. How to run them and the numbers
// measured: docs/PERFORMANCE.md.
#include <benchmark/benchmark.h>

#include "autograd/ops.h"

using namespace lmlab;

namespace {

Tensor random_f32(const Shape& shape, uint64_t seed, bool grad = false) {
  Generator gen(seed);
  Tensor t = Tensor::randn(shape, gen);
  if (grad) t.requires_grad_();
  return t;
}

// One forward + backward of a norm over (rows, C), upstream gradient dy (the loss is sum(y * dy)).
template <class Norm>
void norm_fwd_bwd(benchmark::State& state, Norm norm) {
  const int64_t rows = state.range(0), C = state.range(1);
  Tensor x = random_f32({rows, C}, 1, true), w = random_f32({C}, 2, true);
  Tensor b = random_f32({C}, 3, true), dy = random_f32({rows, C}, 4);
  for (auto _ : state) {
    Tensor y = norm(x, w, b);
    tape::backward(y, dy);
    benchmark::DoNotOptimize(x.grad().data<float>());
    x.zero_grad(), w.zero_grad(), b.zero_grad();
  }
  // bytes touched: x, y forward; x, dy, dx backward (weights are small)
  state.SetBytesProcessed(int64_t(state.iterations()) * rows * C * 5 * int64_t(sizeof(float)));
}

void layer_norm_bench(benchmark::State& state) {
  norm_fwd_bwd(
      state, [](const Tensor& x, const Tensor& w, const Tensor& b) { return layer_norm(x, w, b); });
}

void rms_norm_bench(benchmark::State& state) {
  norm_fwd_bwd(state,
               [](const Tensor& x, const Tensor& w, const Tensor&) { return rms_norm(x, w); });
}

// Causal attention forward + backward: B 8, NH 8, T, HS 32, KVH from the second argument.
void attention_bench(benchmark::State& state) {
  const int64_t B = 8, NH = 8, T = state.range(0), HS = 32, KVH = state.range(1);
  Tensor q = random_f32({B, NH, T, HS}, 1, true), k = random_f32({B, KVH, T, HS}, 2, true);
  Tensor v = random_f32({B, KVH, T, HS}, 3, true), dy = random_f32({B, NH, T, HS}, 4);
  for (auto _ : state) {
    Tensor y = causal_attention(q, k, v);
    tape::backward(y, dy);
    benchmark::DoNotOptimize(q.grad().data<float>());
    q.zero_grad(), k.zero_grad(), v.zero_grad();
  }
  state.counters["kv_heads"] = double(KVH);
}

}  // namespace

BENCHMARK(layer_norm_bench)
    ->Args({4096, 128})
    ->Args({4096, 512})
    ->Args({16384, 768})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(rms_norm_bench)
    ->Args({4096, 128})
    ->Args({4096, 512})
    ->Args({16384, 768})
    ->Unit(benchmark::kMicrosecond);
// QK-norm's rows (one per head and position) against long rows, 1.5M values each.
BENCHMARK(rms_norm_bench)
    ->Args({65536, 24})
    ->Args({24576, 64})
    ->Args({2048, 768})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(attention_bench)
    ->Args({128, 8})
    ->Args({128, 2})
    ->Args({128, 1})
    ->Args({256, 8})
    ->Args({256, 2})
    ->Args({256, 1})
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
