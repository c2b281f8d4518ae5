// TrainConfig: everything one training run needs (model, data, optimizer, loop), loaded from a
// YAML file with sections model / data / optim / train plus "section.key=value" overrides.
// Every key, its type, default and range: docs/config.md.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "nn/options.h"

namespace lmlab::train {

struct DataConfig {
  std::string corpus = "/usr/share/games/fortunes";  // text file or directory; bin: token files
  std::string format = "text";                       // text | bin (prepared token files, mapped)
  std::string tokenizer = "char";                    // char | byte | bpe
  std::string tokenizer_file = "";  // bpe: a tokenizer.json; "": one trained on the corpus
  int64_t bpe_vocab_size = 4096;    // bpe without tokenizer_file: the vocabulary it trains to
  double val_fraction = 0.1;        // the tail of the corpus held out, in (0, 1)

  bool operator==(const DataConfig&) const = default;
};

struct OptimConfig {
  std::string name = "adamw";  // adamw | sgd
  double lr = 1e-3, min_lr = 1e-4;
  std::string schedule = "cosine";  // cosine | constant (both after a linear warmup)
  int64_t warmup_iters = 100;
  int64_t decay_iters = 0;  // 0: = train.max_iters (see effective_decay_iters)
  double beta1 = 0.9, beta2 = 0.99, eps = 1e-8, weight_decay = 0.1;
  double momentum = 0.9;   // sgd only
  double grad_clip = 1.0;  // max global grad norm; 0 disables clipping

  bool operator==(const OptimConfig&) const = default;
};

struct RunConfig {
  int64_t max_iters = 2000, batch_size = 12, grad_accum = 1, eval_interval = 250, log_interval = 1;
  int64_t checkpoint_interval = 0;  // 0: only at the end (and on SIGINT)
  // A cheap validation estimate between whole-split evaluations: the loss on val_subset_tokens
  // tokens spread evenly over the split, every val_subset_interval steps (0: never).
  int64_t val_subset_interval = 0, val_subset_tokens = 4096;
  int64_t seed = 1337;
  int64_t threads = 0;    // 0: all cores (shared by the data-parallel ranks of a machine)
  int64_t bucket_mb = 8;  // data-parallel gradient all-reduce bucket size (docs/distributed.md)
  std::string device = "cpu";  // cpu | cuda
  // fp32 | tf32 | bf16. tf32 (CUDA only): cuBLAS GEMMs (and the flash attention kernels, when
  // enabled) on TF32 tensor cores with fp32 accumulation. bf16: mixed precision
  // (autograd/autocast.h): matmuls and attention in bfloat16 with fp32 accumulation, everything
  // else and the parameters and optimizer state in fp32; on CUDA the other GEMMs on TF32. The CPU
  // runs bf16 as an emulation (bf16 rounding, fp32 GEMMs): same numerics, slower than fp32.
  std::string precision = "fp32";
  std::string run_dir = "";  // "": runs/<config file stem> (see resolved_run_dir)
  int64_t sample_tokens = 200;
  std::string sample_prompt = "\n";

  bool operator==(const RunConfig&) const = default;
};

struct TrainConfig {
  // The option table's defaults: vocab_size 0, taken from the tokenizer at run time; n_kv_head 0,
  // = n_head (load_config resolves it, so a loaded config always holds the real head count).
  nn::ModelConfig model = nn::model_defaults();
  DataConfig data;
  OptimConfig optim;
  RunConfig train;
  std::string source;  // the file it came from ("" when built in code); not a YAML key
};

// Reads the YAML file at `path`, then applies `overrides` ("section.key=value", in order, later
// ones win), resolves n_kv_head 0 to n_head and validates everything. An empty file (or one of
// comments only) gives all defaults; a section may be empty. Throws lmlab::Error located at the
// fault: "configs/tiny.yaml:7: optim.lr must be > 0, got -1", "configs/tiny.yaml:3: unknown key
// 'model.n_heads' (did you mean 'model.n_head'?)", "--set optim.lr=-1: optim.lr must be > 0,
// got -1". An override value is taken verbatim; one starting with a quote is read as a YAML
// scalar, so `train.sample_prompt="ROMEO:\n"` sets an escaped string.
TrainConfig load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// The same for YAML text already in memory (a checkpoint's metadata); `source` names it in errors.
TrainConfig load_config_text(const std::string& text, const std::string& source,
                             const std::vector<std::string>& overrides = {});

// The fully resolved config as YAML: every key of every section written out, with a short comment
// each. load_config(to_yaml(c)) gives back c exactly (doubles in shortest round-trip form) for any
// c that load_config returned.
std::string to_yaml(const TrainConfig& cfg);
// The first line where two to_yaml texts differ, section-qualified and without comments:
// {"optim.lr: 0.002", "optim.lr: 0.001"}; {"", ""} when they are equal.
std::pair<std::string, std::string> first_yaml_difference(const std::string& a,
                                                          const std::string& b);

// Checks every key's range and the rules between keys (min_lr <= lr, warmup_iters <= decay_iters,
// and the model's rules of nn::check_model: n_embd divisible by n_head, ...). Throws lmlab::Error
// "<source>: optim.lr must be > 0, got -1" ("[config] optim.lr ..." without a source; no line:
// load_config adds those).
void validate(const TrainConfig& cfg);

// optim.decay_iters, or train.max_iters when it is 0.
int64_t effective_decay_iters(const TrainConfig& cfg);

// train.run_dir, or "runs/<stem of source>" when it is empty ("runs/run" without a source).
std::string resolved_run_dir(const TrainConfig& cfg);

// Every key "section.name" in file order (model, data, optim, train), for docs, tests and tools.
std::vector<std::string> config_keys();

}  // namespace lmlab::train
