// Linked when lmlab is built without CUDA: every device entry point says so; statistics read 0.
#include "autograd/error.h"
#include "autograd/kernels/cuda_runtime.h"

namespace lmlab::cuda {

static const char* kWhy = "lmlab was built without CUDA (configure with -DLMLAB_CUDA=ON and nvcc)";
static bool g_tf32 = false;

bool available() { return false; }
std::string unavailable_reason() { return kWhy; }
void* device_malloc(size_t) { throw Error(std::string("[cuda] ") + kWhy); }
void device_free(void*) {}
size_t allocated_bytes() { return 0; }
size_t cached_bytes() { return 0; }
size_t peak_bytes() { return 0; }
void reset_peak_bytes() {}
size_t malloc_count() { return 0; }
void release_cache() {}
void copy_host_to_device(void*, const void*, size_t) { throw Error(std::string("[cuda] ") + kWhy); }
void copy_device_to_host(void*, const void*, size_t) { throw Error(std::string("[cuda] ") + kWhy); }
void copy_device_to_device(void*, const void*, size_t) {
  throw Error(std::string("[cuda] ") + kWhy);
}
void synchronize() {}
std::string cublas_library() { throw Error(std::string("[cuda] ") + kWhy); }
int device_count() { return 0; }
void set_device(int) { throw Error(std::string("[cuda] ") + kWhy); }
std::string nccl_library() { throw Error(std::string("[cuda] ") + kWhy); }
void nccl_unique_id(void*) { throw Error(std::string("[cuda] ") + kWhy); }
void* nccl_comm_init(const void*, int, int) { throw Error(std::string("[cuda] ") + kWhy); }
void nccl_allreduce_sum(void*, float*, size_t) { throw Error(std::string("[cuda] ") + kWhy); }
void nccl_comm_destroy(void*) {}
void comm_wait_for_compute() { throw Error(std::string("[cuda] ") + kWhy); }
void compute_wait_for_comm() { throw Error(std::string("[cuda] ") + kWhy); }
void profile_start() {}
std::vector<ProfileRow> profile_stop() { return {}; }
void set_tf32(bool on) { g_tf32 = on; }
bool tf32_enabled() { return g_tf32; }
static bool g_flash_attention = false;  // until a GPU run has confirmed the kernels
void set_flash_attention(bool on) { g_flash_attention = on; }
bool flash_attention_enabled() { return g_flash_attention; }

}  // namespace lmlab::cuda
