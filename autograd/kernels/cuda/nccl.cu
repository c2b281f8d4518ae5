// NCCL for data-parallel gradient sums, loaded with dlopen on first use (no link-time dependency,
// no header needed: the few declarations below are NCCL 2's stable C ABI, checked against nccl.h
// when the toolkit ships it). Also the device choice of a rank.
#include <dlfcn.h>

#include <cstring>
#include <mutex>
#include <string>

#include "autograd/kernels/cuda/common.cuh"
#include "autograd/kernels/cuda_runtime.h"

#if __has_include(<nccl.h>)
#include <nccl.h>
static_assert(NCCL_UNIQUE_ID_BYTES == 128 && int(ncclFloat32) == 7 && int(ncclSum) == 0 &&
                  int(ncclSuccess) == 0,
              "NCCL's ABI changed: update kernels/cuda/nccl.cu");
#endif

namespace lmlab::cuda {

namespace {

using Result = int;  // ncclResult_t: 0 is success
using Comm = void*;  // ncclComm_t
struct UniqueId {
  char internal[kNcclIdBytes];
};
constexpr int kFloat32 = 7, kSum = 0;

struct NcclApi {
  std::string path;
  Result (*get_unique_id)(UniqueId*) = nullptr;
  Result (*comm_init_rank)(Comm*, int, UniqueId, int) = nullptr;
  Result (*all_reduce)(const void*, void*, size_t, int, int, Comm, cudaStream_t) = nullptr;
  Result (*comm_destroy)(Comm) = nullptr;
  const char* (*error_string)(Result) = nullptr;
};

const NcclApi& nccl() {
  static NcclApi api;
  static std::once_flag once;
  static std::string error;
  std::call_once(once, [] {
    void* h = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char* e = dlerror();
      error = std::string("cannot load NCCL (libnccl.so.2): ") + (e ? e : "not found") +
              " (install NCCL, or run one rank per GPU machine without it)";
      return;
    }
    auto sym = [&](const char* name) {
      void* p = dlsym(h, name);
      if (!p && error.empty()) error = std::string("libnccl.so.2 lacks ") + name;
      return p;
    };
    api.get_unique_id = reinterpret_cast<decltype(api.get_unique_id)>(sym("ncclGetUniqueId"));
    api.comm_init_rank = reinterpret_cast<decltype(api.comm_init_rank)>(sym("ncclCommInitRank"));
    api.all_reduce = reinterpret_cast<decltype(api.all_reduce)>(sym("ncclAllReduce"));
    api.comm_destroy = reinterpret_cast<decltype(api.comm_destroy)>(sym("ncclCommDestroy"));
    api.error_string = reinterpret_cast<decltype(api.error_string)>(sym("ncclGetErrorString"));
    Dl_info info{};
    api.path = api.get_unique_id && dladdr(reinterpret_cast<void*>(api.get_unique_id), &info) &&
                       info.dli_fname
                   ? info.dli_fname
                   : "libnccl.so.2";
  });
  if (!error.empty()) throw Error("[nccl] " + error);
  return api;
}

void check(Result r, const char* what) {
  if (r != 0) throw Error(std::string("[nccl] ") + what + " failed: " + nccl().error_string(r));
}

}  // namespace

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

void set_device(int index) { CUDA_CHECK(cudaSetDevice(index)); }

std::string nccl_library() { return nccl().path; }

void nccl_unique_id(void* id) {
  UniqueId u{};
  check(nccl().get_unique_id(&u), "ncclGetUniqueId");
  std::memcpy(id, u.internal, kNcclIdBytes);
}

void* nccl_comm_init(const void* id, int nranks, int rank) {
  UniqueId u{};
  std::memcpy(u.internal, id, kNcclIdBytes);
  Comm comm = nullptr;
  check(nccl().comm_init_rank(&comm, nranks, u, rank), "ncclCommInitRank");
  return comm;
}

void nccl_allreduce_sum(void* comm, float* data, size_t n) {
  check(nccl().all_reduce(data, data, n, kFloat32, kSum, comm, comm_stream()), "ncclAllReduce");
}

void nccl_comm_destroy(void* comm) {
  if (comm) nccl().comm_destroy(comm);
}

}  // namespace lmlab::cuda
