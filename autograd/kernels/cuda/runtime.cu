// The CUDA runtime: availability probe, error checks, the one stream and cuBLAS handle, the TF32
// switch, copies, and the caching device allocator (size-class free lists; docs/cuda.md).
#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "autograd/kernels/cuda/common.cuh"
#include "autograd/kernels/cuda_runtime.h"

namespace lmlab::cuda {

void check_cuda(cudaError_t err, const char* expr, const char* file, int line) {
  if (err != cudaSuccess)
    throw Error(std::string("[cuda] ") + expr + " failed at " + file + ":" + std::to_string(line) +
                ": " + cudaGetErrorString(err));
}

void check_cublas(cublasStatus_t status, const char* expr, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw Error(std::string("[cuda] ") + expr + " failed at " + file + ":" + std::to_string(line) +
                ": " + cublas().status_string(status));
}

namespace {

struct LoadedCublas {
  std::string path;
  CublasApi api{};
};

// dlopen the library CMake found (LMLAB_CUBLAS_LIBRARY), else by its soname on the search path.
LoadedCublas load_cublas() {
  std::vector<std::string> candidates;
#ifdef LMLAB_CUBLAS_LIBRARY
  candidates.push_back(LMLAB_CUBLAS_LIBRARY);
#endif
  candidates.push_back("libcublas.so." + std::to_string(CUBLAS_VER_MAJOR));
  std::string errors;
  for (const std::string& c : candidates) {
    void* h = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char* e = dlerror();
      errors += "\n  " + c + ": " + (e ? e : "not found");
      continue;
    }
    LoadedCublas l;
    l.path = c;
    auto sym = [&](const char* name) {
      void* f = dlsym(h, name);
      if (!f) throw Error(std::string("[cuda] ") + c + " has no " + name + " (cuBLAS too old?)");
      return f;
    };
    l.api.create = reinterpret_cast<decltype(l.api.create)>(sym("cublasCreate_v2"));
    l.api.set_stream = reinterpret_cast<decltype(l.api.set_stream)>(sym("cublasSetStream_v2"));
    l.api.gemm_strided_batched_ex = reinterpret_cast<decltype(l.api.gemm_strided_batched_ex)>(
        sym("cublasGemmStridedBatchedEx"));
    l.api.status_string =
        reinterpret_cast<decltype(l.api.status_string)>(sym("cublasGetStatusString"));
    return l;  // never dlclose'd: the handle lives as long as the process
  }
  throw Error("[cuda] cannot load cuBLAS:" + errors);
}

const LoadedCublas& loaded_cublas() {
  static const LoadedCublas l = load_cublas();
  return l;
}

}  // namespace

const CublasApi& cublas() { return loaded_cublas().api; }
std::string cublas_library() { return loaded_cublas().path; }

static bool sync_after_launch() {
  static const bool on = [] {
    const char* v = std::getenv("LMLAB_CUDA_SYNC");
    return v && std::string(v) == "1";
  }();
  return on;
}

bool g_profiling = false;

namespace {
struct Profile {
  std::vector<cudaEvent_t> pool;                           // reused across profiles
  std::vector<std::pair<const char*, cudaEvent_t>> marks;  // in stream order; marks[0] = start
};
Profile& profile() {
  static Profile* p = new Profile();  // never destroyed, like the cache
  return *p;
}
}  // namespace

void profile_record(const char* name) {
  Profile& p = profile();
  const size_t i = p.marks.size();
  if (i == p.pool.size()) {
    cudaEvent_t e = nullptr;
    CUDA_CHECK(cudaEventCreate(&e));
    p.pool.push_back(e);
  }
  CUDA_CHECK(cudaEventRecord(p.pool[i], stream()));
  p.marks.emplace_back(name, p.pool[i]);
}

void profile_start() {
  profile().marks.clear();
  g_profiling = true;
  profile_record("(start)");
}

