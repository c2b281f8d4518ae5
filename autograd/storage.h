// Storage: one owned, aligned buffer on a device, shared by every tensor that views it.
// It carries the version counter that detects in-place changes to tensors saved for backward.
#pragma once
#include <cstddef>
#include <cstdint>

#include "autograd/types.h"

namespace lmlab {

class Storage {
 public:
  Storage(size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  size_t capacity_ = 0;  // bytes actually held (a size class for cached CPU blocks)
  Device device_;
  uint64_t version_ = 0;
};

// Large CPU blocks are recycled through a process-wide cache (no page faults in the steady state
// of a training loop). These report and empty it.
size_t cpu_cached_bytes();
void cpu_release_cache();

}  // namespace lmlab
