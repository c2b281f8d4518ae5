// Linked when lmlab is built without CUDA: every device entry point says so.
#include "autograd/error.h"
#include "autograd/kernels/cuda_runtime.h"

namespace lmlab::cuda {

static const char* kWhy = "lmlab was built without CUDA (configure with -DLMLAB_CUDA=ON and nvcc)";

bool available() { return false; }
std::string unavailable_reason() { return kWhy; }
void* device_malloc(size_t) { throw Error(std::string("[cuda] ") + kWhy); }
void device_free(void*) {}
void copy_host_to_device(void*, const void*, size_t) { throw Error(std::string("[cuda] ") + kWhy); }
void copy_device_to_host(void*, const void*, size_t) { throw Error(std::string("[cuda] ") + kWhy); }
void copy_device_to_device(void*, const void*, size_t) { throw Error(std::string("[cuda] ") + kWhy); }
void synchronize() {}

}  // namespace lmlab::cuda
