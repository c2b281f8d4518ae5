// The CUDA runtime seam: device memory and copies. Defined in kernels/cuda/runtime.cu when lmlab
// is built with CUDA, and in kernels/cuda_stub/runtime.cpp (which throws) when it is not.
#pragma once
#include <cstddef>
#include <string>

namespace lmlab::cuda {

// True when lmlab was built with CUDA and a usable GPU is visible.
bool available();
// Why available() is false, in one line (for test skips and error messages).
std::string unavailable_reason();
void* device_malloc(size_t nbytes);
void device_free(void* ptr);
void copy_host_to_device(void* dst, const void* src, size_t nbytes);
void copy_device_to_host(void* dst, const void* src, size_t nbytes);
void copy_device_to_device(void* dst, const void* src, size_t nbytes);
// Blocks the host until queued device work is done.
void synchronize();

}  // namespace lmlab::cuda
