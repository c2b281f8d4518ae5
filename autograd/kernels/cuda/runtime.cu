// Device memory and copies on the CUDA runtime. The caching allocator is a later step; for now
// each allocation goes to cudaMalloc. Every call is checked and reported with file and line.
#include <cuda_runtime.h>

#include <string>

#include "autograd/error.h"
#include "autograd/kernels/cuda_runtime.h"

#define CUDA_CHECK(expr) ::lmlab::cuda::check((expr), #expr, __FILE__, __LINE__)

namespace lmlab::cuda {

static void check(cudaError_t err, const char* expr, const char* file, int line) {
  if (err != cudaSuccess)
    throw Error(std::string("[cuda] ") + expr + " failed at " + file + ":" + std::to_string(line) +
                ": " + cudaGetErrorString(err));
}

static std::string probe() {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  // No driver reports cudaErrorInsufficientDriver, not cudaErrorNoDevice: both mean "no GPU".
  if (err != cudaSuccess) return std::string("no usable GPU: ") + cudaGetErrorString(err);
  if (n == 0) return "no GPU is visible";
  return "";
}

bool available() {
  static const bool ok = probe().empty();
  return ok;
}
std::string unavailable_reason() { return probe(); }

void* device_malloc(size_t nbytes) {
  void* p = nullptr;
  CUDA_CHECK(cudaMalloc(&p, nbytes));
  return p;
}
void device_free(void* ptr) { cudaFree(ptr); }
void copy_host_to_device(void* dst, const void* src, size_t n) {
  CUDA_CHECK(cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice));
}
void copy_device_to_host(void* dst, const void* src, size_t n) {
  CUDA_CHECK(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToHost));
}
void copy_device_to_device(void* dst, const void* src, size_t n) {
  CUDA_CHECK(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToDevice));
}
void synchronize() { CUDA_CHECK(cudaDeviceSynchronize()); }

}  // namespace lmlab::cuda
