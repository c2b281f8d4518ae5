// CUDA stubs for fused causal attention (replaced by kernels/cuda/attention.cu in a CUDA build).
#include "autograd/kernels/attention.h"

#include "autograd/kernels/cuda_stub/no_cuda.h"

namespace lmlab::cuda {

void attention_forward(const float*, const float*, const float*, float*, float*, int64_t, int64_t,
                       int64_t, int64_t, int64_t, int64_t) {
  no_cuda("causal_attention");
}
void attention_backward(const float*, const float*, const float*, const float*, const float*,
                        float*, float*, float*, float*, int64_t, int64_t, int64_t, int64_t, int64_t,
                        int64_t) {
  no_cuda("causal_attention backward");
}

}  // namespace lmlab::cuda