std::vector<ProfileRow> profile_stop() {
  g_profiling = false;
  Profile& p = profile();
  std::vector<ProfileRow> rows;
  if (p.marks.size() < 2) return rows;
  CUDA_CHECK(cudaEventSynchronize(p.marks.back().second));
  std::map<std::string, ProfileRow> by_name;
  for (size_t i = 1; i < p.marks.size(); ++i) {
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, p.marks[i - 1].second, p.marks[i].second));
    ProfileRow& r = by_name[p.marks[i].first];
    r.name = p.marks[i].first;
    ++r.calls;
    r.ms += double(ms);
  }
  p.marks.clear();
  for (auto& [name, r] : by_name) rows.push_back(r);
  std::sort(rows.begin(), rows.end(), [](const ProfileRow& a, const ProfileRow& b) {
    return a.ms != b.ms ? a.ms > b.ms : a.name < b.name;
  });
  return rows;
}

void check_launch(const char* kernel, const char* file, int line) {
  profile_mark(kernel);
  cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess && sync_after_launch()) err = cudaStreamSynchronize(stream());
  if (err != cudaSuccess)
    throw Error(std::string("[cuda] kernel ") + kernel + " failed at " + file + ":" +
                std::to_string(line) + ": " + cudaGetErrorString(err));
}

static std::string probe() {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  // No driver reports cudaErrorInsufficientDriver, not cudaErrorNoDevice: both mean "no GPU".
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear it, so later calls start clean
    return std::string("no usable GPU: ") + cudaGetErrorString(err);
  }
  if (n == 0) return "no GPU is visible";
  return "";
}

bool available() {
  static const bool ok = probe().empty();
  return ok;
}
std::string unavailable_reason() { return available() ? "" : probe(); }

cudaStream_t stream() { return cudaStream_t(0); }

// Non-blocking, or the legacy default stream would serialise with it and nothing would overlap.
cudaStream_t comm_stream() {
  static const cudaStream_t s = [] {
    cudaStream_t c = nullptr;
    CUDA_CHECK(cudaStreamCreateWithFlags(&c, cudaStreamNonBlocking));
    return c;  // never destroyed, like the cuBLAS handle
  }();
  return s;
}

namespace {
// `waiter` waits (on the device) for everything queued on `done` so far. One event per direction,
// re-recorded each time: cudaStreamWaitEvent takes the record made just before it.
void stream_wait(cudaStream_t waiter, cudaStream_t done, cudaEvent_t& event) {
  if (!event) CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  CUDA_CHECK(cudaEventRecord(event, done));
  CUDA_CHECK(cudaStreamWaitEvent(waiter, event, 0));
}
}  // namespace

void comm_wait_for_compute() {
  static cudaEvent_t event = nullptr;
  stream_wait(comm_stream(), stream(), event);
}
void compute_wait_for_comm() {
  static cudaEvent_t event = nullptr;
  stream_wait(stream(), comm_stream(), event);
}

cublasHandle_t cublas_handle() {
  static cublasHandle_t handle = [] {
    cublasHandle_t h = nullptr;
    CUBLAS_CHECK(cublas().create(&h));
    CUBLAS_CHECK(cublas().set_stream(h, stream()));
    return h;  // never destroyed: kernels may run during static destruction
  }();
  return handle;
}

static bool g_tf32 = false;
void set_tf32(bool on) { g_tf32 = on; }
bool tf32_enabled() { return g_tf32; }
static bool g_flash_attention = false;  // until a GPU run has confirmed the kernels
void set_flash_attention(bool on) { g_flash_attention = on; }
bool flash_attention_enabled() { return g_flash_attention; }

