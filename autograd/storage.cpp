#include "autograd/storage.h"

#include <cstdlib>
#include <new>

#include "autograd/kernels/cuda_runtime.h"

namespace lmlab {

// 64-byte alignment: one cache line, one AVX-512 vector.
static constexpr size_t kAlign = 64;

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  size_t padded = (nbytes + kAlign - 1) / kAlign * kAlign;
  if (padded == 0) padded = kAlign;
  if (device == Device::CPU) {
    data_ = std::aligned_alloc(kAlign, padded);
    if (!data_) throw std::bad_alloc();
  } else {
    data_ = cuda::device_malloc(padded);
  }
}

Storage::~Storage() {
  if (device_ == Device::CPU)
    std::free(data_);
  else
    cuda::device_free(data_);
}

}  // namespace lmlab
