#include "train/run/bench.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "autograd/error.h"
#include "autograd/kernels/matmul.h"
#include "autograd/tape.h"
#include "autograd/threads.h"
#include "data/dataset.h"
#include "data/tokenizer.h"
#include "nn/transformer.h"
#include "optim/clip.h"
#include "optim/optimizer.h"
#include "train/common/stats.h"
#include "train/config/options_doc.h"
#include "train/run/data_setup.h"
#include "train/run/trainer.h"

namespace lmlab::train {

namespace {

using Clock = std::chrono::steady_clock;

double resident_mb() {
  std::ifstream f("/proc/self/statm");
  long pages = 0, resident = 0;
  f >> pages >> resident;
  return double(resident) * double(sysconf(_SC_PAGESIZE)) / (1 << 20);
}

double peak_resident_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) / 1024.0;
}

// Resolves vocab_size from the tokenizer, as `lmlab train` does.
struct Setup {
  TrainConfig cfg;
  data::Tokenizer tok;
  data::TokenDataset data;
};

Setup setup(const TrainConfig& in) {
  TrainConfig cfg = in;
  RunData d = load_run_data(cfg.data, cfg.model.block_size);
  cfg.model.vocab_size = d.tokenizer.vocab_size();
  validate(cfg);
  return Setup{cfg, std::move(d.tokenizer), std::move(d.dataset)};
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace

double train_flops_per_token(const nn::ModelConfig& m) {
  const double d = double(m.n_embd), hs = double(m.head_size());
  const double q = double(m.n_head) * hs, kv = double(m.n_kv_head) * hs;
  const double h = double(m.hidden_size());
  const double mlp = m.mlp == nn::MlpType::Gelu ? 2 * d * h : 3 * d * h;
  const double per_layer = d * q + 2 * d * kv + q * d + mlp;
  const double weights = double(m.n_layer) * per_layer + d * double(m.vocab_size);
  return 6 * weights + 12 * double(m.n_layer) * double(m.block_size) * q;
}

BenchResult run_bench(const TrainConfig& cfg_in, const std::string& name, const BenchOptions& o) {
  if (o.steps < 1) throw Error("[bench] --steps must be >= 1");
  if (cfg_in.train.device != "cpu")
    throw Error("[bench] train.device " + cfg_in.train.device +
                ": lmlab bench measures the CPU backend (the GPU has bench/bench_gpu_train)");
  set_num_threads(int(cfg_in.train.threads));
  Setup s = setup(cfg_in);
  const TrainConfig& cfg = s.cfg;
  BenchResult r;
  r.name = name;
  r.threads = num_threads();
  r.blas_core = blas_core_name();
  r.blas_library = blas_library_path();
  r.gemm_backend = cpu::sgemm_backend();
  if (o.peak_n > 0) r.peak_gflops = blas_sgemm_gflops(o.peak_n);

  Generator init_gen(uint64_t(cfg.train.seed));
  nn::TransformerLM model(cfg.model, init_gen);
  model.train();
  std::unique_ptr<optim::Optimizer> optimizer = make_optimizer(cfg, model);
  Generator data_gen(uint64_t(cfg.train.seed) + 1);
  const int64_t B = cfg.train.batch_size, T = cfg.model.block_size, accum = cfg.train.grad_accum;
  r.tokens_per_step = B * T * accum;
  r.num_parameters = model.num_parameters();
  const std::vector<Tensor> params = model.parameters();

  // One step exactly as the trainer runs it (minus metrics and evaluation).
  auto step = [&] {
    for (int64_t micro = 0; micro < accum; ++micro) {
      data::Batch b = s.data.sample_batch(B, T, data_gen);
      Tensor loss = model.loss(b.x, b.y);
      if (!std::isfinite(loss.item())) throw Error("[bench] non-finite loss during the benchmark");
      tape::backward(accum == 1 ? loss : mul(loss, 1.0 / double(accum)));
    }
    optim::clip_grad_norm(params, cfg.optim.grad_clip);
    optimizer->step(cfg.optim.lr);
    optimizer->zero_grad();
  };
  const double rss0 = resident_mb();
  for (int64_t i = 0; i < o.warmup; ++i) step();
  std::vector<double> ms;
  for (int64_t i = 0; i < o.steps; ++i) {
    const auto t0 = Clock::now();
    step();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  r.step_ms = median(ms);
  r.step_ms_min = *std::min_element(ms.begin(), ms.end());
  r.step_ms_max = *std::max_element(ms.begin(), ms.end());
  r.tokens_per_s = double(r.tokens_per_step) / (r.step_ms / 1e3);
  r.flops_per_step = train_flops_per_token(cfg.model) * double(r.tokens_per_step);
  r.gflops = r.flops_per_step / (r.step_ms / 1e3) / 1e9;
  r.mfu = r.peak_gflops > 0 ? r.gflops / r.peak_gflops : 0;
  r.peak_rss_mb = peak_resident_mb();
  r.step_rss_mb = std::max(0.0, r.peak_rss_mb - rss0);
  return r;
}

std::string bench_config_json(const TrainConfig& in) {
  const TrainConfig cfg = setup(in).cfg;
  nlohmann::ordered_json j;
  j["model"] = nlohmann::ordered_json::parse(model_values_json(cfg.model));
  j["batch_size"] = cfg.train.batch_size;
  j["grad_accum"] = cfg.train.grad_accum;
  j["threads"] = cfg.train.threads;
  j["seed"] = cfg.train.seed;
  j["optim"] = {{"name", cfg.optim.name},
                {"lr", cfg.optim.lr},
                {"beta1", cfg.optim.beta1},
                {"beta2", cfg.optim.beta2},
                {"eps", cfg.optim.eps},
                {"weight_decay", cfg.optim.weight_decay},
                {"grad_clip", cfg.optim.grad_clip}};
  j["flops_per_token"] = train_flops_per_token(cfg.model);
  return j.dump();
}

std::string format_bench(const BenchResult& r) {
  std::ostringstream s;
  s << "bench " << r.name << ": " << fixed(double(r.num_parameters) / 1e6, 2) << "M params, "
    << r.tokens_per_step << " tokens/step, " << r.threads << " threads, GEMMs " << r.gemm_backend
    << ", BLAS core " << r.blas_core << " (" << r.blas_library << ")\n  step "
    << fixed(r.step_ms, 2) << " ms median (min " << fixed(r.step_ms_min, 2) << ", max "
    << fixed(r.step_ms_max, 2) << ") = " << fixed(r.tokens_per_s, 0) << " tokens/s\n  "
    << fixed(r.flops_per_step / 1e9, 3) << " GFLOP/step = " << fixed(r.gflops, 1) << " GFLOP/s";
  if (r.peak_gflops > 0)
    s << " = " << fixed(100 * r.mfu, 1) << "% MFU (sgemm peak " << fixed(r.peak_gflops, 1)
      << " GFLOP/s)";
  s << "\n  peak RSS " << fixed(r.peak_rss_mb, 1) << " MB (" << fixed(r.step_rss_mb, 1)
    << " MB above the RSS before the first step)\n";
  return s.str();
}

std::string bench_json(const BenchResult& r) {
  nlohmann::ordered_json j;
  j["framework"] = "lmlab";
  j["name"] = r.name;
  j["tokens_per_s"] = r.tokens_per_s;
  j["step_ms"] = r.step_ms;
  j["step_ms_min"] = r.step_ms_min;
  j["step_ms_max"] = r.step_ms_max;
  j["tokens_per_step"] = r.tokens_per_step;
  j["num_parameters"] = r.num_parameters;
  j["flops_per_step"] = r.flops_per_step;
  j["gflops"] = r.gflops;
  j["peak_gflops"] = r.peak_gflops;
  j["mfu"] = r.mfu;
  j["peak_rss_mb"] = r.peak_rss_mb;
  j["step_rss_mb"] = r.step_rss_mb;
  j["blas_core"] = r.blas_core;
  j["blas_library"] = r.blas_library;
  j["gemm_backend"] = r.gemm_backend;
  j["threads"] = r.threads;
  return j.dump();
}

}  // namespace lmlab::train
