// CUDA stubs for flash attention (replaced by kernels/cuda/flash_attention.cu in a CUDA build).
#include "autograd/kernels/attention.h"
#include "autograd/kernels/cuda_stub/no_cuda.h"

namespace lmlab::cuda {

void flash_attention_forward(const float*, HeadStrides, const float*, HeadStrides, const float*,
                             HeadStrides, float*, HeadStrides, float*, int64_t, int64_t, int64_t,
                             int64_t, int64_t, int64_t) {
  no_cuda("flash_attention_forward");
}
void flash_attention_backward(const float*, HeadStrides, const float*, HeadStrides, const float*,
                              HeadStrides, const float*, HeadStrides, const float*, const float*,
                              HeadStrides, float*, HeadStrides, float*, float*, HeadStrides,
                              int64_t, int64_t, int64_t, int64_t, int64_t, int64_t) {
  no_cuda("flash_attention_backward");
}
void flash_attention_forward(const bf16*, HeadStrides, const bf16*, HeadStrides, const bf16*,
                             HeadStrides, bf16*, HeadStrides, float*, int64_t, int64_t, int64_t,
                             int64_t, int64_t, int64_t) {
  no_cuda("flash_attention_forward");
}
void flash_attention_backward(const bf16*, HeadStrides, const bf16*, HeadStrides, const bf16*,
                              HeadStrides, const bf16*, HeadStrides, const float*, const bf16*,
                              HeadStrides, bf16*, HeadStrides, bf16*, bf16*, HeadStrides, int64_t,
                              int64_t, int64_t, int64_t, int64_t, int64_t) {
  no_cuda("flash_attention_backward");
}

}  // namespace lmlab::cuda
