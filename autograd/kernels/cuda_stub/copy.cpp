#include "autograd/kernels/copy.h"

#include "autograd/kernels/cuda_stub/no_cuda.h"

namespace lmlab::cuda {

void copy_strided(const void*, const int64_t*, void*, const int64_t*, const int64_t*, int64_t,
                  size_t) {
  no_cuda("copy");
}
void fill(float*, int64_t, float) { no_cuda("fill"); }
void fill(int32_t*, int64_t, int32_t) { no_cuda("fill"); }
void fill(bf16*, int64_t, bf16) { no_cuda("fill"); }
void convert(const float*, bf16*, int64_t) { no_cuda("to"); }
void convert(const bf16*, float*, int64_t) { no_cuda("to"); }
void fill_normal(float*, int64_t, uint64_t, uint64_t, double, double) { no_cuda("randn"); }
void fill_uniform(float*, int64_t, uint64_t, uint64_t, double, double) { no_cuda("rand"); }

}  // namespace lmlab::cuda
