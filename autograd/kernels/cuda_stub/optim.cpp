// CUDA stubs for the optimizer kernels (AdamW, SGD, the clipping helpers): each throws "[op] ...".
#include "autograd/kernels/optim.h"

#include "autograd/kernels/cuda_stub/no_cuda.h"

namespace lmlab::cuda {

void adamw_step(const std::vector<AdamWTensor>&, double, double, double, double) {
  no_cuda("adamw");
}
void sgd_step(float*, const float*, float*, int64_t, double, double, double) { no_cuda("sgd"); }
std::vector<double> sum_squares_each(const std::vector<std::pair<const float*, int64_t>>&) {
  no_cuda("clip_grad_norm");
}
void scale(float*, int64_t, double) { no_cuda("clip_grad_norm"); }

}  // namespace lmlab::cuda
