// The training loop: config -> data -> model -> optimizer -> steps, with metrics, evaluation,
// checkpoints, bit-exact resume, SIGINT/SIGTERM handling and divergence detection.
#pragma once
#include <memory>
#include <string>

#include "train/config/config.h"

namespace lmlab::data {
class TokenDataset;
}  // namespace lmlab::data
namespace lmlab::nn {
class TransformerLM;
}  // namespace lmlab::nn
namespace lmlab::optim {
class Optimizer;
}  // namespace lmlab::optim

namespace lmlab::train {

// The optimizer a config asks for (optim.name), over the model's named parameters (AdamW: decay on
// matrices only). Build it after model.to(device): its state lives where the parameters do.
std::unique_ptr<optim::Optimizer> make_optimizer(const TrainConfig& cfg, nn::TransformerLM& model);

struct TrainOptions {
  bool resume = false;        // continue from <run_dir>/ckpt.safetensors if it exists
  std::string init_from;      // start from these weights (a checkpoint, possibly weights-only)
  bool init_missing = false;  // init_from: parameters it lacks keep their init (else an error)
  bool quiet = false;         // no progress output (tests, ablations)
};

struct TrainResult {
  std::string run_dir;
  int64_t steps = 0;          // iterations completed
  double final_val_loss = 0;  // on the whole validation split
  double best_val_loss = 0;
  double tokens_per_s = 0;   // median over the run's steps
  bool diverged = false;     // a non-finite loss or gradient norm stopped the run
  bool interrupted = false;  // SIGINT / SIGTERM: checkpoint written, resumable
};

// Runs (or resumes) a training run. Writes into the run directory: config.yaml (resolved),
// metrics.csv, ckpt.safetensors, sample.txt, and diverged.json when it diverges.
// Throws lmlab::Error on bad input (corpus, config, checkpoint, unwritable directory).
TrainResult train(const TrainConfig& cfg, const TrainOptions& options = {});

// Mean cross-entropy over the whole validation split (see docs/data.md); also returns the number
// of predicted tokens through `tokens`. across_ranks: every data-parallel rank must call it; each
// scores a share of the batches and all get the one-process result, bit for bit.
// subset_windows > 0: an estimate from that many windows spread evenly over the split
// (TokenDataset::subset_batch), the same ones every call.
double evaluate(const nn::TransformerLM& model, const data::TokenDataset& data, int64_t batch,
                int64_t* tokens = nullptr, bool across_ranks = false, int64_t subset_windows = 0);

}  // namespace lmlab::train
