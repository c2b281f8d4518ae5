// Checkpoints: a safetensors file holding the model's parameters (under their own names), the
// optimizer's state (under its own keys, e.g. "adamw.m.<param>") and the metadata a run needs to
// continue bit for bit. Layout and keys: docs/checkpoint.md.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "autograd/random.h"
#include "nn/transformer.h"
#include "optim/optimizer.h"
#include "train/config/config.h"
#include "train/io/safetensors.h"

namespace lmlab::train {

inline constexpr int kCheckpointVersion = 1;

struct CheckpointState {
  int64_t step = 0;                               // iterations completed
  int64_t tokens_seen = 0;                        // training tokens consumed
  double best_val_loss = 0;                       // NaN-free: 0 until the first eval
  int64_t clipped_steps = 0;                      // steps whose gradient norm was clipped
  uint64_t data_seed = 0, data_offset = 0;        // the batch generator
  uint64_t dropout_seed = 0, dropout_offset = 0;  // the model's dropout stream
  int64_t ranks = 1;  // data-parallel ranks that wrote it (the global batch is batch_size * ranks)
};

// Writes weights, optimizer state (if `opt` is given) and metadata atomically (temp file, fsync,
// rename): a crash or a full disk leaves the previous checkpoint at `path` intact.
void save_checkpoint(const std::string& path, const nn::TransformerLM& model,
                     const optim::Optimizer* opt, const TrainConfig& cfg,
                     const std::string& tokenizer, const CheckpointState& state);

// A checkpoint read back: its file, resolved config, tokenizer and state.
struct Checkpoint {
  SafeTensors file;
  TrainConfig config;
  std::string tokenizer;  // data::Tokenizer::serialize() form
  CheckpointState state;
  bool has_optimizer = false;
};

// Reads and validates the metadata (format, version, config, tokenizer). Throws lmlab::Error
// naming the file: not a checkpoint, a newer format version, corrupt metadata.
Checkpoint load_checkpoint(const std::string& path);

// Copies the checkpoint's weights into `model` (every parameter present with its exact shape,
// no unknown ones). Errors name the file, the parameter and both shapes.
void load_weights(const Checkpoint& ckpt, nn::TransformerLM& model);
// Restores optimizer state; throws if the checkpoint has none or it does not fit.
void load_optimizer(const Checkpoint& ckpt, optim::Optimizer& opt);

}  // namespace lmlab::train
