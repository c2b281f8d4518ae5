// The training loop. One iteration: grad_accum micro-batches (forward, backward), global-norm
// clipping, an optimizer step at the scheduled lr, one metrics row. Evaluation covers the whole
// validation split; checkpoints are atomic; SIGINT/SIGTERM finish the step and checkpoint.
#include "train/run/trainer.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "autograd/threads.h"
#include "data/atomic_write.h"
#include "data/dataset.h"
#include "data/tokenizer.h"
#include "optim/adamw.h"
#include "optim/clip.h"
#include "optim/schedule.h"
#include "optim/sgd.h"
#include "train/common/signal_scope.h"
#include "train/common/stats.h"
#include "train/dist/distributed.h"
#include "train/io/checkpoint.h"
#include "train/run/data_setup.h"
#include "train/run/diagnostics.h"
#include "train/run/run.h"
#include "train/run/sample.h"
#include "train/run/step_log.h"

namespace lmlab::train {

namespace {

// Test hook: LMLAB_FAULT_NAN_AT_STEP=N fills the first parameter's gradient with NaN at step N, so
// tests drive the divergence path at a known step (tests/train/cli/test_cli.cpp). Unset: never.
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
                int64_t* tokens, bool across_ranks, int64_t subset_windows) {
  NoGradGuard guard;
  const int64_t T = model.config().block_size;
  const Device dev = model.parameters().at(0).device();
  const int64_t n = subset_windows > 0 ? data.subset_batch_count(subset_windows, batch, T)
                                       : data.eval_batch_count(batch, T);
  // Across ranks, rank r scores batches r, r + N, ...; the per-batch losses are then gathered (a
  // sum where every slot has one non-zero term: exact) and added in order on every rank, so the
  // result is bitwise the one-process result.
  const int64_t stride = across_ranks ? dist::size() : 1, first = across_ranks ? dist::rank() : 0;
  std::vector<double> scored(size_t(2 * n), 0.0);  // mean loss and tokens of batch i at 2i, 2i+1
  for (int64_t i = first; i < n; i += stride) {
    data::EvalBatch b = subset_windows > 0 ? data.subset_batch(subset_windows, batch, T, i)
                                           : data.eval_batch(batch, T, i);
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

namespace {

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

TrainResult Run::run() {
  open();
  load_data();
  build();
  restore();
  open_logs();
  quiet_ = opt_.quiet || !writer_;
  // mpirun hands ranks a pseudo-terminal even when its own output goes to a file: print lines.
  tty_ = !quiet_ && isatty(fileno(stdout)) && !dist::active();
  B_ = rc_.batch_size, T_ = cfg_.model.block_size, steps_ = rc_.max_iters;
  step_tokens_ = B_ * T_ * rc_.grad_accum * world_;  // the global batch
  // Evaluation batches hold ~8k tokens: the whole validation split in few, large forward passes.
  eval_batch_ = std::max<int64_t>(B_, 8192 / T_);
  announce();
  // Diagnostics (docs/ablations.md) at step 0 and every evaluation step, on a fixed batch: the
  // first 8 windows of the validation split.
  diag_ids_ = data_->eval_batch(8, T_, 0).x;
  if (dev_ != Device::CPU) diag_ids_ = diag_ids_.to(dev_);
  StopSignalScope signals;
  fault_step_ = fault_nan_step();
  t0_ = Clock::now();
  model_->train();
  for (int64_t it = state_.step; it < steps_; ++it)
    if (!step(it)) break;
  if (result_.diverged) return result_;  // diverge() has said why
  if (tty_) std::cout << "\n";
  return finish();
}

// grad_accum micro-batches (forward, backward; the last one's gradients summed across ranks as
// they are ready). Returns the step's loss, which the ranks agree on (their mean), and whether
// any rank was signalled to stop.
double Run::accumulate_gradients(bool* stop_requested) {
  double loss_sum = 0;
  for (int64_t micro = 0; micro < rc_.grad_accum; ++micro) {
    data::Batch b = data_->sample_batch(B_, T_, data_gen_);
    Tensor loss =
        dev_ == Device::CPU ? model_->loss(b.x, b.y) : model_->loss(b.x.to(dev_), b.y.to(dev_));
    const double l = loss.item();
    loss_sum += l;
    // One rank alone must not skip the backward: the others would wait for its gradients.
    if (!std::isfinite(l) && !dist::active()) break;
    const Tensor scaled = rc_.grad_accum == 1 ? loss : mul(loss, 1.0 / double(rc_.grad_accum));
    tape::backward(scaled, micro + 1 == rc_.grad_accum ? reducer_->hook() : tape::LeafReadyHook{});
  }
  reducer_->finish();
  double agreed[2] = {loss_sum, StopSignalScope::received() != 0 ? 1.0 : 0.0};
  dist::allreduce_sum(agreed, 2);
  *stop_requested = agreed[1] > 0;
  if (dist::active()) {
    comm_ms_.push_back(reducer_->last_comm_s() * 1e3);
    wait_ms_.push_back(reducer_->last_wait_s() * 1e3);
  }
  return agreed[0] / double(world_) / double(rc_.grad_accum);
}

// One optimizer step. Returns false when the run ends here (diverged, or stopped by a signal).
bool Run::step(int64_t it) {
  const Clock::time_point ts = Clock::now();
  const double lr = sched_.at(it);
  bool stop_requested = false;
  const double train_loss = accumulate_gradients(&stop_requested);
  nn::TransformerLM& model = *model_;
  if (it == fault_step_ && model.parameters()[0].grad().defined())
    model.parameters()[0].grad().fill_(NAN);
  const bool last = it + 1 == steps_;
  const bool eval = (it + 1) % rc_.eval_interval == 0 || last || it == 0;
  if (eval && std::isfinite(train_loss) && writer_) {
    model.eval();  // no dropout in the probe's forward (and no draw from its stream)
    probe_.before(model, diag_ids_);
    model.train();
  }
  optim::ClipResult clip{NAN, false};
  if (std::isfinite(train_loss)) {
    std::vector<Tensor> params = model.parameters();
    clip = optim::clip_grad_norm(params, cfg_.optim.grad_clip);
  }
  if (!std::isfinite(train_loss) || !std::isfinite(clip.norm)) {
    tape::clear();
    optimizer_->zero_grad();
    diverge(it, !std::isfinite(train_loss) ? "loss" : "gradient norm");
    return false;
  }
  optimizer_->step(lr);
  optimizer_->zero_grad();
  if (clip.clipped) ++state_.clipped_steps;
  if (eval && writer_) diagnostics_ << diagnostics_rows(it, probe_.after(model)) << std::flush;
  last_loss_ = train_loss;
  state_.step = it + 1;
  state_.tokens_seen += step_tokens_;
  rates_.add(double(step_tokens_) / std::max(seconds_since(ts), 1e-9));
  if (eval && !evaluate_now(it)) return false;
  subset_val_ =
      rc_.val_subset_interval > 0 && (it + 1) % rc_.val_subset_interval == 0 ? estimate_val() : NAN;
  log_step(it, lr, train_loss, eval, clip);
  return checkpoint_or_stop(it, stop_requested, last);
}

// The validation loss after step `it` (and the best so far). False when the run diverged: weights
// or the validation loss not finite (overflowing logits can give one from finite weights).
bool Run::evaluate_now(int64_t it) {
  if (!all_finite(model_->parameters())) {
    diverge(it, "weights after the update");
    return false;
  }
  model_->eval();
  last_val_ = evaluate(*model_, *data_, eval_batch_, nullptr, true);
  model_->train();
  if (!std::isfinite(last_val_)) {
    diverge(it, "validation loss");
    return false;
  }
  if (state_.best_val_loss == 0 || last_val_ < state_.best_val_loss)
    state_.best_val_loss = last_val_;
  return true;
}

// The validation loss on train.val_subset_tokens tokens of the split (whole windows of
// block_size, spread evenly over it): a cheap look between whole-split evaluations. No dropout
// and no random draw: the run is the same with or without these estimates.
double Run::estimate_val() {
  const int64_t windows = (rc_.val_subset_tokens + T_ - 1) / T_;
  model_->eval();
  const double loss = evaluate(*model_, *data_, eval_batch_, nullptr, true, windows);
  model_->train();
  return loss;
}

// The metrics.csv row (every log_interval, evaluation and the last step) and the progress line
// (a terminal: rewritten in place each step; a log: ~20 lines a run plus evaluations).
void Run::log_step(int64_t it, double lr, double train_loss, bool eval, optim::ClipResult clip) {
  const bool last = it + 1 == steps_;
  const MetricsRow row{.step = it,
                       .tokens = state_.tokens_seen,
                       .lr = lr,
                       .train_loss = train_loss,
                       .val_loss = last_val_,
                       .val_bpb = bits_per_byte(last_val_, val_bytes_per_token_),
                       .val_subset_loss = subset_val_,
                       .grad_norm = clip.norm,
                       .has_val = eval,
                       .clipped = clip.clipped,
                       .tokens_per_s = rates_.last(),
                       .elapsed_s = elapsed0_ + seconds_since(t0_)};
  if (writer_ && (it % rc_.log_interval == 0 || eval || last || !std::isnan(subset_val_))) {
    metrics_ << metrics_row(row) << "\n" << std::flush;
    if (!metrics_)
      throw Error("[train] cannot append to " + dir_ + "/metrics.csv (disk full or not writable?)");
  }
  if (quiet_) return;
  const double rate = rates_.median_recent();
  const std::string line = progress_line(it + 1, steps_, train_loss, last_val_, lr, rate,
                                         eta_seconds(steps_ - it - 1, step_tokens_, rate));
  const int64_t print_every = std::max<int64_t>(1, steps_ / 20);
  if (tty_)
    std::cout << "\r" << line << "   " << std::flush;
  else if ((it + 1) % print_every == 0 || eval)
    std::cout << line << "\n" << std::flush;
}

// The checkpoint every checkpoint_interval, at the end and on a signal (never of weights that an
// update overflowed). False when a signal stops the run here.
bool Run::checkpoint_or_stop(int64_t it, bool stop_requested, bool last) {
  const bool stop = dist::active() ? stop_requested : StopSignalScope::received() != 0;
  if (stop || last || (rc_.checkpoint_interval > 0 && (it + 1) % rc_.checkpoint_interval == 0)) {
    if (!all_finite(model_->parameters())) {
      diverge(it, "weights after the update");
      return false;
    }
    checkpoint();
  }
  if (!stop) return true;
  if (tty_) std::cout << "\n";
  const int sig = StopSignalScope::received();
  const std::string why =
      sig != 0 ? "signal " + std::to_string(sig) : std::string("a signal to another rank");
  if (writer_)
    std::cerr << "train: interrupted (" << why << ") after step " << it + 1
              << "; checkpoint written to " << ckpt_path_ << "; continue with --resume\n";
  result_.interrupted = true;
  return false;
}

void Run::checkpoint() {
  nn::TransformerLM& model = *model_;
  state_.data_seed = data_gen_.seed();
  state_.data_offset = data_gen_.offset();
  state_.dropout_seed = model.dropout_generator().seed();
  state_.dropout_offset = model.dropout_generator().offset();
  state_.ranks = world_;
  if (dist::active()) {  // the ranks' weights must still be one model: a cheap check each time
    const std::vector<uint64_t> h = dist::allgather(dist::tensors_hash(model.parameters()));
    for (int r = 1; r < world_; ++r)
      if (h[size_t(r)] != h[0])
        throw Error("[dist] after step " + std::to_string(state_.step) + " rank " +
                    std::to_string(r) +
                    "'s weights differ from rank 0's: the ranks drifted apart (no checkpoint "
                    "written)");
  }
  if (writer_)
    save_checkpoint(ckpt_path_, model, optimizer_.get(), cfg_, tok_->serialize(), state_);
}

// Stops the run at `step` for a non-finite `what`: diverged.json, a message, no checkpoint.
void Run::diverge(int64_t step, const std::string& what) {
  nlohmann::ordered_json j;
  j["step"] = step;
  j["reason"] = "non-finite " + what;
  j["last_finite_loss"] =
      std::isfinite(last_loss_) ? nlohmann::ordered_json(last_loss_) : nlohmann::ordered_json();
  if (writer_) data::write_file_atomic(dir_ + "/diverged.json", j.dump(2) + "\n");
  if (tty_) std::cout << "\n";
  if (writer_)
    std::cerr << "train: " << dir_ << " diverged at step " << step << ": non-finite " << what
              << " (last finite loss " << last_loss_ << "); marked in " << dir_
              << "/diverged.json, the last checkpoint is untouched\n";
  result_.diverged = true;
  result_.steps = step;
  result_.final_val_loss = NAN;
  result_.best_val_loss = state_.best_val_loss;
  write_result();
}

// result.json (rank 0): the run's outcome, speed, memory and, with ranks, the all-reduce times.
void Run::write_result() const {
  if (!writer_) return;
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  const TrainResult& r = result_;
  nlohmann::json j;
  j["steps"] = r.steps;
  j["max_iters"] = steps_;
  j["tokens_seen"] = state_.tokens_seen;
  j["final_val_loss"] =
      std::isfinite(r.final_val_loss) ? nlohmann::json(r.final_val_loss) : nlohmann::json();
  j["best_val_loss"] =
      state_.best_val_loss > 0 ? nlohmann::json(state_.best_val_loss) : nlohmann::json();
  // Bits per byte of validation text beside nats per token: char-, byte- and BPE-level runs on
  // one scale (run/data_setup.h).
  const auto bpb = [&](double nats) {
    const double v = bits_per_byte(nats, val_bytes_per_token_);
    return std::isfinite(v) && nats > 0 ? nlohmann::json(v) : nlohmann::json();
  };
  j["final_val_bpb"] = bpb(r.final_val_loss);
  j["best_val_bpb"] = bpb(state_.best_val_loss);
  j["val_bytes_per_token"] = val_bytes_per_token_;
  j["tokenizer"] = tok_->kind();
  j["vocab_size"] = tok_->vocab_size();
  j["tokens_per_s"] = r.tokens_per_s;
  j["num_parameters"] = model_->num_parameters();
  j["kv_cache_bytes_per_token"] = 2 * cfg_.model.n_layer * cfg_.model.n_kv_head *
                                  cfg_.model.head_size() * int64_t(sizeof(float));
  j["peak_rss_bytes"] = int64_t(ru.ru_maxrss) * 1024;
  j["clipped_steps"] = state_.clipped_steps;
  j["threads"] = num_threads();
  j["blas_core"] = blas_core_name();
  j["ranks"] = world_;
  if (dist::active()) {  // per step: first bucket started -> all summed; the part not overlapped
    j["allreduce_ms_median"] = median(comm_ms_);
    j["allreduce_wait_ms_median"] = median(wait_ms_);
    j["allreduce_buckets"] = reducer_->bucket_count();
  }
  j["diverged"] = r.diverged;
  if (r.diverged) {
    j["diverged_step"] = r.steps;
    j["last_finite_loss"] =
        std::isfinite(last_loss_) ? nlohmann::json(last_loss_) : nlohmann::json();
  }
  data::write_file_atomic(dir_ + "/result.json", j.dump(2) + "\n");
}

// After the last step (or a signal): the final validation loss of a resumed, already finished
// run, result.json, sample.txt and the closing line.
TrainResult Run::finish() {
  TrainResult& r = result_;
  if (!r.interrupted && state_.step >= steps_ && std::isnan(last_val_)) {
    model_->eval();
    last_val_ = evaluate(*model_, *data_, eval_batch_, nullptr, true);
  }
  r.steps = state_.step;
  r.final_val_loss = last_val_;
  r.best_val_loss = state_.best_val_loss;
  r.tokens_per_s = rates_.median_all();
  if (r.interrupted) return r;
  write_result();
  if (rc_.sample_tokens > 0 && writer_) {
    SampleOptions so;
    so.tokens = rc_.sample_tokens;
    so.seed = uint64_t(rc_.seed);
    SampleResult s = generate(*model_, sample_prompt_, so);
    data::write_file_atomic(dir_ + "/sample.txt", rc_.sample_prompt + tok_->decode(s.ids) + "\n");
  }
  if (!quiet_)
    std::cout << "train: done: " << r.steps << " steps, val loss " << r.final_val_loss << " (best "
              << r.best_val_loss << "), " << int64_t(r.tokens_per_s) << " tok/s median; " << dir_
              << "/{metrics.csv,ckpt.safetensors,sample.txt}\n";
  return r;
}

TrainResult train(const TrainConfig& cfg, const TrainOptions& options) {
  return Run(cfg, options).run();
}

}  // namespace lmlab::train
