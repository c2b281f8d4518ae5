// The feed-forward layers: GELU MLP (GPT-2) and SwiGLU (Shazeer 2020; LLaMA).
#pragma once
#include <memory>

#include "nn/config.h"
#include "nn/linear.h"

namespace lmlab::nn {

// gelu:   y = proj(gelu(fc(x)))                 fc: d -> h, proj: h -> d
// swiglu: y = w2(silu(w1(x)) * w3(x))           w1, w3: d -> h, w2: h -> d
// h from ModelConfig::hidden_size(). The output projection (proj / w2) is a residual projection:
// init N(0, init_std / sqrt(2 n_layer)), times `out_scale` (DeepNorm's beta; 1 otherwise), and
// DeepNorm scales fc / w1 / w3 by beta too.
class Mlp : public Module {
 public:
  Mlp(const ModelConfig& c, Generator& gen, double beta = 1);
  Tensor forward(const Tensor& x) const;

 private:
  MlpType type_;
  std::shared_ptr<Linear> fc_, proj_;     // gelu
  std::shared_ptr<Linear> w1_, w2_, w3_;  // swiglu
};

}  // namespace lmlab::nn
