// The config's rules: the model's are nn::check_model's (nn/config.h, the one place they are
// written), then the data, optim and train rules, one per key and then the rules between keys.
// Each message names the key and the value ("optim.lr must be > 0, got -1"); the first problem is
// reported where the user set its keys.
#include <string>

#include "autograd/error.h"
#include "train/config/schema.h"

namespace lmlab::train::config_detail {
namespace {

std::string show(int64_t v) { return std::to_string(v); }
std::string show(double v) { return nn::format_real(v); }

void check_data(const DataConfig& d, nn::ConfigChecks& k) {
  k.require(!d.corpus.empty(), {"data.corpus"}, "data.corpus must not be empty");
  k.one_of("data.format", d.format, {"text", "bin"});
  k.one_of("data.tokenizer", d.tokenizer, {"char", "byte", "bpe"});
  k.require(d.tokenizer_file.empty() || d.tokenizer == "bpe",
            {"data.tokenizer_file", "data.tokenizer"},
            "data.tokenizer_file is for data.tokenizer=bpe, but data.tokenizer is " + d.tokenizer);
  k.require(d.bpe_vocab_size >= 257 && d.bpe_vocab_size <= (int64_t(1) << 24),
            {"data.bpe_vocab_size"},
            "data.bpe_vocab_size must be in [257, 16777216] (256 bytes + merges + <|endoftext|>), "
            "got " +
                show(d.bpe_vocab_size));
  k.in_range("data.val_fraction", d.val_fraction, 0, 1, true);
}

// The rules between optim's keys (and train.max_iters, the decay length when decay_iters is 0).
void check_schedule(const OptimConfig& o, int64_t max_iters, nn::ConfigChecks& k) {
  k.require(o.min_lr <= o.lr, {"optim.min_lr", "optim.lr"},
            "optim.min_lr " + show(o.min_lr) + " must be <= optim.lr " + show(o.lr));
  if (o.decay_iters > 0) {
    k.require(o.warmup_iters <= o.decay_iters, {"optim.warmup_iters", "optim.decay_iters"},
              "optim.warmup_iters " + show(o.warmup_iters) + " must be <= optim.decay_iters " +
                  show(o.decay_iters));
  } else if (o.schedule == "cosine") {
    // decay_iters 0 means "decay until max_iters": the warmup must end by then
    k.require(o.warmup_iters <= max_iters,
              {"optim.warmup_iters", "optim.decay_iters", "train.max_iters"},
              "optim.warmup_iters " + show(o.warmup_iters) +
                  " must be <= the decay length, train.max_iters " + show(max_iters) +
                  " (optim.decay_iters is 0)");
  }
}

void check_optim(const OptimConfig& o, int64_t max_iters, nn::ConfigChecks& k) {
  k.one_of("optim.name", o.name, {"adamw", "sgd"});
  k.finite("optim.lr", o.lr);
  k.greater("optim.lr", o.lr, 0.0);
  k.finite("optim.min_lr", o.min_lr);
  k.at_least("optim.min_lr", o.min_lr, 0.0);
  k.one_of("optim.schedule", o.schedule, {"cosine", "constant"});
  k.at_least("optim.warmup_iters", o.warmup_iters, int64_t{0});
  k.at_least("optim.decay_iters", o.decay_iters, int64_t{0});
  k.in_range("optim.beta1", o.beta1, 0, 1, false);
  k.in_range("optim.beta2", o.beta2, 0, 1, false);
  k.finite("optim.eps", o.eps);
  k.greater("optim.eps", o.eps, 0.0);
  k.finite("optim.weight_decay", o.weight_decay);
  k.at_least("optim.weight_decay", o.weight_decay, 0.0);
  k.in_range("optim.momentum", o.momentum, 0, 1, false);
  k.finite("optim.grad_clip", o.grad_clip);
  k.at_least("optim.grad_clip", o.grad_clip, 0.0);
  check_schedule(o, max_iters, k);
}

void check_train(const RunConfig& r, nn::ConfigChecks& k) {
  k.greater("train.max_iters", r.max_iters, int64_t{0});
  k.greater("train.batch_size", r.batch_size, int64_t{0});
  k.at_least("train.grad_accum", r.grad_accum, int64_t{1});
  k.greater("train.eval_interval", r.eval_interval, int64_t{0});
  k.at_least("train.val_subset_interval", r.val_subset_interval, int64_t{0});
  k.greater("train.val_subset_tokens", r.val_subset_tokens, int64_t{0});
  k.greater("train.log_interval", r.log_interval, int64_t{0});
  k.at_least("train.checkpoint_interval", r.checkpoint_interval, int64_t{0});
  k.at_least("train.bucket_mb", r.bucket_mb, int64_t{1});
  k.at_least("train.seed", r.seed, int64_t{0});
  k.at_least("train.threads", r.threads, int64_t{0});
  k.one_of("train.device", r.device, {"cpu", "cuda"});
  k.one_of("train.precision", r.precision, {"fp32", "tf32", "bf16"});
  k.require(r.precision != "tf32" || r.device == "cuda", {"train.precision", "train.device"},
            "train.precision tf32 needs train.device cuda (TF32 is a tensor-core format; the CPU "
            "computes in fp32)");
  k.at_least("train.sample_tokens", r.sample_tokens, int64_t{0});
  k.require(r.sample_tokens == 0 || !r.sample_prompt.empty(),
            {"train.sample_prompt", "train.sample_tokens"},
            "train.sample_prompt must not be empty when train.sample_tokens > 0");
}

}  // namespace

void validate_located(const TrainConfig& cfg, const Origins& origins) {
  nn::ConfigChecks k;
  // A config file names the model's keys "model.<key>" and may leave vocab_size (the
  // tokenizer's, at run time) and n_kv_head (= n_head, resolved by load_config) at 0.
  nn::check_model(cfg.model, {.prefix = "model.", .zero_is_auto = true}, k);
  check_data(cfg.data, k);
  check_optim(cfg.optim, cfg.train.max_iters, k);
  check_train(cfg.train, k);
  if (k.problems().empty()) return;
  const nn::ConfigProblem& first = k.problems().front();
  fail(origins.locate(first.keys), first.what);
}

}  // namespace lmlab::train::config_detail
