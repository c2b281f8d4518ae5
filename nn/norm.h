// LayerNorm and RMSNorm layers over the last dim (fused kernels; conventions in autograd/ops.h).
#pragma once
#include <memory>

#include "nn/config.h"
#include "nn/module.h"

namespace lmlab::nn {

// y = (x - mean) / sqrt(var + eps) * weight + bias; weight = 1, bias = 0 at init.
class LayerNorm : public Module {
 public:
  LayerNorm(int64_t dim, double eps = 1e-5, bool bias = true);
  Tensor forward(const Tensor& x) const { return layer_norm(x, weight, bias, eps_); }
  Tensor weight, bias;

 private:
  double eps_;
};

// y = x * rsqrt(mean(x^2) + eps) * weight (LLaMA); weight = 1 at init, no bias.
class RMSNorm : public Module {
 public:
  RMSNorm(int64_t dim, double eps = 1e-5);
  Tensor forward(const Tensor& x) const { return rms_norm(x, weight, eps_); }
  Tensor weight;

 private:
  double eps_;
};

// The norm a config asks for, behind one interface.
class Norm : public Module {
 public:
  Norm(const ModelConfig& c);
  Tensor forward(const Tensor& x) const;

 private:
  std::shared_ptr<LayerNorm> ln_;
  std::shared_ptr<RMSNorm> rms_;
};

}  // namespace lmlab::nn
