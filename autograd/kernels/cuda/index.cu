// Indexing kernels on the GPU: embedding gather, a deterministic embedding scatter-add (ids sorted
// stably with CUB, then each id's rows summed in token order, exactly the CPU's order), broadcast
// masked fill, and the counter-based dropout mask (bitwise the CPU's mask for a seed and offset).
#include <cub/device/device_radix_sort.cuh>
#include <vector>

#include "autograd/kernels/cuda/common.cuh"
#include "autograd/kernels/cuda/random.cuh"
#include "autograd/kernels/index.h"

namespace lmlab::cuda {

__global__ void embedding_forward_kernel(const float* weight, const int32_t* ids, float* out,
                                         int64_t N, int64_t C) {
  const int64_t n_all = N * C;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n_all;
       k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = k / C, c = k % C;
    out[k] = weight[int64_t(ids[n]) * C + c];
  }
}

__global__ void iota_kernel(int32_t* v, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    v[i] = int32_t(i);
}

// sorted_ids ascending, pos[k] the token of sorted entry k (ascending within an id: the sort is
// stable). The first entry k of each id's run walks the run: dweight[id, c] += dout[pos[j], c] in
// token order, in float, as cpu::embedding_backward does.
__global__ void embedding_backward_kernel(const float* dout, const int32_t* sorted_ids,
                                          const int32_t* pos, float* dweight, int64_t N,
                                          int64_t C) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  for (int64_t k = blockIdx.y; k < N; k += gridDim.y) {
    const int32_t id = sorted_ids[k];
    if (k > 0 && sorted_ids[k - 1] == id) continue;  // not the start of a run
    float acc = dweight[int64_t(id) * C + c];
    for (int64_t j = k; j < N && sorted_ids[j] == id; ++j) acc += dout[int64_t(pos[j]) * C + c];
    dweight[int64_t(id) * C + c] = acc;
  }
}

// y = mask ? value : x; x and y contiguous, l.strides[0] reads the mask, l.strides[1] is x / y.
__global__ void masked_fill_kernel(const float* x, const int32_t* mask, float value, float* y,
                                   Layout<2> l, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[2];
    layout_offsets(l, i, off);
    y[off[1]] = mask[off[0]] ? value : x[off[1]];
  }
}

__global__ void dropout_mask_kernel(float* mask, int64_t n, double p, float scale, uint64_t seed,
                                    uint64_t offset) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    mask[i] = uniform01(random_bits(seed, offset + uint64_t(i))) >= p ? scale : 0.0f;
}

// out[n, :] = weight[ids[n], :]; ids already range-checked by the op.
void embedding_forward(const float* weight, const int32_t* ids, float* out, int64_t N, int64_t C) {
  if (N * C == 0) return;
  embedding_forward_kernel<<<grid_for(N * C), kThreads, 0, stream()>>>(weight, ids, out, N, C);
  CUDA_CHECK_LAUNCH("embedding_forward_kernel");
}

// dweight[ids[n], :] += dout[n, :], deterministic for repeated ids (see the kernel).
void embedding_backward(const float* dout, const int32_t* ids, float* dweight, int64_t N,
                        int64_t C) {
  if (N == 0 || C == 0) return;
  if (N > int64_t(INT32_MAX)) throw Error("[embedding] the CUDA backward takes at most 2^31 ids");
  const int n = int(N);
  Scratch order(size_t(N) * sizeof(int32_t)), sorted_ids(size_t(N) * sizeof(int32_t)),
      pos(size_t(N) * sizeof(int32_t));
  iota_kernel<<<grid_for(N), kThreads, 0, stream()>>>(order.as<int32_t>(), N);
  CUDA_CHECK_LAUNCH("iota_kernel");
  size_t temp_bytes = 0;
  CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, ids, sorted_ids.as<int32_t>(),
                                             order.as<int32_t>(), pos.as<int32_t>(), n, 0, 32,
                                             stream()));
  Scratch temp(temp_bytes);
  CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.as<void>(), temp_bytes, ids,
                                             sorted_ids.as<int32_t>(), order.as<int32_t>(),
                                             pos.as<int32_t>(), n, 0, 32, stream()));
  const dim3 grid(unsigned((C + kThreads - 1) / kThreads), unsigned(N < 65535 ? N : 65535));
  embedding_backward_kernel<<<grid, kThreads, 0, stream()>>>(dout, sorted_ids.as<int32_t>(),
                                                             pos.as<int32_t>(), dweight, N, C);
  CUDA_CHECK_LAUNCH("embedding_backward_kernel");
}

// y = mask ? value : x, the int32 mask read through broadcast strides.
void masked_fill(const float* x, const int32_t* mask, const int64_t* mask_strides, float value,
                 float* y, const int64_t* shape, int64_t ndim) {
  int64_t n = 1;
  for (int64_t d = 0; d < ndim; ++d) n *= shape[d];
  if (n == 0) return;
  std::vector<int64_t> xy_strides(size_t(ndim) + 1);  // x and y are contiguous
  for (int64_t d = ndim - 1, s = 1; d >= 0; --d) {
    xy_strides[d] = s;
    s *= shape[d];
  }
  const int64_t* const strides[2] = {mask_strides, xy_strides.data()};
  const Layout<2> l = make_layout(shape, ndim, strides, "masked_fill");
  masked_fill_kernel<<<grid_for(n), kThreads, 0, stream()>>>(x, mask, value, y, l, n);
  CUDA_CHECK_LAUNCH("masked_fill_kernel");
}

// mask[i] = [uniform(seed, offset + i) >= p] / (1 - p), the same draw as cpu::dropout_mask.
void dropout_mask(float* mask, int64_t n, double p, uint64_t seed, uint64_t offset) {
  if (n == 0) return;
  const float scale = float(1.0 / (1.0 - p));
  dropout_mask_kernel<<<grid_for(n), kThreads, 0, stream()>>>(mask, n, p, scale, seed, offset);
  CUDA_CHECK_LAUNCH("dropout_mask_kernel");
}

}  // namespace lmlab::cuda
