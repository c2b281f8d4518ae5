// Linear, Embedding and Dropout: the plain layers.
#pragma once
#include "nn/module.h"

namespace lmlab::nn {

// y = x W^T + b; W (out, in) as in PyTorch, init N(0, std), b zeros. x (..., in) -> (..., out).
// W^T is a transposed view handed to BLAS as a flag, never copied.
class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool bias, Generator& gen, double std = 0.02);
  Tensor forward(const Tensor& x) const;
  Tensor weight, bias;  // bias undefined when disabled
};

// out = weight[ids]; weight (V, C) init N(0, std).
class Embedding : public Module {
 public:
  Embedding(int64_t num, int64_t dim, Generator& gen, double std = 0.02);
  Tensor forward(const Tensor& ids) const { return embedding(weight, ids); }
  Tensor weight;
};

// Inverted dropout while training; the identity in eval mode or with p == 0.
class Dropout : public Module {
 public:
  Dropout(double p, Generator& gen) : p_(p), gen_(&gen) {}
  Tensor forward(const Tensor& x) const { return dropout(x, p_, *gen_, is_training()); }

 private:
  double p_;
  Generator* gen_;
};

}  // namespace lmlab::nn
