// The config's range rules, one per key, then the rules between keys. Each message names the key
// and the value ("optim.lr must be > 0, got -1") and is located where the user set that key.
#include <cmath>
#include <utility>

#include "autograd/error.h"
#include "train/config/schema.h"

namespace lmlab::train::config_detail {
namespace {

std::string show(int64_t v) { return std::to_string(v); }
std::string show(double v) { return format_real(v); }
std::string show(const std::string& v) { return "'" + v + "'"; }

// Checks against one config; every failure throws at the location of the keys involved.
class Checker {
 public:
  Checker(const TrainConfig& cfg, const Origins& origins) : c(cfg), origins_(origins) {}

  void require(bool ok, std::initializer_list<std::string> keys, const std::string& what) const {
    if (!ok) fail(origins_.locate(keys), what);
  }
  template <class T>
  void greater(const std::string& key, T v, T bound) const {
    require(v > bound, {key}, key + " must be > " + show(bound) + ", got " + show(v));
  }
  template <class T>
  void at_least(const std::string& key, T v, T bound) const {
    require(v >= bound, {key}, key + " must be >= " + show(bound) + ", got " + show(v));
  }
  // Model sizes fit int32 (token ids, kernel loops), so products like 8 * n_embd never overflow.
  void size_limit(const std::string& key, int64_t v) const {
    const int64_t max = 2147483647;
    require(v <= max, {key}, key + " must be <= " + show(max) + ", got " + show(v));
  }
  // lo <= v < hi, or lo < v < hi when `open_low`.
  void in_range(const std::string& key, double v, double lo, double hi, bool open_low) const {
    const bool ok = (open_low ? v > lo : v >= lo) && v < hi;
    require(ok, {key},
            key + " must be in " + (open_low ? "(" : "[") + show(lo) + ", " + show(hi) + "), got " +
                show(v));
  }
  void one_of(const std::string& key, const std::string& v,
              std::initializer_list<const char*> allowed) const {
    std::string list;
    for (const char* a : allowed) {
      if (v == a) return;
      list += (list.empty() ? "" : ", ") + std::string(a);
    }
    require(false, {key}, key + " must be one of " + list + ", got " + show(v));
  }
  void finite(const std::string& key, double v) const {
    require(std::isfinite(v), {key}, key + " must be a finite number, got " + show(v));
  }

  const TrainConfig& c;

