// `lmlab bench`: the speed of full training steps (forward, cross-entropy, backward, clipping,
// optimizer step), as tokens/s, achieved GFLOP/s and MFU against the machine's own measured sgemm
// peak, with peak memory, BLAS kernels and threads. docs/PERFORMANCE.md explains every number.
#pragma once
#include <cstdint>
#include <string>

#include "train/config/config.h"

namespace lmlab::train {

struct BenchOptions {
  int64_t steps = 20;     // timed steps (the median is reported)
  int64_t warmup = 3;     // untimed steps first (allocator, caches, lazily made optimizer state)
  int64_t peak_n = 2048;  // sgemm size for the peak measurement (0: skip it)
};

struct BenchResult {
  std::string name;             // the variant (or the config's stem)
  int64_t tokens_per_step = 0;  // batch_size * block_size * grad_accum
  int64_t num_parameters = 0;
  double step_ms = 0, step_ms_min = 0, step_ms_max = 0;  // median, fastest, slowest timed step
  double tokens_per_s = 0;                               // tokens_per_step / median step time
  double flops_per_step = 0;  // model FLOPs (train_flops_per_token * tokens_per_step)
  double gflops = 0;          // flops_per_step / median step time
  double peak_gflops = 0;     // measured sgemm peak with the same threads (0: not measured)
  double mfu = 0;             // gflops / peak_gflops
  double peak_rss_mb = 0;     // the process's peak resident memory
  double step_rss_mb = 0;     // peak resident memory minus the resident memory before the steps
  std::string blas_core;
  std::string blas_library;  // which OpenBLAS build (OpenMP or pthread) was loaded
  std::string gemm_backend;  // the library of every float32 GEMM (cpu::sgemm_backend)
  int threads = 0;
};

// Model FLOPs of one training token (forward + backward = 3x forward): 6 per weight of every
// matrix product (attention, MLP and the LM head; not embedding lookups, norms or biases) plus
// the attention scores and their use, 12 * n_layer * block_size * n_embd -- the PaLM / nanoGPT
// estimate_mfu convention (full T x T, not the causal half). Elementwise work is not counted.
double train_flops_per_token(const nn::ModelConfig& m);

// Builds the config's model, optimizer and data (as `lmlab train` does), runs warmup + steps
// training steps and measures them. Writes nothing to disk. cfg.train.threads is applied.
BenchResult run_bench(const TrainConfig& cfg, const std::string& name, const BenchOptions& o);

// The resolved config as JSON for tools/bench_torch.py: model (every ModelConfig key, vocab from
// the tokenizer), batch_size, grad_accum, threads, seed and optim.
std::string bench_config_json(const TrainConfig& cfg);

// Human-readable report of one result (a few lines) and one JSON line.
std::string format_bench(const BenchResult& r);
std::string bench_json(const BenchResult& r);

}  // namespace lmlab::train
