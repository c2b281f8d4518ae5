#include "autograd/storage.h"

#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "autograd/kernels/cuda_runtime.h"

namespace lmlab {

// 64-byte alignment: one cache line, one AVX-512 vector.
static constexpr size_t kAlign = 64;
// Blocks at least this large are recycled instead of returned to the system: fresh large blocks
// come from mmap, and first-touch page faults made a 50 MB buffer cost ~0.3 s on these VMs.
static constexpr size_t kCacheMin = size_t(64) << 10;

namespace {

// Rounds a large size up to one of four classes per power of two (1, 1.25, 1.5, 1.75 x 2^k), so a
// freed block fits later requests of similar size while wasting at most 25%.
size_t size_class(size_t n) {
  size_t p = kCacheMin;
  while (p * 2 <= n) p *= 2;
  const size_t step = p / 4;
  return (n + step - 1) / step * step;
}

// A process-wide free list of large CPU blocks keyed by size class. Blocks are never handed back
// to the system while the process lives (training's working set is steady from step 2 on).
class CpuBlockCache {
 public:
  void* take(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= bytes;
        return p;
      }
    }
    void* p = std::aligned_alloc(kAlign, bytes);
    if (!p) throw std::bad_alloc();
    return p;
  }
  void give(void* p, size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    free_[bytes].push_back(p);
    cached_ += bytes;
  }
  size_t cached() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }
  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [bytes, blocks] : free_)
      for (void* p : blocks) std::free(p);
    free_.clear();
    cached_ = 0;
  }

 private:
  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
};

CpuBlockCache& cpu_cache() {
  static CpuBlockCache* cache =
      new CpuBlockCache();  // never destroyed: storages may outlive statics
  return *cache;
}

}  // namespace

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  size_t padded = (nbytes + kAlign - 1) / kAlign * kAlign;
  if (padded == 0) padded = kAlign;
  if (device == Device::CPU) {
    if (padded >= kCacheMin) {
      capacity_ = size_class(padded);
      data_ = cpu_cache().take(capacity_);
    } else {
      capacity_ = padded;
      data_ = std::aligned_alloc(kAlign, padded);
      if (!data_) throw std::bad_alloc();
    }
  } else {
    capacity_ = padded;
    data_ = cuda::device_malloc(padded);
  }
}

Storage::~Storage() {
  if (device_ == Device::CUDA)
    cuda::device_free(data_);
  else if (capacity_ >= kCacheMin)
    cpu_cache().give(data_, capacity_);
  else
    std::free(data_);
}

size_t cpu_cached_bytes() { return cpu_cache().cached(); }
void cpu_release_cache() { cpu_cache().release(); }

}  // namespace lmlab
