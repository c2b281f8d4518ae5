#include "autograd/kernels/elementwise.h"

#include "autograd/kernels/cuda_stub/no_cuda.h"

namespace lmlab::cuda {

void unary_forward(UnaryOp, const float*, float*, int64_t, double) { no_cuda("unary"); }
void unary_backward(UnaryOp, const float*, const float*, const float*, float*, int64_t, double) {
  no_cuda("unary backward");
}
void binary_forward(BinaryOp, const float*, const int64_t*, const float*, const int64_t*, float*,
                    const int64_t*, int64_t) {
  no_cuda("binary");
}

}  // namespace lmlab::cuda
