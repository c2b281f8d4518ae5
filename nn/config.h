// ModelConfig: every architectural choice the ablations compare, with its validation.
#pragma once
#include <cstdint>
#include <string>

#include "autograd/shape.h"
#include "autograd/types.h"

namespace lmlab::nn {

enum class NormType { LayerNorm, RMSNorm };
// pre:  x = x + f(norm(x)), final norm before the head (GPT-2, LLaMA)
// post: x = norm(x + f(x)), no final norm (Vaswani et al. 2017)
// deepnorm: x = norm(alpha * x + f(x)) with alpha = (2N)^(1/4) and beta-scaled init (Wang et al.
// 2022)
enum class NormPlacement { Pre, Post, DeepNorm };
enum class MlpType { Gelu, SwiGlu };
enum class PositionType { Learned, Rope };

struct ModelConfig {
  int64_t vocab_size = 65;
  int64_t block_size = 64;  // the longest sequence (context) the model accepts
  int64_t n_layer = 4;
  int64_t n_head = 4;
  int64_t n_kv_head = 4;  // == n_head: MHA; 1: MQA; between: GQA
  int64_t n_embd = 128;
  NormType norm = NormType::LayerNorm;
  NormPlacement norm_placement = NormPlacement::Pre;
  MlpType mlp = MlpType::Gelu;
  int64_t mlp_multiple_of = 16;  // SwiGLU hidden int(2 * 4d / 3) is rounded up to this multiple
  int64_t mlp_hidden = 0;        // 0: the default (4d for GELU, the SwiGLU rule above)
  PositionType position = PositionType::Learned;
  double rope_base = 10000;
  double norm_eps = 1e-5;
  double dropout = 0;
  bool bias = true;  // biases in Linear layers and LayerNorm
  bool tie_embeddings = true;
  double init_std = 0.02;

  int64_t head_size() const { return n_embd / n_head; }
  int64_t hidden_size() const;  // the MLP's hidden width
  // Throws lmlab::Error naming the parameter and its value, e.g.
  // "[model] n_embd 100 is not divisible by n_head 3".
  void validate() const;
};

using lmlab::to_string;  // keep Shape / DType overloads visible next to these
std::string to_string(NormType t);
std::string to_string(NormPlacement p);
std::string to_string(MlpType m);
std::string to_string(PositionType p);

}  // namespace lmlab::nn
