// CUDA stubs for the softmax family: in a build without CUDA kernels for it, each entry point
// throws "[op] ..." (see no_cuda.h). kernels/cuda/softmax.cu replaces this file when it exists.
#include "autograd/kernels/softmax.h"

#include "autograd/kernels/cuda_stub/no_cuda.h"

namespace lmlab::cuda {

void softmax_forward(const float*, float*, int64_t, int64_t) { no_cuda("softmax"); }
void softmax_backward(const float*, const float*, float*, int64_t, int64_t) {
  no_cuda("softmax backward");
}
void log_softmax_forward(const float*, float*, int64_t, int64_t) { no_cuda("log_softmax"); }
void log_softmax_backward(const float*, const float*, float*, int64_t, int64_t) {
  no_cuda("log_softmax backward");
}
void cross_entropy_forward(const float*, const int32_t*, float*, float*, int64_t, int64_t,
                           int32_t) {
  no_cuda("cross_entropy");
}
void cross_entropy_backward(const float*, const float*, const int32_t*, const float*, int64_t,
                            float*, int64_t, int64_t, int32_t) {
  no_cuda("cross_entropy backward");
}

}  // namespace lmlab::cuda
