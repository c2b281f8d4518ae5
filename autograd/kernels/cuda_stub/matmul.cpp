// The CUDA GEMM stub: in a build without the cuBLAS kernel, cuda::gemm throws "[matmul] ...".
#include "autograd/kernels/matmul.h"

#include "autograd/kernels/cuda_stub/no_cuda.h"

namespace lmlab::cuda {

void gemm(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
          int64_t, float, float*, int64_t) {
  no_cuda("matmul");
}
void gemm_bf16(bool, bool, int64_t, int64_t, int64_t, float, const bf16*, int64_t, const bf16*,
               int64_t, float, bf16*, int64_t) {
  no_cuda("matmul");
}
void gemm_bf16_f32(bool, bool, int64_t, int64_t, int64_t, float, const bf16*, int64_t, const bf16*,
                   int64_t, float, float*, int64_t) {
  no_cuda("linear_cross_entropy");
}

}  // namespace lmlab::cuda
