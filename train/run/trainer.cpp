// The training loop. One iteration: grad_accum micro-batches (forward, backward), global-norm
// clipping, an optimizer step at the scheduled lr, one metrics row. Evaluation covers the whole
// validation split; checkpoints are atomic; SIGINT/SIGTERM finish the step and checkpoint.
#include "train/run/trainer.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "autograd/kernels/cuda_runtime.h"
#include "autograd/threads.h"
#include "data/corpus.h"
#include "data/dataset.h"
#include "data/tokenizer.h"
#include "optim/adamw.h"
#include "optim/clip.h"
#include "optim/schedule.h"
#include "optim/sgd.h"
#include "train/common/signal_scope.h"
#include "train/common/stats.h"
#include "train/common/text.h"
#include "train/dist/distributed.h"
#include "train/io/checkpoint.h"
#include "train/io/run_files.h"
#include "train/run/diagnostics.h"
#include "train/run/sample.h"

namespace lmlab::train {

namespace fs = std::filesystem;

namespace {

// Test hook: LMLAB_FAULT_NAN_AT_STEP=N fills the first parameter's gradient with NaN at step N, so
// tests drive the divergence path at a known step (tests/train/test_cli.cpp). Unset: never.
int64_t fault_nan_step() {
  const char* v = std::getenv("LMLAB_FAULT_NAN_AT_STEP");
  return v && *v ? std::strtoll(v, nullptr, 10) : -1;
}

// Whether every parameter is finite (x * 0 is NaN exactly when x is not; a sum of zeros cannot
// overflow).
bool all_finite(const std::vector<Tensor>& params) {
  NoGradGuard guard;
  for (const Tensor& p : params)
    if (!std::isfinite(sum(mul(p, 0.0)).item())) return false;
  return true;
}

}  // namespace

std::unique_ptr<optim::Optimizer> make_optimizer(const TrainConfig& cfg, nn::TransformerLM& model) {
  const OptimConfig& o = cfg.optim;
  if (o.name == "sgd") {
    optim::SGDOptions so;
    so.momentum = o.momentum;
    so.weight_decay = o.weight_decay;
    return std::make_unique<optim::SGD>(model.named_parameters(), so);
  }
  optim::AdamWOptions ao;
  ao.beta1 = o.beta1;
  ao.beta2 = o.beta2;
  ao.eps = o.eps;
  ao.weight_decay = o.weight_decay;
  return std::make_unique<optim::AdamW>(model.named_parameters(), ao);
}

double evaluate(const nn::TransformerLM& model, const data::TokenDataset& data, int64_t batch,
                int64_t* tokens, bool across_ranks) {
  NoGradGuard guard;
  const int64_t T = model.config().block_size;
  const Device dev = model.parameters().at(0).device();
  const int64_t n = data.eval_batch_count(batch, T);
  // Across ranks, rank r scores batches r, r + N, ...; the per-batch losses are then gathered (a
  // sum where every slot has one non-zero term: exact) and added in order on every rank, so the
  // result is bitwise the one-process result.
  const int64_t stride = across_ranks ? dist::size() : 1, first = across_ranks ? dist::rank() : 0;
  std::vector<double> scored(size_t(2 * n), 0.0);  // mean loss and tokens of batch i at 2i, 2i+1
  for (int64_t i = first; i < n; i += stride) {
    data::EvalBatch b = data.eval_batch(batch, T, i);
    const Tensor loss =
        dev == Device::CPU ? model.loss(b.x, b.y) : model.loss(b.x.to(dev), b.y.to(dev));
    scored[size_t(2 * i)] = loss.item();
    scored[size_t(2 * i + 1)] = double(b.tokens());
  }
  if (across_ranks) dist::allreduce_sum(scored.data(), scored.size());
  double total = 0;
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) {
    total += scored[size_t(2 * i)] * scored[size_t(2 * i + 1)];
    count += int64_t(scored[size_t(2 * i + 1)]);
  }
  if (tokens) *tokens = count;
  return count ? total / double(count) : 0.0;
}

