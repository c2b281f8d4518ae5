// CUDA stubs for the fused norms: each entry point throws "[op] ..." until
// autograd/kernels/cuda/norm.cu provides the real kernels.
#include "autograd/kernels/norm.h"

#include "autograd/kernels/cuda_stub/no_cuda.h"

namespace lmlab::cuda {

void layernorm_forward(const float*, const float*, const float*, float*, float*, float*, int64_t,
                       int64_t, double) {
  no_cuda("layer_norm");
}
void layernorm_backward(const float*, const float*, const float*, const float*, const float*,
                        float*, float*, float*, int64_t, int64_t) {
  no_cuda("layer_norm backward");
}
void rmsnorm_forward(const float*, const float*, float*, float*, int64_t, int64_t, double) {
  no_cuda("rms_norm");
}
void rmsnorm_backward(const float*, const float*, const float*, const float*, float*, float*,
                      int64_t, int64_t) {
  no_cuda("rms_norm backward");
}

}  // namespace lmlab::cuda
