// Shared by every CUDA kernel file: error checks that name file, line and kernel, the one stream
// and cuBLAS handle, launch sizes, deterministic block reductions, and strided-index helpers.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "autograd/error.h"
#include "autograd/kernels/cuda_runtime.h"
#include "autograd/kernels/max_nan.h"

// The only macros of the backend: they need __FILE__ / __LINE__ of the call site.
#define CUDA_CHECK(expr) ::lmlab::cuda::check_cuda((expr), #expr, __FILE__, __LINE__)
#define CUBLAS_CHECK(expr) ::lmlab::cuda::check_cublas((expr), #expr, __FILE__, __LINE__)
#define CUDA_CHECK_LAUNCH(kernel) ::lmlab::cuda::check_launch(kernel, __FILE__, __LINE__)

namespace lmlab::cuda {

// Throw "[cuda] <expr> failed at <file>:<line>: <reason>" (defined in runtime.cu).
void check_cuda(cudaError_t err, const char* expr, const char* file, int line);
void check_cublas(cublasStatus_t status, const char* expr, const char* file, int line);
// Checks the launch just made (cudaGetLastError). With LMLAB_CUDA_SYNC=1 in the environment it
// also waits for the kernel, so an asynchronous fault is reported at the kernel that caused it.
void check_launch(const char* kernel, const char* file, int line);
// While a profile runs (cuda_runtime.h: profile_start), records an event after the work just
// queued, under `name` (a string literal: it is kept by pointer).
extern bool g_profiling;
void profile_record(const char* name);
inline void profile_mark(const char* name) {
  if (g_profiling) profile_record(name);
}
// The one stream all device work is queued on (the legacy default stream: it orders kernels,
// cuBLAS calls and cudaMemcpy without events).
cudaStream_t stream();
// The stream NCCL's collectives run on (cuda_runtime.h: comm_wait_for_compute).
cudaStream_t comm_stream();
cublasHandle_t cublas_handle();

// The cuBLAS entry points lmlab uses, resolved from the library on first call (cublas_library() in
// cuda_runtime.h says why it is not linked). Throws lmlab::Error when the library cannot be loaded.
struct CublasApi {
  decltype(&cublasCreate_v2) create;
  decltype(&cublasSetStream_v2) set_stream;
  // The cublasComputeType_t overload (the header adds an inline cudaDataType one).
  cublasStatus_t (*gemm_strided_batched_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t,
                                            int, int, int, const void*, const void*, cudaDataType,
                                            int, long long, const void*, cudaDataType, int,
                                            long long, const void*, void*, cudaDataType, int,
                                            long long, int, cublasComputeType_t, cublasGemmAlgo_t);
  decltype(&cublasGetStatusString) status_string;
};
const CublasApi& cublas();

// Scratch device memory from the caching allocator, handed back when it goes out of scope. That is
// safe right after queuing the kernels that use it: all work is ordered on the one stream.
class Scratch {
 public:
  explicit Scratch(size_t bytes) : p_(device_malloc(bytes)) {}
  ~Scratch() { device_free(p_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(p_);
  }

 private:
  void* p_;
};

constexpr int kThreads = 256;
// Blocks for a grid-stride loop over n elements (capped; the loop covers the rest).
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return unsigned(blocks < 1 ? 1 : blocks > (int64_t(1) << 20) ? (int64_t(1) << 20) : blocks);
}
// Blocks for a kernel with one block per row: gridDim.x is at most 2^31 - 1, and a silent wrap of
// unsigned(rows) past 2^32 would leave rows unwritten, so a larger count is an error.
inline unsigned row_blocks(int64_t rows) {
  if (rows > int64_t(0x7fffffff))
    throw Error("[cuda] " + std::to_string(rows) +
                " rows for a one-block-per-row kernel exceed the grid limit of 2^31 - 1 blocks");
  return unsigned(rows);
}
// Threads for a block that owns one row of C elements: a multiple of 32 that keeps most lanes busy.
inline int row_threads(int64_t C) { return C <= 32 ? 32 : C <= 256 ? 64 : C <= 2048 ? 256 : 1024; }

// ---- block reductions: a fixed shuffle tree, so the result does not depend on timing. blockDim.x
// must be a multiple of 32. Every thread returns the block's total. ----
template <class T, class Op>
__device__ inline T warp_reduce(T v, Op op) {
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
template <class T, class Op>
__device__ inline T block_reduce(T v, Op op, T identity) {
  __shared__ T partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_reduce(v, op);
  __syncthreads();  // a previous call may still be reading `partial`
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < warps ? partial[lane] : identity;
  return warp_reduce(v, op);
}
struct SumOp {
  template <class T>
  __device__ T operator()(T a, T b) const {
    return a + b;
  }
};
// kernels::max_nan: NaN-propagating and symmetric in NaN-ness, so every lane of the xor-shuffle
// ends with the same value (`b > a ? b : a` alone: a lane holding the NaN keeps it, its partner
// drops it).
struct MaxOp {
  template <class T>
  __device__ T operator()(T a, T b) const {
    return kernels::max_nan(a, b);
  }
};
template <class T>
__device__ inline T block_sum(T v) {
  return block_reduce(v, SumOp(), T(0));
}
__device__ inline float block_max(float v) { return block_reduce(v, MaxOp(), -INFINITY); }

// ---- strided layouts: up to kMaxDims dims after collapsing, for N arrays read or written
// through their own strides over one shared shape ----
constexpr int kMaxDims = 8;
template <int N>
struct Layout {
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strides[N][kMaxDims] = {};
};

// Drops size-1 dims and merges neighbours that are contiguous with each other in every array, so
// the kernels do the fewest divisions. Throws when more than kMaxDims dims remain.
template <int N>
Layout<N> make_layout(const int64_t* shape, int64_t ndim, const int64_t* const (&strides)[N],
                      const char* op) {
  Layout<N> l;
  for (int64_t d = 0; d < ndim; ++d) {
    if (shape[d] == 1) continue;
    bool merge = l.ndim > 0;
    for (int a = 0; a < N && merge; ++a)
      merge = strides[a][d] * shape[d] == l.strides[a][l.ndim - 1];
    if (merge) {
      l.shape[l.ndim - 1] *= shape[d];
      for (int a = 0; a < N; ++a) l.strides[a][l.ndim - 1] = strides[a][d];
      continue;
    }
    if (l.ndim == kMaxDims)
      throw Error(std::string("[") + op + "] the CUDA kernel handles at most 8 non-mergeable dims");
    l.shape[l.ndim] = shape[d];
    for (int a = 0; a < N; ++a) l.strides[a][l.ndim] = strides[a][d];
    ++l.ndim;
  }
  return l;
}

// Element offsets in each array of the element with row-major linear index i.
template <int N>
__device__ inline void layout_offsets(const Layout<N>& l, int64_t i, int64_t* off) {
  for (int a = 0; a < N; ++a) off[a] = 0;
  for (int d = l.ndim - 1; d >= 0; --d) {
    const int64_t k = i % l.shape[d];
    i /= l.shape[d];
    for (int a = 0; a < N; ++a) off[a] += k * l.strides[a][d];
  }
}

}  // namespace lmlab::cuda