TrainResult train(const TrainConfig& cfg_in, const TrainOptions& opt) {
  TrainConfig cfg = cfg_in;
  const RunConfig& rc = cfg.train;
  const Device dev = rc.device == "cuda" ? Device::CUDA : Device::CPU;
  // Data-parallel ranks (docs/distributed.md): rank 0 alone writes; ranks on one machine share
  // its cores (train.threads 0) and take one GPU each.
  const int world = dist::size(), rank = dist::rank();
  const bool writer = rank == 0;
  if (dev == Device::CUDA && dist::active() && cuda::device_count() > 0)
    cuda::set_device(dist::local_rank() % cuda::device_count());
  if (dev == Device::CUDA && !cuda::available())
    throw Error("[train] train.device is cuda, but " + cuda::unavailable_reason() +
                " (set train.device=cpu)");
  set_num_threads(int(rc.threads));
  if (rc.threads == 0 && dist::local_size() > 1)
    set_num_threads(std::max(
        1, std::min(num_threads(), int(std::thread::hardware_concurrency()) / dist::local_size())));
  TrainResult result;
  result.run_dir = resolved_run_dir(cfg);
  const std::string dir = result.run_dir;
  const std::string ckpt_path = dir + "/ckpt.safetensors";
  if (writer) prepare_run_dir(dir);

  // Resume: the checkpoint's tokenizer and state win; its config must describe the same model.
  std::unique_ptr<Checkpoint> resume;
  if (opt.resume && fs::exists(ckpt_path))
    resume = std::make_unique<Checkpoint>(load_checkpoint(ckpt_path));
  std::unique_ptr<Checkpoint> init;
  if (!opt.init_from.empty()) init = std::make_unique<Checkpoint>(load_checkpoint(opt.init_from));

  const std::string text = data::load_corpus(cfg.data.corpus);
  const data::Tokenizer tok = resume ? data::Tokenizer::from_serialized(resume->tokenizer)
                              : init ? data::Tokenizer::from_serialized(init->tokenizer)
                                     : data::Tokenizer::make(cfg.data.tokenizer, text);
  cfg.model.vocab_size = tok.vocab_size();
  validate(cfg);
  // Name the corpus in data errors (too short for block_size, a character the checkpoint's
  // tokenizer lacks), and check the sample prompt now rather than after the whole run.
  const data::TokenDataset data = [&] {
    try {
      data::TokenDataset d(tok.encode(text), cfg.data.val_fraction);
      d.check_block_size(cfg.model.block_size);
      return d;
    } catch (const Error& e) {
      throw Error(std::string(e.what()) + " (data.corpus " + cfg.data.corpus + ")");
    }
  }();
  std::vector<int32_t> sample_prompt;
  if (rc.sample_tokens > 0) {
    try {
      sample_prompt = tok.encode(rc.sample_prompt.empty() ? "\n" : rc.sample_prompt);
    } catch (const Error& e) {
      throw Error("[train] train.sample_prompt cannot be encoded: " + std::string(e.what()) +
                  " (set another train.sample_prompt, or train.sample_tokens=0)");
    }
  }

  Generator init_gen(uint64_t(rc.seed));
  nn::TransformerLM model(cfg.model, init_gen);
  model.to(dev);  // before the optimizer: its state buffers are made where the parameters live
  std::unique_ptr<optim::Optimizer> optimizer = make_optimizer(cfg, model);
  optim::LrSchedule sched;
  sched.kind = optim::schedule_kind_from_string(cfg.optim.schedule);
  sched.lr = cfg.optim.lr;
  sched.min_lr = cfg.optim.min_lr;
  sched.warmup_iters = cfg.optim.warmup_iters;
  sched.decay_iters = effective_decay_iters(cfg);
  sched.validate();

  Generator data_gen(uint64_t(rc.seed) + 1);
  CheckpointState state;
  if (resume) {
    if (to_yaml(resume->config) != to_yaml(cfg)) {
      // Only the loop length, logging and where the run lives (a moved run directory, or the
      // same one spelt differently) may change on resume; the model and data must not.
      TrainConfig a = resume->config, b = cfg;
      a.train.run_dir = b.train.run_dir;
      a.train.max_iters = b.train.max_iters;
      a.train.eval_interval = b.train.eval_interval;
      a.train.checkpoint_interval = b.train.checkpoint_interval;
      a.train.log_interval = b.train.log_interval;
      a.train.threads = b.train.threads;      // results do not depend on the thread count
      a.train.bucket_mb = b.train.bucket_mb;  // nor on how gradients are bucketed
      a.source = b.source;
      // The global batch (batch_size x ranks) must stay; how it is split over ranks may change.
      const int64_t was = a.train.batch_size * resume->state.ranks,
                    now = b.train.batch_size * world;
      if (was == now) {
        a.train.batch_size = b.train.batch_size;
      } else if (resume->state.ranks != world) {
        throw Error(
            "[train] " + ckpt_path + " was written by " + std::to_string(resume->state.ranks) +
            " rank(s) x train.batch_size " + std::to_string(resume->config.train.batch_size) +
            " (a global batch of " + std::to_string(was) + "); this run has " +
            std::to_string(world) + " rank(s) x " + std::to_string(b.train.batch_size) + " = " +
            std::to_string(now) + ": resume needs the same global batch" +
            (was % world == 0 ? " (set train.batch_size=" + std::to_string(was / world) + ")"
                              : " (use a rank count that divides " + std::to_string(was) + ")"));
      }
      if (to_yaml(a) != to_yaml(b))
        throw Error("[train] " + ckpt_path +
                    " was written with a different config; resume needs "
                    "the same model, data and optimizer settings (see " +
                    dir + "/config.yaml)");
    }
    load_weights(*resume, model);
    load_optimizer(*resume, *optimizer);
    state = resume->state;
    data_gen.set_state(state.data_seed, state.data_offset);
    model.dropout_generator().set_state(state.dropout_seed, state.dropout_offset);
  } else if (init) {
    load_weights(*init, model);
  }
  // Each rank draws its rows of every global batch, and its rows' dropout masks: together exactly
  // the draws of one process with batch_size * world (Generator::set_partition).
  data_gen.set_partition(uint64_t(rank), uint64_t(world));
  model.dropout_generator().set_partition(uint64_t(rank), uint64_t(world));
  if (dist::active()) {
    TrainConfig c = cfg;
    c.train.threads = 0;  // may differ between ranks: results do not depend on it
    c.source.clear();     // where the config file was read from is only provenance
    const std::vector<int32_t>& tokens = data.tokens();
    dist::check_same_start(dir, to_yaml(c), state.step, dist::tensors_hash(model.parameters()),
                           dist::fnv1a(tokens.data(), tokens.size() * sizeof(int32_t)));
  }
  dist::GradReducer reducer(model.parameters(), size_t(rc.bucket_mb) << 20);

  const std::string header =
      "step,tokens,lr,train_loss,val_loss,grad_norm,clipped,tokens_per_s,elapsed_s";
  const std::string metrics_path = dir + "/metrics.csv";
  const std::string diag_path = dir + "/diagnostics.csv";
  double elapsed0 = 0;
  std::ofstream metrics, diagnostics;
  if (writer) {
    write_file_atomic(dir + "/config.yaml", to_yaml(cfg));
    std::error_code ec;
    fs::remove(dir + "/diverged.json", ec);
    fs::remove(dir + "/result.json", ec);
    elapsed0 = rewind_csv(metrics_path, state.step, header);
    metrics.open(metrics_path, std::ios::app);
    rewind_csv(diag_path, state.step, kDiagnosticsHeader);
    diagnostics.open(diag_path, std::ios::app);
  }

  const bool quiet = opt.quiet || !writer;
  // mpirun hands ranks a pseudo-terminal even when its own output goes to a file: print lines.
  const bool tty = !quiet && isatty(fileno(stdout)) && !dist::active();
  const int64_t B = rc.batch_size, T = cfg.model.block_size, steps = rc.max_iters;
  const int64_t step_tokens = B * T * rc.grad_accum * world;  // the global batch
  const int64_t print_every = std::max<int64_t>(1, steps / 20);
  // Evaluation batches hold ~8k tokens: the whole validation split in few, large forward passes.
  const int64_t eval_batch = std::max<int64_t>(B, 8192 / T);
  if (!quiet)
    std::cout << "train: " << dir << ": " << model.num_parameters() << " parameters, " << tok.kind()
              << " tokenizer (" << tok.vocab_size() << " symbols), " << data.train_size()
              << " train / " << data.val_size() << " val tokens, "
              << (resume ? "resuming at step " + std::to_string(state.step) : "from scratch")
              << ", " << num_threads() << " threads, BLAS " << blas_core_name()
              << (dist::active() ? ", " + std::to_string(world) + " data-parallel ranks" : "")
              << "\n";

  auto checkpoint = [&]() {
    state.data_seed = data_gen.seed();
    state.data_offset = data_gen.offset();
    state.dropout_seed = model.dropout_generator().seed();
    state.dropout_offset = model.dropout_generator().offset();
    state.ranks = world;
    if (dist::active()) {  // the ranks' weights must still be one model: a cheap check per
                           // checkpoint
      const std::vector<uint64_t> h = dist::allgather(dist::tensors_hash(model.parameters()));
      for (int r = 1; r < world; ++r)
        if (h[size_t(r)] != h[0])
          throw Error(
              "[dist] after step " + std::to_string(state.step) + " rank " + std::to_string(r) +
              "'s weights differ from rank 0's: the ranks drifted apart (no checkpoint written)");
    }
    if (writer) save_checkpoint(ckpt_path, model, optimizer.get(), cfg, tok.serialize(), state);
  };

  std::vector<double> rates, comm_ms, wait_ms;
  double last_val = NAN, last_loss = NAN;
  // Diagnostics (docs/ablations.md) at step 0 and every evaluation step, on a fixed batch: the
  // first 8 windows of the validation split.
  const Tensor diag_ids = [&] {
    Tensor x = data.eval_batch(8, T, 0).x;
    return dev == Device::CPU ? x : x.to(dev);
  }();
  DiagnosticsProbe probe;
  auto write_result = [&](const TrainResult& r) {
    if (!writer) return;
    struct rusage ru {};
    getrusage(RUSAGE_SELF, &ru);
    nlohmann::json j;
    j["steps"] = r.steps;
    j["max_iters"] = steps;
    j["tokens_seen"] = state.tokens_seen;
    j["final_val_loss"] =
        std::isfinite(r.final_val_loss) ? nlohmann::json(r.final_val_loss) : nlohmann::json();
    j["best_val_loss"] =
        state.best_val_loss > 0 ? nlohmann::json(state.best_val_loss) : nlohmann::json();
    j["tokens_per_s"] = r.tokens_per_s;
    j["num_parameters"] = model.num_parameters();
    j["kv_cache_bytes_per_token"] = 2 * cfg.model.n_layer * cfg.model.n_kv_head *
                                    cfg.model.head_size() * int64_t(sizeof(float));
    j["peak_rss_bytes"] = int64_t(ru.ru_maxrss) * 1024;
    j["clipped_steps"] = state.clipped_steps;
    j["threads"] = num_threads();
    j["blas_core"] = blas_core_name();
    j["ranks"] = world;
    if (dist::active()) {  // per step: first bucket started -> all summed; the part not overlapped
      j["allreduce_ms_median"] = median(comm_ms);
      j["allreduce_wait_ms_median"] = median(wait_ms);
      j["allreduce_buckets"] = reducer.bucket_count();
    }
    j["diverged"] = r.diverged;
    if (r.diverged) {
      j["diverged_step"] = r.steps;
      j["last_finite_loss"] =
          std::isfinite(last_loss) ? nlohmann::json(last_loss) : nlohmann::json();
    }
    write_file_atomic(dir + "/result.json", j.dump(2) + "\n");
  };

  StopSignalScope signals;
  const int64_t fault_step = fault_nan_step();
  // Stops the run at `step` for a non-finite `what`: diverged.json, a message, no checkpoint.
  auto diverge = [&](int64_t step, const std::string& what) {
    std::ostringstream js;
    js << "{\"step\": " << step << ", \"reason\": \"non-finite " << what
       << "\", \"last_finite_loss\": "
       << (std::isfinite(last_loss) ? std::to_string(last_loss) : "null") << "}\n";
    if (writer) write_file_atomic(dir + "/diverged.json", js.str());
    if (tty) std::cout << "\n";
    if (writer)
      std::cerr << "train: " << dir << " diverged at step " << step << ": non-finite " << what
                << " (last finite loss " << last_loss << "); marked in " << dir
                << "/diverged.json, the last checkpoint is untouched\n";
    result.diverged = true;
    result.steps = step;
    result.final_val_loss = NAN;
    result.best_val_loss = state.best_val_loss;
    write_result(result);
    return result;
  };
  const auto t0 = std::chrono::steady_clock::now();
  model.train();
  for (int64_t it = state.step; it < steps; ++it) {
    const auto ts = std::chrono::steady_clock::now();
    const double lr = sched.at(it);
    double loss_sum = 0;
    for (int64_t micro = 0; micro < rc.grad_accum; ++micro) {
      data::Batch b = data.sample_batch(B, T, data_gen);
      Tensor loss =
          dev == Device::CPU ? model.loss(b.x, b.y) : model.loss(b.x.to(dev), b.y.to(dev));
      const double l = loss.item();
      loss_sum += l;
      // One rank alone must not skip the backward: the others would wait for its gradients.
      if (!std::isfinite(l) && !dist::active()) break;
      const Tensor scaled = rc.grad_accum == 1 ? loss : mul(loss, 1.0 / double(rc.grad_accum));
      // The last micro-batch's backward starts summing gradients across ranks as they are final.
      tape::backward(scaled, micro + 1 == rc.grad_accum ? reducer.hook() : tape::LeafReadyHook{});
    }
    reducer.finish();
    // The ranks agree on the step's loss (their mean) and on stopping (any rank signalled).
    double agreed[2] = {loss_sum, StopSignalScope::received() != 0 ? 1.0 : 0.0};
    dist::allreduce_sum(agreed, 2);
    const bool stop_requested = agreed[1] > 0;
    const double train_loss = agreed[0] / double(world) / double(rc.grad_accum);
    if (dist::active()) {
      comm_ms.push_back(reducer.last_comm_s() * 1e3);
      wait_ms.push_back(reducer.last_wait_s() * 1e3);
    }
    if (it == fault_step && model.parameters()[0].grad().defined())
      model.parameters()[0].grad().fill_(NAN);
    const bool last = it + 1 == steps;
    const bool eval = (it + 1) % rc.eval_interval == 0 || last || it == 0;
    if (eval && std::isfinite(train_loss) && writer) {
      model.eval();  // no dropout in the probe's forward (and no draw from its stream)
      probe.before(model, diag_ids);
      model.train();
    }
    optim::ClipResult clip{NAN, false};
    if (std::isfinite(train_loss)) {
      std::vector<Tensor> params = model.parameters();
      clip = optim::clip_grad_norm(params, cfg.optim.grad_clip);
    }
    if (!std::isfinite(train_loss) || !std::isfinite(clip.norm)) {
      tape::clear();
      optimizer->zero_grad();
      return diverge(it, !std::isfinite(train_loss) ? "loss" : "gradient norm");
    }
    optimizer->step(lr);
    optimizer->zero_grad();
    if (clip.clipped) ++state.clipped_steps;
    if (eval && writer) diagnostics << diagnostics_rows(it, probe.after(model)) << std::flush;
    last_loss = train_loss;
    state.step = it + 1;
    state.tokens_seen += step_tokens;

    const double step_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count();
    rates.push_back(double(step_tokens) / std::max(step_s, 1e-9));
    if (eval) {
      if (!all_finite(model.parameters())) return diverge(it, "weights after the update");
      model.eval();
      last_val = evaluate(model, data, eval_batch, nullptr, true);
      model.train();
      // Finite weights can still give a non-finite validation loss (overflowing logits): that is
      // divergence too, and must not reach best_val_loss or a checkpoint.
      if (!std::isfinite(last_val)) return diverge(it, "validation loss");
      if (state.best_val_loss == 0 || last_val < state.best_val_loss)
        state.best_val_loss = last_val;
    }
    const double elapsed =
        elapsed0 + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::ostringstream row;
    row.precision(7);
    row << it << "," << state.tokens_seen << "," << lr << "," << train_loss << ",";
    if (eval) row << last_val;
    row << "," << clip.norm << "," << int(clip.clipped) << "," << rates.back() << "," << elapsed;
    if (writer && (it % rc.log_interval == 0 || eval || last)) {
      metrics << row.str() << "\n" << std::flush;
      if (!metrics)
        throw Error("[train] cannot append to " + metrics_path + " (disk full or not writable?)");
    }

    if (!quiet) {
      std::vector<double> recent(rates.end() - std::min<size_t>(rates.size(), 20), rates.end());
      std::nth_element(recent.begin(), recent.begin() + recent.size() / 2, recent.end());
      const double rate = recent[recent.size() / 2];
      const double eta = double((steps - it - 1) * step_tokens) / rate;
      char line[200];
      std::snprintf(line, sizeof line,
                    "step %6lld/%lld | loss %.4f | val %.4f | lr %.2e | %7.0f tok/s | ETA %s",
                    (long long)(it + 1), (long long)steps, train_loss, last_val, lr, rate,
                    format_duration(eta).c_str());
      if (tty)
        std::cout << "\r" << line << "   " << std::flush;
      else if ((it + 1) % print_every == 0 || eval)
        std::cout << line << "\n" << std::flush;
    }
    const bool stop = dist::active() ? stop_requested : StopSignalScope::received() != 0;
    if (stop || last || (rc.checkpoint_interval > 0 && (it + 1) % rc.checkpoint_interval == 0)) {
      // A finite loss and gradient can still overflow the weights in the update: never save those.
      if (!all_finite(model.parameters())) return diverge(it, "weights after the update");
      checkpoint();
    }
    if (stop) {
      if (tty) std::cout << "\n";
      const int sig = StopSignalScope::received();
      const std::string why =
          sig != 0 ? "signal " + std::to_string(sig) : std::string("a signal to another rank");
      if (writer)
        std::cerr << "train: interrupted (" << why << ") after step " << it + 1
                  << "; checkpoint written to " << ckpt_path << "; continue with --resume\n";
      result.interrupted = true;
      break;
    }
  }
  if (tty) std::cout << "\n";
  if (!result.interrupted && state.step >= steps && std::isnan(last_val)) {
    model.eval();
    last_val = evaluate(model, data, eval_batch, nullptr,
                        true);  // a resumed, already finished run still reports
  }
  result.steps = state.step;
  result.final_val_loss = last_val;
  result.best_val_loss = state.best_val_loss;
  result.tokens_per_s = median(rates);
  if (!result.interrupted) write_result(result);
  if (!result.interrupted && rc.sample_tokens > 0 && writer) {
    SampleOptions so;
    so.tokens = rc.sample_tokens;
    so.seed = uint64_t(rc.seed);
    SampleResult s = generate(model, sample_prompt, so);
    write_file_atomic(dir + "/sample.txt", rc.sample_prompt + tok.decode(s.ids) + "\n");
  }
  if (!quiet && !result.interrupted)
    std::cout << "train: done: " << result.steps << " steps, val loss " << result.final_val_loss
              << " (best " << result.best_val_loss << "), " << int64_t(result.tokens_per_s)
              << " tok/s median; " << dir << "/{metrics.csv,ckpt.safetensors,sample.txt}\n";
  return result;
}

}  // namespace lmlab::train
