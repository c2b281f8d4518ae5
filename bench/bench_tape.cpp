// The tape's own cost (Google Benchmark): a graph of 1-element tensors, so the ops' arithmetic is
// negligible and what is timed is recording, the backward scan and run, freeing, and the op
// dispatch around them. Per node: divide by state.counters["nodes"]. docs/PERFORMANCE.md has the
// numbers and how they compare with a training step.
#include <benchmark/benchmark.h>

#include "autograd/ops.h"
#include "autograd/tape.h"

using namespace lmlab;

namespace {

// A chain of `links` blocks y = tanh(y) * w + x (3 nodes each; tanh saves its output), then
// backward from sum(y): 3 * links + 1 nodes recorded and freed per iteration.
void tape_chain(benchmark::State& state) {
  const int64_t links = state.range(0);
  Tensor x = Tensor::ones({1}).requires_grad_();
  Tensor w = Tensor::full({1}, 0.5).requires_grad_();
  for (auto _ : state) {
    Tensor y = x;
    for (int64_t i = 0; i < links; ++i) y = add(mul(tanh(y), w), x);
    tape::backward(sum(y));
    x.zero_grad();
    w.zero_grad();
  }
  state.counters["nodes"] = double(3 * links + 1);
  state.counters["us/node"] =
      benchmark::Counter(double(state.iterations()) * double(3 * links + 1) / 1e6,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

}  // namespace

BENCHMARK(tape_chain)->Arg(50)->Arg(500)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
