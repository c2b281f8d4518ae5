#include "nn/transformer.h"

#include <cmath>

namespace lmlab::nn {

Block::Block(const ModelConfig& c, Generator& gen, Generator* dropout_gen)
    : placement_(c.norm_placement) {
  // DeepNet (Wang et al. 2022), decoder-only: alpha = (2N)^(1/4), beta = (8N)^(-1/4)
  double beta = 1;
  if (placement_ == NormPlacement::DeepNorm) {
    alpha_ = std::pow(2.0 * double(c.n_layer), 0.25);
    beta = std::pow(8.0 * double(c.n_layer), -0.25);
  }
  norm1_ = register_module("norm1", std::make_shared<Norm>(c));
  attn_ = register_module("attn", std::make_shared<CausalSelfAttention>(c, gen, beta));
  norm2_ = register_module("norm2", std::make_shared<Norm>(c));
  mlp_ = register_module("mlp", std::make_shared<Mlp>(c, gen, beta));
  Generator& masks = dropout_gen ? *dropout_gen : gen;
  drop_ = register_module("drop", std::make_shared<Dropout>(c.dropout, masks));
  attn_out_layers_ = register_modules(plugged_layers(Site::AttentionOut, c, gen));
  mlp_out_layers_ = register_modules(plugged_layers(Site::MlpOut, c, gen));
}

Tensor Block::forward(const Tensor& x_in, const Rope* rope, int64_t pos0, LayerKV* cache) const {
  Tensor x = x_in;
  // Each branch's output through its site's plugged layers, then dropout.
  auto attn = [&](const Tensor& in) {
    return drop_->forward(apply_layers(attn_out_layers_, attn_->forward(in, rope, pos0, cache)));
  };
  auto mlp = [&](const Tensor& in) {
    return drop_->forward(apply_layers(mlp_out_layers_, mlp_->forward(in)));
  };
  if (placement_ == NormPlacement::Pre) {
    x = add(x, attn(norm1_->forward(x)));
    return add(x, mlp(norm2_->forward(x)));
  }
  auto skip = [&](const Tensor& t) { return alpha_ == 1 ? t : mul(t, alpha_); };
  x = norm1_->forward(add(skip(x), attn(x)));
  return norm2_->forward(add(skip(x), mlp(x)));
}

int64_t KVCache::bytes() const {
  int64_t n = 0;
  for (const LayerKV& l : layers)
    n += (l.k.numel() + l.v.numel()) * int64_t(dtype_size(l.k.dtype()));
  return n;
}

TransformerLM::TransformerLM(const ModelConfig& config, Generator& gen) : config_(config) {
  config_.validate();
  const ModelConfig& c = config_;
  // Dropout masks come from their own stream, so enabling dropout does not shift the init draws.
  dropout_gen_ = std::make_unique<Generator>(gen.seed() ^ 0x5eedd20b0u);
  wte_ =
      register_module("wte", std::make_shared<Embedding>(c.vocab_size, c.n_embd, gen, c.init_std));
  if (c.position == PositionType::Learned)
    wpe_ = register_module("wpe",
                           std::make_shared<Embedding>(c.block_size, c.n_embd, gen, c.init_std));
  else
    rope_ = std::make_unique<Rope>(c.head_size(), c.block_size, c.rope_base);
  drop_ = register_module("drop", std::make_shared<Dropout>(c.dropout, *dropout_gen_));
  for (int64_t l = 0; l < c.n_layer; ++l)
    blocks_.push_back(register_module("blocks." + std::to_string(l),
                                      std::make_shared<Block>(c, gen, dropout_gen_.get())));
  if (c.norm_placement == NormPlacement::Pre)
    norm_f_ = register_module("norm_f", std::make_shared<Norm>(c));
  if (!c.tie_embeddings)
    lm_head_ = register_module(
        "lm_head", std::make_shared<Linear>(c.n_embd, c.vocab_size, false, gen, c.init_std));
  embedding_layers_ = register_modules(plugged_layers(Site::Embedding, c, gen));
  final_layers_ = register_modules(plugged_layers(Site::Final, c, gen));
}

Tensor TransformerLM::run(const Tensor& ids, int64_t pos0, KVCache* cache,
                          std::vector<Tensor>* per_block) const {
  if (ids.dtype() != DType::I32 || ids.dim() != 2)
    throw Error("[model] ids must be int32 (B, T), got " + lmlab::to_string(ids.dtype()) + " " +
                to_string(ids.shape()));
  const int64_t T = ids.size(1);
  if (pos0 + T > config_.block_size)
    throw Error("[model] sequence length " + std::to_string(pos0 + T) + " exceeds block_size " +
                std::to_string(config_.block_size));
  Tensor x = wte_->forward(ids);  // (B, T, C)
  if (wpe_) {
    Tensor pos = Tensor::arange(double(pos0), double(pos0 + T), 1, DType::I32).to(ids.device());
    x = add(x, wpe_->forward(pos));  // (T, C) broadcast over B
  }
  x = drop_->forward(apply_layers(embedding_layers_, x));
  for (size_t l = 0; l < blocks_.size(); ++l) {
    x = blocks_[l]->forward(x, rope_.get(), pos0, cache ? &cache->layers[l] : nullptr);
    if (per_block) per_block->push_back(x);
  }
  if (norm_f_) x = norm_f_->forward(x);
  return apply_layers(final_layers_, x);
}

Tensor TransformerLM::forward_hidden(const Tensor& ids, std::vector<Tensor>* per_block) const {
  return run(ids, 0, nullptr, per_block);
}

Tensor TransformerLM::forward(const Tensor& ids) const {
  Tensor h = run(ids, 0, nullptr, nullptr);
  return lm_head_ ? lm_head_->forward(h) : matmul(h, transpose(wte_->weight, 0, 1));
}

Tensor TransformerLM::loss(const Tensor& ids, const Tensor& targets) const {
  if (targets.shape() != ids.shape())
    throw Error("[model] targets " + to_string(targets.shape()) + " do not match ids " +
                to_string(ids.shape()));
  // The head and the loss in one op: over a large vocabulary the (B*T, V) logits are never in
  // memory at once (linear_cross_entropy works in row chunks; small ones are forward()'s product).
  const Tensor h = run(ids, 0, nullptr, nullptr);
  const Tensor& w = lm_head_ ? lm_head_->weight : wte_->weight;
  return linear_cross_entropy(reshape(h, {-1, h.size(-1)}), w, reshape(targets, {-1}));
}

KVCache TransformerLM::make_cache(int64_t batch, int64_t max_t) const {
  if (max_t <= 0) max_t = config_.block_size;
  if (max_t > config_.block_size)
    throw Error("[model] a KV cache of " + std::to_string(max_t) +
                " positions exceeds block_size " + std::to_string(config_.block_size));
  KVCache cache;
  const DType dt = wte_->weight.dtype();
  const Device dev = wte_->weight.device();
  for (int64_t l = 0; l < config_.n_layer; ++l)
    cache.layers.push_back(
        {Tensor::zeros({batch, config_.n_kv_head, max_t, config_.head_size()}, dt, dev),
         Tensor::zeros({batch, config_.n_kv_head, max_t, config_.head_size()}, dt, dev)});
  return cache;
}

Tensor TransformerLM::forward_cached(const Tensor& ids, KVCache& cache) const {
  NoGradGuard guard;
  if (int64_t(cache.layers.size()) != config_.n_layer)
    throw Error("[model] the KV cache has " + std::to_string(cache.layers.size()) +
                " layers but the model has " + std::to_string(config_.n_layer) +
                " (make it with make_cache)");
  if (ids.dim() >= 1 && ids.size(0) != cache.layers[0].k.size(0))
    throw Error("[model] batch " + std::to_string(ids.size(0)) + " does not match the cache's " +
                std::to_string(cache.layers[0].k.size(0)));
  Tensor h = run(ids, cache.length, &cache, nullptr);
  cache.length += ids.size(1);
  return lm_head_ ? lm_head_->forward(h) : matmul(h, transpose(wte_->weight, 0, 1));
}

}  // namespace lmlab::nn
