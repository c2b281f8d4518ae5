#include "nn/config.h"

#include "autograd/error.h"

namespace lmlab::nn {

int64_t ModelConfig::hidden_size() const {
  if (mlp_hidden > 0) return mlp_hidden;
  if (mlp == MlpType::Gelu) return 4 * n_embd;
  // LLaMA: int(2 * 4d / 3) rounded up to a multiple of multiple_of
  const int64_t h = 2 * 4 * n_embd / 3;
  return (h + mlp_multiple_of - 1) / mlp_multiple_of * mlp_multiple_of;
}

static void require(bool ok, const std::string& what) {
  if (!ok) throw Error("[model] " + what);
}

void ModelConfig::validate() const {
  auto s = [](auto v) { return std::to_string(v); };
  require(vocab_size > 0, "vocab_size must be > 0, got " + s(vocab_size));
  require(block_size > 0, "block_size must be > 0, got " + s(block_size));
  require(n_layer > 0, "n_layer must be > 0, got " + s(n_layer));
  require(n_head > 0, "n_head must be > 0, got " + s(n_head));
  require(n_kv_head > 0, "n_kv_head must be > 0, got " + s(n_kv_head));
  require(n_embd > 0, "n_embd must be > 0, got " + s(n_embd));
  require(n_embd % n_head == 0, "n_embd " + s(n_embd) + " is not divisible by n_head " + s(n_head));
  require(n_head % n_kv_head == 0,
          "n_head " + s(n_head) + " is not divisible by n_kv_head " + s(n_kv_head));
  require(position != PositionType::Rope || head_size() % 2 == 0,
          "RoPE needs an even head size, got n_embd / n_head = " + s(head_size()));
  require(rope_base > 0, "rope_base must be > 0, got " + s(rope_base));
  require(mlp_multiple_of > 0, "mlp_multiple_of must be > 0, got " + s(mlp_multiple_of));
  require(mlp_hidden >= 0, "mlp_hidden must be >= 0, got " + s(mlp_hidden));
  require(norm_eps > 0, "norm_eps must be > 0, got " + s(norm_eps));
  require(dropout >= 0 && dropout < 1, "dropout must be in [0, 1), got " + s(dropout));
  require(init_std > 0, "init_std must be > 0, got " + s(init_std));
}

std::string to_string(NormType t) { return t == NormType::LayerNorm ? "layernorm" : "rmsnorm"; }
std::string to_string(NormPlacement p) {
  switch (p) {
    case NormPlacement::Pre: return "pre";
    case NormPlacement::Post: return "post";
    case NormPlacement::DeepNorm: return "deepnorm";
  }
  return "?";
}
std::string to_string(MlpType m) { return m == MlpType::Gelu ? "gelu" : "swiglu"; }
std::string to_string(PositionType p) { return p == PositionType::Learned ? "learned" : "rope"; }

}  // namespace lmlab::nn
