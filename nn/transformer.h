// Block and TransformerLM: the decoder-only language model every ablation trains.
#pragma once
#include <memory>
#include <vector>

#include "nn/attention.h"
#include "nn/config.h"
#include "nn/mlp.h"
#include "nn/norm.h"
#include "nn/options.h"

namespace lmlab::nn {

// pre:      x = x + drop(attn(norm1(x)));  x = x + drop(mlp(norm2(x)))
// post:     x = norm1(x + drop(attn(x)));  x = norm2(x + drop(mlp(x)))
// deepnorm: x = norm1(a x + drop(attn(x))); x = norm2(a x + drop(mlp(x))), a = (2 n_layer)^(1/4)
class Block : public Module {
 public:
  // Weights come from `gen`, dropout masks from `dropout_gen` (default: `gen`), which the block
  // keeps a pointer to: it must outlive the block.
  Block(const ModelConfig& c, Generator& gen, Generator* dropout_gen = nullptr);
  Tensor forward(const Tensor& x, const Rope* rope, int64_t pos0 = 0,
                 LayerKV* cache = nullptr) const;

 private:
  NormPlacement placement_;
  double alpha_ = 1;
  std::shared_ptr<Norm> norm1_, norm2_;
  std::shared_ptr<CausalSelfAttention> attn_;
  std::shared_ptr<Mlp> mlp_;
  std::shared_ptr<Dropout> drop_;
  SiteLayers attn_out_layers_, mlp_out_layers_;  // Site::AttentionOut, Site::MlpOut
};

// The KV cache of a whole model for decoding: 2 * n_layer * B * n_kv_head * max_T * HS floats.
struct KVCache {
  std::vector<LayerKV> layers;
  int64_t length = 0;  // positions filled so far
  int64_t bytes() const;
};

class TransformerLM : public Module {
 public:
  TransformerLM(const ModelConfig& config, Generator& gen);
  const ModelConfig& config() const { return config_; }
  // ids int32 (B, T), T <= block_size -> logits (B, T, V).
  Tensor forward(const Tensor& ids) const;
  // Mean cross-entropy of forward(ids) against targets (B, T); over a large vocabulary the logits
  // are formed a chunk of rows at a time (linear_cross_entropy), never all at once.
  Tensor loss(const Tensor& ids, const Tensor& targets) const;
  // An empty cache for `batch` sequences of up to `max_t` (default block_size) positions.
  KVCache make_cache(int64_t batch, int64_t max_t = 0) const;
  // Decoding: feeds ids (B, T_new) at positions cache.length .. + T_new - 1, appends their keys and
  // values, returns their logits (B, T_new, V). Runs without recording (inference only).
  Tensor forward_cached(const Tensor& ids, KVCache& cache) const;
  // The stream dropout masks are drawn from (its state goes into checkpoints for exact resume).
  Generator& dropout_generator() const { return *dropout_gen_; }
  // Hidden states after each block (B, T, C), for diagnostics.
  Tensor forward_hidden(const Tensor& ids, std::vector<Tensor>* per_block = nullptr) const;

 private:
  Tensor run(const Tensor& ids, int64_t pos0, KVCache* cache, std::vector<Tensor>* per_block) const;
  ModelConfig config_;
  std::shared_ptr<Embedding> wte_, wpe_;
  std::shared_ptr<Dropout> drop_;
  std::vector<std::shared_ptr<Block>> blocks_;
  std::shared_ptr<Norm> norm_f_;     // pre-norm only
  std::shared_ptr<Linear> lm_head_;  // untied only
  std::unique_ptr<Rope> rope_;
  std::unique_ptr<Generator> dropout_gen_;
  SiteLayers embedding_layers_, final_layers_;  // Site::Embedding, Site::Final
};

}  // namespace lmlab::nn
