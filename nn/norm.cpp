#include "nn/norm.h"

namespace lmlab::nn {

LayerNorm::LayerNorm(int64_t dim, double eps, bool use_bias) : eps_(eps) {
  weight = register_parameter("weight", Tensor::ones({dim}));
  if (use_bias) bias = register_parameter("bias", Tensor::zeros({dim}));
}

RMSNorm::RMSNorm(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", Tensor::ones({dim}));
}

// The parameters sit directly under the Norm's name ("blocks.0.norm1.weight"), so the state dict
// reads the same whichever norm is chosen.
Norm::Norm(const ModelConfig& c) {
  if (c.norm == NormType::LayerNorm) {
    ln_ = std::make_shared<LayerNorm>(c.n_embd, c.norm_eps, c.bias);
    register_parameter("weight", ln_->weight);
    if (ln_->bias.defined()) register_parameter("bias", ln_->bias);
  } else {
    rms_ = std::make_shared<RMSNorm>(c.n_embd, c.norm_eps);
    register_parameter("weight", rms_->weight);
  }
}

Tensor Norm::forward(const Tensor& x) const { return ln_ ? ln_->forward(x) : rms_->forward(x); }

}  // namespace lmlab::nn
