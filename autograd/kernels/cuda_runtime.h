// The CUDA runtime seam: device memory (a caching allocator), copies, synchronisation and the
// TF32 switch. Defined in kernels/cuda/runtime.cu when lmlab is built with CUDA, and in
// kernels/cuda_stub/runtime.cpp (device entry points throw, statistics read 0) when it is not.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace lmlab::cuda {

// True when lmlab was built with CUDA and a usable GPU is visible.
bool available();
// Why available() is false, in one line (for test skips and error messages).
std::string unavailable_reason();

// Device memory from a caching allocator: a freed block goes to a free list of its size class and
// is handed out again to the next request of that class, so a training loop stops calling
// cudaMalloc after its first step and never calls cudaFree (see docs/cuda.md). All device work is
// ordered on one stream, so a block freed by the host may be reused at once.
void* device_malloc(size_t nbytes);
void device_free(void* ptr);
// Bytes in blocks handed out now, counted at their size class.
size_t allocated_bytes();
// Bytes in freed blocks kept for reuse.
size_t cached_bytes();
// The largest allocated_bytes() since start-up or the last reset_peak_bytes().
size_t peak_bytes();
void reset_peak_bytes();
// How many times the allocator has called cudaMalloc (a steady training loop adds none).
size_t malloc_count();
// Returns every cached block to the driver (after a device synchronisation).
void release_cache();

// Host-to-device and device-to-device copies are queued on the stream; device-to-host waits for
// the stream (the host needs the bytes).
void copy_host_to_device(void* dst, const void* src, size_t nbytes);
void copy_device_to_host(void* dst, const void* src, size_t nbytes);
void copy_device_to_device(void* dst, const void* src, size_t nbytes);
// Blocks the host until queued device work is done.
void synchronize();

// The cuBLAS library, loaded (dlopen) on first use rather than linked: loading libcublas and its
// libcublasLt took ~0.5 s at the start of every process of a CUDA build, CPU-only runs and each
// test included. Returns the path it was loaded from; throws lmlab::Error naming what is missing.
// Needs no GPU.
std::string cublas_library();

// GPUs visible to this process (0 without CUDA or a driver), and the one this process uses
// (data-parallel ranks on one machine take local_rank % device_count()). Call set_device before
// any other device work.
int device_count();
void set_device(int index);

// NCCL, for summing gradients across data-parallel ranks (train/dist/distributed.cpp), loaded
// (dlopen libnccl.so.2) on first use like cuBLAS. One rank makes the unique id and the others
// receive it over MPI; every rank then joins with its rank. nccl_allreduce_sum runs in place on a
// second, communication stream, so it overlaps the rest of the backward: call
// comm_wait_for_compute() first (the collective then starts once the kernels queued so far, e.g.
// the gradient copies into the bucket, are done) and compute_wait_for_comm() before the compute
// stream reads the sums. Both are device-side waits; the host does not block. Errors throw
// lmlab::Error with NCCL's reason.
constexpr size_t kNcclIdBytes = 128;
std::string nccl_library();
void nccl_unique_id(void* id);  // kNcclIdBytes bytes
void* nccl_comm_init(const void* id, int nranks, int rank);
void nccl_allreduce_sum(void* comm, float* data, size_t n);
void nccl_comm_destroy(void* comm);
void comm_wait_for_compute();
void compute_wait_for_comm();

// Kernel-time profile, for benchmarks (bench_gpu_train --profile): between profile_start() and
// profile_stop(), every kernel launch, cuBLAS GEMM and copy records a CUDA event right after
// itself. On the one stream, the time between two consecutive events is the later item's run time
// plus any idle gap before it (host-bound code shows up as gaps), so the rows are exact when the
// GPU is kept busy. profile_stop() waits for the stream and returns the time summed by name,
// largest first. Costs one event record per launch while on; nothing when off.
struct ProfileRow {
  std::string name;
  long long calls;
  double ms;
};
void profile_start();
std::vector<ProfileRow> profile_stop();

// TF32 tensor-core GEMMs (inputs rounded to a 10-bit mantissa, fp32 accumulation): faster, ~1e-3
// relative error. Off by default: every cuBLAS call then computes in full fp32.
void set_tf32(bool on);
bool tf32_enabled();

// Causal attention through the flash kernels (kernels/attention.h: no (T, T) matrix in memory,
// strided heads read in place) wherever they apply: TF32 on and a head size they serve; off: the
// cuBLAS path (att saved, contiguous heads). Off by default until a GPU run has confirmed the
// kernels (they are compiled and CPU-emulated, not yet run on a GPU): scripts/gpu_check.sh runs
// their tests and benchmarks with the switch on.
void set_flash_attention(bool on);
bool flash_attention_enabled();

}  // namespace lmlab::cuda
