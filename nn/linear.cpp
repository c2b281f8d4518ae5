#include "nn/linear.h"

namespace lmlab::nn {

Linear::Linear(int64_t in, int64_t out, bool use_bias, Generator& gen, double std) {
  weight = register_parameter("weight", Tensor::randn({out, in}, gen, DType::F32, 0, std));
  if (use_bias) bias = register_parameter("bias", Tensor::zeros({out}));
}

Tensor Linear::forward(const Tensor& x) const {
  if (x.size(-1) != weight.size(1))
    throw Error("[linear] input's last dim is " + std::to_string(x.size(-1)) +
                " but the layer takes " + std::to_string(weight.size(1)) + " features (x is " +
                to_string(x.shape()) + ", weight is " + to_string(weight.shape()) + ")");
  Tensor y = matmul(x, transpose(weight, 0, 1));
  return bias.defined() ? add(y, bias) : y;
}

Embedding::Embedding(int64_t num, int64_t dim, Generator& gen, double std) {
  weight = register_parameter("weight", Tensor::randn({num, dim}, gen, DType::F32, 0, std));
}

}  // namespace lmlab::nn
