#include "nn/mlp.h"

#include <cmath>

namespace lmlab::nn {

Mlp::Mlp(const ModelConfig& c, Generator& gen, double beta) : type_(c.mlp) {
  const int64_t d = c.n_embd, h = c.hidden_size();
  const double std_in = c.init_std * beta;
  const double std_out = c.init_std / std::sqrt(2.0 * double(c.n_layer)) * beta;
  if (type_ == MlpType::Gelu) {
    fc_ = register_module("fc", std::make_shared<Linear>(d, h, c.bias, gen, std_in));
    proj_ = register_module("proj", std::make_shared<Linear>(h, d, c.bias, gen, std_out));
  } else {
    w1_ = register_module("w1", std::make_shared<Linear>(d, h, c.bias, gen, std_in));
    w3_ = register_module("w3", std::make_shared<Linear>(d, h, c.bias, gen, std_in));
    w2_ = register_module("w2", std::make_shared<Linear>(h, d, c.bias, gen, std_out));
  }
}

Tensor Mlp::forward(const Tensor& x) const {
  if (type_ == MlpType::Gelu) return proj_->forward(gelu(fc_->forward(x)));
  return w2_->forward(mul(silu(w1_->forward(x)), w3_->forward(x)));
}

}  // namespace lmlab::nn