namespace {

// Below 1 MiB sizes round up to 512 bytes; above, to one of 8 classes per power of two (at most
// 12.5% waste), so freed activations of one step fit the same tensors of the next.
size_t size_class(size_t n) {
  constexpr size_t kSmall = size_t(1) << 20, kSmallStep = 512;
  if (n == 0) n = 1;
  if (n < kSmall) return (n + kSmallStep - 1) / kSmallStep * kSmallStep;
  size_t p = kSmall;
  while (p * 2 <= n) p *= 2;
  const size_t step = p / 8;
  return (n + step - 1) / step * step;
}

class DeviceCache {
 public:
  void* take(size_t nbytes) {
    const size_t bytes = size_class(nbytes);
    std::lock_guard<std::mutex> lock(mutex_);
    void* p = nullptr;
    auto it = free_.find(bytes);
    if (it != free_.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
      cached_ -= bytes;
    } else {
      p = fresh(bytes);
    }
    live_[p] = bytes;
    allocated_ += bytes;
    if (allocated_ > peak_) peak_ = allocated_;
    return p;
  }
  void give(void* p) {
    if (!p) return;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(p);
    if (it == live_.end()) return;  // not ours (cannot happen through Storage)
    const size_t bytes = it->second;
    live_.erase(it);
    allocated_ -= bytes;
    free_[bytes].push_back(p);
    cached_ += bytes;
  }
  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    release_locked();
  }
  size_t allocated() { return locked(allocated_); }
  size_t cached() { return locked(cached_); }
  size_t peak() { return locked(peak_); }
  size_t mallocs() { return locked(mallocs_); }
  void reset_peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    peak_ = allocated_;
  }

 private:
  size_t locked(const size_t& v) {
    std::lock_guard<std::mutex> lock(mutex_);
    return v;
  }
  // cudaMalloc; when the device is full, frees the cache once and tries again.
  void* fresh(size_t bytes) {
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, bytes);
    if (err == cudaErrorMemoryAllocation && cached_ > 0) {
      cudaGetLastError();
      release_locked();
      err = cudaMalloc(&p, bytes);
    }
    if (err != cudaSuccess) {
      cudaGetLastError();
      throw Error("[cuda] cudaMalloc of " + std::to_string(bytes) + " bytes failed (" +
                  cudaGetErrorString(err) + "); " + std::to_string(allocated_) +
                  " bytes are allocated, " + std::to_string(cached_) + " cached");
    }
    ++mallocs_;
    return p;
  }
  void release_locked() {
    CUDA_CHECK(cudaDeviceSynchronize());  // queued kernels may still use the blocks
    for (auto& [bytes, blocks] : free_)
      for (void* p : blocks) CUDA_CHECK(cudaFree(p));
    free_.clear();
    cached_ = 0;
  }

  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  std::unordered_map<void*, size_t> live_;
  size_t allocated_ = 0, cached_ = 0, peak_ = 0, mallocs_ = 0;
};

DeviceCache& cache() {
  static DeviceCache* c = new DeviceCache();  // never destroyed: storages may outlive statics
  return *c;
}

}  // namespace

void* device_malloc(size_t nbytes) { return cache().take(nbytes); }
void device_free(void* ptr) { cache().give(ptr); }
size_t allocated_bytes() { return cache().allocated(); }
size_t cached_bytes() { return cache().cached(); }
size_t peak_bytes() { return cache().peak(); }
void reset_peak_bytes() { cache().reset_peak(); }
size_t malloc_count() { return cache().mallocs(); }
void release_cache() { cache().release(); }

// A pageable source is staged by the driver before cudaMemcpyAsync returns, so the caller may
// free it at once; the copy itself stays ordered on the stream.
void copy_host_to_device(void* dst, const void* src, size_t n) {
  CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, stream()));
  profile_mark("memcpy host to device");
}
void copy_device_to_host(void* dst, const void* src, size_t n) {
  CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, stream()));
  profile_mark("memcpy device to host");
  CUDA_CHECK(cudaStreamSynchronize(stream()));
}
void copy_device_to_device(void* dst, const void* src, size_t n) {
  CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, stream()));
  profile_mark("memcpy device to device");
}
void synchronize() { CUDA_CHECK(cudaStreamSynchronize(stream())); }

}  // namespace lmlab::cuda