 private:
  const Origins& origins_;
};

void check_model(const Checker& k) {
  const nn::ModelConfig& m = k.c.model;
  k.at_least<int64_t>("model.vocab_size", m.vocab_size, 0);
  k.greater<int64_t>("model.block_size", m.block_size, 0);
  k.greater<int64_t>("model.n_layer", m.n_layer, 0);
  k.greater<int64_t>("model.n_head", m.n_head, 0);
  k.at_least<int64_t>("model.n_kv_head", m.n_kv_head, 0);
  k.greater<int64_t>("model.n_embd", m.n_embd, 0);
  k.greater<int64_t>("model.mlp_multiple_of", m.mlp_multiple_of, 0);
  k.at_least<int64_t>("model.mlp_hidden", m.mlp_hidden, 0);
  for (const auto& [key, v] : {std::pair<const char*, int64_t>{"model.vocab_size", m.vocab_size},
                               {"model.block_size", m.block_size},
                               {"model.n_layer", m.n_layer},
                               {"model.n_head", m.n_head},
                               {"model.n_kv_head", m.n_kv_head},
                               {"model.n_embd", m.n_embd},
                               {"model.mlp_multiple_of", m.mlp_multiple_of},
                               {"model.mlp_hidden", m.mlp_hidden}})
    k.size_limit(key, v);
  k.finite("model.rope_base", m.rope_base);
  k.greater("model.rope_base", m.rope_base, 0.0);
  k.finite("model.norm_eps", m.norm_eps);
  k.greater("model.norm_eps", m.norm_eps, 0.0);
  k.in_range("model.dropout", m.dropout, 0, 1, false);
  k.finite("model.init_std", m.init_std);
  k.greater("model.init_std", m.init_std, 0.0);

  k.require(
      m.n_embd % m.n_head == 0, {"model.n_embd", "model.n_head"},
      "model.n_embd " + show(m.n_embd) + " is not divisible by model.n_head " + show(m.n_head));
  const int64_t kv = m.n_kv_head == 0 ? m.n_head : m.n_kv_head;
  k.require(m.n_head % kv == 0, {"model.n_head", "model.n_kv_head"},
            "model.n_head " + show(m.n_head) + " is not divisible by model.n_kv_head " + show(kv));
  k.require(
      m.position != nn::PositionType::Rope || m.head_size() % 2 == 0,
      {"model.position", "model.n_embd", "model.n_head"},
      "model.position rope needs an even head size, got n_embd / n_head = " + show(m.head_size()));
}

void check_data(const Checker& k) {
  k.require(!k.c.data.corpus.empty(), {"data.corpus"}, "data.corpus must not be empty");
  k.one_of("data.tokenizer", k.c.data.tokenizer, {"char", "byte"});
  k.in_range("data.val_fraction", k.c.data.val_fraction, 0, 1, true);
}

void check_optim(const Checker& k) {
  const OptimConfig& o = k.c.optim;
  k.one_of("optim.name", o.name, {"adamw", "sgd"});
  k.finite("optim.lr", o.lr);
  k.greater("optim.lr", o.lr, 0.0);
  k.finite("optim.min_lr", o.min_lr);
  k.at_least("optim.min_lr", o.min_lr, 0.0);
  k.one_of("optim.schedule", o.schedule, {"cosine", "constant"});
  k.at_least<int64_t>("optim.warmup_iters", o.warmup_iters, 0);
  k.at_least<int64_t>("optim.decay_iters", o.decay_iters, 0);
  k.in_range("optim.beta1", o.beta1, 0, 1, false);
  k.in_range("optim.beta2", o.beta2, 0, 1, false);
  k.finite("optim.eps", o.eps);
  k.greater("optim.eps", o.eps, 0.0);
  k.finite("optim.weight_decay", o.weight_decay);
  k.at_least("optim.weight_decay", o.weight_decay, 0.0);
  k.in_range("optim.momentum", o.momentum, 0, 1, false);
  k.finite("optim.grad_clip", o.grad_clip);
  k.at_least("optim.grad_clip", o.grad_clip, 0.0);

  k.require(o.min_lr <= o.lr, {"optim.min_lr", "optim.lr"},
            "optim.min_lr " + show(o.min_lr) + " must be <= optim.lr " + show(o.lr));
  if (o.decay_iters > 0) {
    k.require(o.warmup_iters <= o.decay_iters, {"optim.warmup_iters", "optim.decay_iters"},
              "optim.warmup_iters " + show(o.warmup_iters) + " must be <= optim.decay_iters " +
                  show(o.decay_iters));
  } else if (o.schedule == "cosine") {
    // decay_iters 0 means "decay until max_iters": the warmup must end by then
    k.require(o.warmup_iters <= k.c.train.max_iters,
              {"optim.warmup_iters", "optim.decay_iters", "train.max_iters"},
              "optim.warmup_iters " + show(o.warmup_iters) +
                  " must be <= the decay length, train.max_iters " + show(k.c.train.max_iters) +
                  " (optim.decay_iters is 0)");
  }
}

void check_train(const Checker& k) {
  const RunConfig& r = k.c.train;
  k.greater<int64_t>("train.max_iters", r.max_iters, 0);
  k.greater<int64_t>("train.batch_size", r.batch_size, 0);
  k.at_least<int64_t>("train.grad_accum", r.grad_accum, 1);
  k.greater<int64_t>("train.eval_interval", r.eval_interval, 0);
  k.greater<int64_t>("train.log_interval", r.log_interval, 0);
  k.at_least<int64_t>("train.checkpoint_interval", r.checkpoint_interval, 0);
  k.at_least<int64_t>("train.bucket_mb", r.bucket_mb, 1);
  k.at_least<int64_t>("train.seed", r.seed, 0);
  k.at_least<int64_t>("train.threads", r.threads, 0);
  k.one_of("train.device", r.device, {"cpu", "cuda"});
  k.at_least<int64_t>("train.sample_tokens", r.sample_tokens, 0);
  k.require(r.sample_tokens == 0 || !r.sample_prompt.empty(),
            {"train.sample_prompt", "train.sample_tokens"},
            "train.sample_prompt must not be empty when train.sample_tokens > 0");
}

}  // namespace

void validate_located(const TrainConfig& cfg, const Origins& origins) {
  const Checker k(cfg, origins);
  check_model(k);
  check_data(k);
  check_optim(k);
  check_train(k);
  // The model's own rules, as a backstop for any it adds later (vocab_size 0 is filled at run
  // time and n_kv_head 0 means n_head, so check the model as it will be built).
  nn::ModelConfig m = cfg.model;
  if (m.vocab_size == 0) m.vocab_size = 1;
  if (m.n_kv_head == 0) m.n_kv_head = m.n_head;
  try {
    m.validate();
  } catch (const Error& e) {
    fail(origins.locate({}), e.what());
  }
}

}  // namespace lmlab::train::config_detail
