// Tensor: a cheap handle to (shared storage, shape, strides, offset, dtype) plus autograd state.
// Copying a Tensor copies the handle, not the data. Views (reshape of a contiguous tensor,
// transpose, permute, narrow) share storage; contiguous() copies only when it must.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "autograd/error.h"
#include "autograd/shape.h"
#include "autograd/storage.h"
#include "autograd/types.h"

namespace lmlab {

class Generator;
struct AutogradMeta;  // tape.h: the grad slot and graph bookkeeping of a tensor that requires grad

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Strides strides;
  int64_t offset = 0;  // in elements
  DType dtype = DType::F32;
  std::shared_ptr<AutogradMeta> meta;  // null unless the tensor requires grad
};

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor (defined() == false)
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories (new, contiguous storage) ----
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor ones(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::F32,
                     Device device = Device::CPU);
  // [start, end) in steps of `step`, 1-D.
  static Tensor arange(double start, double end, double step = 1, DType dtype = DType::F32);
  static Tensor arange(int64_t n, DType dtype = DType::F32) {
    return arange(0, double(n), 1, dtype);
  }
  // N(mean, std^2) and U[lo, hi) from a counter-based generator: element i of the draw depends only
  // on (seed, offset + i), so results are identical across runs and thread counts.
  static Tensor randn(const Shape& shape, Generator& gen, DType dtype = DType::F32, double mean = 0,
                      double std = 1);
  static Tensor rand(const Shape& shape, Generator& gen, DType dtype = DType::F32, double lo = 0,
                     double hi = 1);
  // Copies host values in row-major order; values.size() must equal numel(shape).
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape);
  static Tensor from_vector(const std::vector<double>& values, const Shape& shape);
  static Tensor from_vector(const std::vector<int32_t>& values, const Shape& shape);
  static Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.dtype(), t.device()); }
  static Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }
  static Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype(), t.device()); }

  // ---- metadata ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Strides& strides() const { return impl().strides; }
  int64_t offset() const { return impl().offset; }
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return lmlab::numel(impl().shape); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  bool is_contiguous() const;
  // Raw pointer to element 0 of this view (device memory for CUDA tensors). Checks the dtype.
  // Writing through it does not bump the version counter: use the in-place methods for that.
  template <class T>
  T* data() const;
  void* raw_data() const;
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }
  TensorImpl* impl_ptr() const { return impl_.get(); }
  bool same_storage(const Tensor& other) const { return storage() == other.storage(); }
  // True when this handle is the only reference to its storage and views all of it, contiguously
  // and without autograd state: a gradient the tape may hand to a leaf without copying it.
  bool sole_owner() const;
  uint64_t version() const { return impl().storage->version(); }

  // ---- conversions and views (differentiable where the result is) ----
  Tensor contiguous() const;                       // self if contiguous, else a copy
  Tensor reshape(const Shape& shape) const;        // view when contiguous; one -1 allowed
  Tensor view(const Shape& shape) const;           // like reshape, but never copies (throws)
  Tensor transpose(int64_t d0, int64_t d1) const;  // a strided view
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor to(Device device) const;  // copy to another device (differentiable)
  Tensor to(DType dtype) const;    // element type conversion (differentiable between floats)
  Tensor clone() const;            // a contiguous copy (differentiable)
  Tensor detach() const;           // same storage, no autograd history, requires_grad false

  // ---- element access for tests and small host-side code (copies from a device) ----
  double item() const;  // the single element of a 1-element tensor
  double at(std::initializer_list<int64_t> index) const;
  void set(std::initializer_list<int64_t> index, double value);  // in place; bumps the version
  template <class T>
  std::vector<T> to_vector() const;  // row-major copy
  std::string to_string(int64_t max_elements = 64) const;

  // ---- autograd ----
  bool requires_grad() const;
  // Marks a leaf as needing a gradient; throws on a non-leaf or a non-float tensor.
  Tensor& requires_grad_(bool on = true);
  bool is_leaf() const;
  Tensor grad() const;  // undefined until a backward pass reaches this leaf
  void set_grad(const Tensor& g) const;
  void zero_grad() const;  // drops the gradient (the next backward writes a fresh one)

  // ---- in-place updates (no autograd; refused on tensors that require grad while grad mode is
  // on; each bumps the version counter) ----
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0); }
  Tensor& copy_(const Tensor& src);                     // src broadcast to this shape
  Tensor& add_(const Tensor& other, double alpha = 1);  // this += alpha * other (broadcast)
  Tensor& mul_(double s);

 private:
  const TensorImpl& impl() const;
  TensorImpl& impl();
  void check_inplace(const char* op) const;
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// Builds a view sharing `base`'s storage (no autograd; ops record the node).
Tensor make_view(const Tensor& base, const Shape& shape, const Strides& strides, int64_t offset);

// Throws "[op] <name> must be a floating-point tensor, got int32" etc.
void check_float(const Tensor& t, const char* op, const char* name = "input");
void check_defined(const Tensor& t, const char* op, const char* name = "input");
void check_same_dtype(const Tensor& a, const Tensor& b, const char* op);
void check_same_device(const Tensor& a, const Tensor& b, const char* op);
// float64 lives on the CPU only (it exists for gradient checks): "[op] float64 tensors are
// CPU-only". The second form checks a tensor about to be made (a factory, a device move).
void check_device_dtype(const Tensor& t, const char* op);
void check_device_dtype(DType dtype, Device device, const char* op);

}  // namespace lmlab
