#include "nn/attention.h"

#include <cmath>

namespace lmlab::nn {

CausalSelfAttention::CausalSelfAttention(const ModelConfig& c, Generator& gen, double beta)
    : n_head_(c.n_head), n_kv_head_(c.n_kv_head), head_size_(c.head_size()) {
  const int64_t d = c.n_embd, hs = head_size_;
  const double std_out = c.init_std / std::sqrt(2.0 * double(c.n_layer)) * beta;
  wq_ = register_module("wq", std::make_shared<Linear>(d, n_head_ * hs, c.bias, gen, c.init_std));
  wk_ =
      register_module("wk", std::make_shared<Linear>(d, n_kv_head_ * hs, c.bias, gen, c.init_std));
  wv_ = register_module(
      "wv", std::make_shared<Linear>(d, n_kv_head_ * hs, c.bias, gen, c.init_std * beta));
  wo_ = register_module("wo", std::make_shared<Linear>(n_head_ * hs, d, c.bias, gen, std_out));
  q_layers_ = register_modules(plugged_layers(Site::Query, c, gen));
  k_layers_ = register_modules(plugged_layers(Site::Key, c, gen));
}

Tensor CausalSelfAttention::forward(const Tensor& x, const Rope* rope, int64_t pos0,
                                    LayerKV* cache) const {
  const int64_t B = x.size(0), T = x.size(1);
  // (B, T, H * HS) -> (B, H, T, HS): a transposed view; the attention op makes it contiguous.
  auto heads = [&](const Tensor& t, int64_t h) {
    return transpose(reshape(t, {B, T, h, head_size_}), 1, 2);
  };
  Tensor q = apply_layers(q_layers_, heads(wq_->forward(x), n_head_));
  Tensor k = apply_layers(k_layers_, heads(wk_->forward(x), n_kv_head_));
  Tensor v = heads(wv_->forward(x), n_kv_head_);
  if (rope) {
    q = rope->apply(q, pos0);
    k = rope->apply(k, pos0);
  }
  if (cache) {
    const int64_t max_t = cache->k.size(2);
    if (pos0 + T > max_t)
      throw Error("[attention] the KV cache holds " + std::to_string(max_t) + " positions; " +
                  std::to_string(pos0 + T) + " requested");
    cache->k.narrow(2, pos0, T).copy_(k);
    cache->v.narrow(2, pos0, T).copy_(v);
    k = cache->k.narrow(2, 0, pos0 + T);
    v = cache->v.narrow(2, 0, pos0 + T);
  }
  Tensor y = causal_attention(q, k, v);                           // (B, NH, T, HS)
  y = reshape(transpose(y, 1, 2), {B, T, n_head_ * head_size_});  // (B, T, C)
  return wo_->forward(y);
}

}  // namespace lmlab::nn
