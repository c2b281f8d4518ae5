// Causal self-attention with n_head query heads and n_kv_head key/value heads: MHA when equal,
// MQA when n_kv_head = 1, GQA between. Query head h reads kv head h / (n_head / n_kv_head);
// K and V are computed and cached once per kv head and never copied per query head.
#pragma once
#include <memory>

#include "nn/config.h"
#include "nn/linear.h"
#include "nn/options.h"
#include "nn/rope.h"

namespace lmlab::nn {

// One layer's slice of the KV cache: k and v are (B, KVH, max_T, HS); the first `length`
// positions are filled.
struct LayerKV {
  Tensor k, v;
};

class CausalSelfAttention : public Module {
 public:
  // beta scales the init of wv and wo (DeepNorm); 1 otherwise.
  CausalSelfAttention(const ModelConfig& c, Generator& gen, double beta = 1);
  // x (B, T, C) at positions pos0 .. pos0 + T - 1 -> (B, T, C). With a cache, the new keys and
  // values are written at [pos0, pos0 + T) and attention reads positions [0, pos0 + T).
  Tensor forward(const Tensor& x, const Rope* rope, int64_t pos0 = 0,
                 LayerKV* cache = nullptr) const;

 private:
  int64_t n_head_, n_kv_head_, head_size_;
  std::shared_ptr<Linear> wq_, wk_, wv_, wo_;
  SiteLayers q_layers_, k_layers_;  // Site::Query, Site::Key (e.g. QK-norm)
};

}  // namespace lmlab::nn
