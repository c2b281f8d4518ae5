// CUDA stubs for the indexing kernels (embedding, masked_fill, dropout_mask); see no_cuda.h.
#include "autograd/kernels/index.h"

#include "autograd/kernels/cuda_stub/no_cuda.h"

namespace lmlab::cuda {

void embedding_forward(const float*, const int32_t*, float*, int64_t, int64_t) {
  no_cuda("embedding");
}
void embedding_backward(const float*, const int32_t*, float*, int64_t, int64_t) {
  no_cuda("embedding backward");
}
void masked_fill(const float*, const int32_t*, const int64_t*, float, float*, const int64_t*,
                 int64_t) {
  no_cuda("masked_fill");
}
void dropout_mask(float*, int64_t, double, uint64_t, uint64_t) { no_cuda("dropout"); }

}  // namespace lmlab::cuda
