// Tensor: factories, metadata, host element access, printing, autograd accessors and in-place
// updates. The differentiable views and copies (reshape, transpose, contiguous, to) live in
// ops/view.cpp and ops/copy.cpp; the methods here forward to them.
#include "autograd/tensor.h"

#include <cmath>
#include <cstring>
#include <iomanip>
#include <sstream>

#include "autograd/kernels/copy.h"
#include "autograd/kernels/cuda_runtime.h"
#include "autograd/ops.h"
#include "autograd/random.h"
#include "autograd/tape.h"

namespace lmlab {

// ---------------------------------------------------------------- checks
void check_defined(const Tensor& t, const char* op, const char* name) {
  if (!t.defined()) throw Error(std::string("[") + op + "] " + name + " is an undefined tensor");
}
void check_float(const Tensor& t, const char* op, const char* name) {
  check_defined(t, op, name);
  if (!is_float(t.dtype()))
    throw Error(std::string("[") + op + "] " + name + " must be a floating-point tensor, got " +
                to_string(t.dtype()) + " of shape " + to_string(t.shape()));
  check_device_dtype(t, op);
}
void check_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  if (a.dtype() != b.dtype())
    throw Error(std::string("[") + op + "] dtype mismatch: a is " + to_string(a.dtype()) + " " +
                to_string(a.shape()) + ", b is " + to_string(b.dtype()) + " " +
                to_string(b.shape()));
}
void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
  if (a.device() != b.device())
    throw Error(std::string("[") + op + "] device mismatch: a is on " + to_string(a.device()) +
                ", b is on " + to_string(b.device()));
}
void check_device_dtype(DType dtype, Device device, const char* op) {
  if (device == Device::CUDA && dtype == DType::F64)
    throw Error(std::string("[") + op +
                "] float64 tensors are CPU-only (they exist for gradient "
                "checks); convert with .to(DType::F32)");
}
void check_device_dtype(const Tensor& t, const char* op) {
  check_device_dtype(t.dtype(), t.device(), op);
}

// ---------------------------------------------------------------- factories
Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape)
    if (d < 0) throw Error("[empty] negative size in shape " + lmlab::to_string(shape));
  check_device_dtype(dtype, device, "empty");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(lmlab::numel(shape) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}
Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0, dtype, device);
}
Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) {
  return full(shape, 1, dtype, device);
}

Tensor Tensor::arange(double start, double end, double step, DType dtype) {
  if (step == 0) throw Error("[arange] step must be nonzero");
  int64_t n = std::max<int64_t>(0, int64_t(std::ceil((end - start) / step)));
  Tensor t = empty({n}, dtype);
  for (int64_t i = 0; i < n; ++i) {
    double v = start + double(i) * step;
    switch (dtype) {
      case DType::F32: t.data<float>()[i] = float(v); break;
      case DType::F64: t.data<double>()[i] = v; break;
      case DType::I32: t.data<int32_t>()[i] = int32_t(v); break;
      case DType::BF16: t.data<bf16>()[i] = bf16(float(v)); break;
    }
  }
  return t;
}

template <class Fill>
static Tensor random_fill(const Shape& shape, Generator& gen, DType dtype, const char* op,
                          Fill fill) {
  if (dtype != DType::F32 && dtype != DType::F64)
    throw Error(std::string("[") + op + "] dtype must be float32 or float64, got " +
                to_string(dtype));
  Tensor t = Tensor::empty(shape, dtype);
  uint64_t offset = gen.advance(uint64_t(t.numel()));
  if (dtype == DType::F32)
    fill(t.data<float>(), t.numel(), gen.seed(), offset);
  else
    fill(t.data<double>(), t.numel(), gen.seed(), offset);
  return t;
}

Tensor Tensor::randn(const Shape& shape, Generator& gen, DType dtype, double mean, double std) {
  return random_fill(shape, gen, dtype, "randn", [&](auto* y, int64_t n, uint64_t s, uint64_t o) {
    cpu::fill_normal(y, n, s, o, mean, std);
  });
}
Tensor Tensor::rand(const Shape& shape, Generator& gen, DType dtype, double lo, double hi) {
  return random_fill(shape, gen, dtype, "rand", [&](auto* y, int64_t n, uint64_t s, uint64_t o) {
    cpu::fill_uniform(y, n, s, o, lo, hi);
  });
}

template <class T>
static Tensor from_host(const std::vector<T>& values, const Shape& shape) {
  if (int64_t(values.size()) != lmlab::numel(shape))
    throw Error("[from_vector] " + std::to_string(values.size()) + " values do not fill shape " +
                lmlab::to_string(shape));
  Tensor t = Tensor::empty(shape, dtype_of<T>());
  if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(T));
  return t;
}
Tensor Tensor::from_vector(const std::vector<float>& v, const Shape& s) { return from_host(v, s); }
Tensor Tensor::from_vector(const std::vector<double>& v, const Shape& s) { return from_host(v, s); }
Tensor Tensor::from_vector(const std::vector<int32_t>& v, const Shape& s) {
  return from_host(v, s);
}

// ---------------------------------------------------------------- metadata
const TensorImpl& Tensor::impl() const {
  if (!impl_) throw Error("[tensor] use of an undefined tensor");
  return *impl_;
}
TensorImpl& Tensor::impl() {
  if (!impl_) throw Error("[tensor] use of an undefined tensor");
  return *impl_;
}

int64_t Tensor::size(int64_t d) const { return shape()[normalize_dim(d, dim(), "size", shape())]; }

bool Tensor::is_contiguous() const {
  if (numel() == 0) return true;
  int64_t expected = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (shape()[i] != 1 && strides()[i] != expected) return false;
    expected *= shape()[i];
  }
  return true;
}

bool Tensor::sole_owner() const {
  return defined() && impl_.use_count() == 1 && storage().use_count() == 1 && !impl().meta &&
         offset() == 0 && is_contiguous() &&
         size_t(numel()) * dtype_size(dtype()) == storage()->nbytes();
}

void* Tensor::raw_data() const {
  return static_cast<char*>(storage()->data()) + offset() * int64_t(dtype_size(dtype()));
}

template <class T>
T* Tensor::data() const {
  if (dtype() != dtype_of<T>())
    throw Error("[data] tensor is " + lmlab::to_string(dtype()) + ", asked for " +
                lmlab::to_string(dtype_of<T>()));
  return static_cast<T*>(raw_data());
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;
template int32_t* Tensor::data<int32_t>() const;
template bf16* Tensor::data<bf16>() const;

Tensor make_view(const Tensor& base, const Shape& shape, const Strides& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

Tensor Tensor::detach() const { return make_view(*this, shape(), strides(), offset()); }
Tensor Tensor::contiguous() const { return lmlab::contiguous_copy(*this); }
Tensor Tensor::reshape(const Shape& s) const { return lmlab::reshape(*this, s); }
Tensor Tensor::view(const Shape& s) const {
  if (!is_contiguous())
    throw Error("[view] tensor of shape " + lmlab::to_string(shape()) +
                " is not contiguous; use reshape() (which copies) instead");
  return lmlab::reshape(*this, s);
}
Tensor Tensor::transpose(int64_t d0, int64_t d1) const { return lmlab::transpose(*this, d0, d1); }
Tensor Tensor::permute(const std::vector<int64_t>& d) const { return lmlab::permute(*this, d); }
Tensor Tensor::narrow(int64_t d, int64_t s, int64_t l) const {
  return lmlab::narrow(*this, d, s, l);
}
Tensor Tensor::to(Device device) const { return lmlab::to_device(*this, device); }
Tensor Tensor::to(DType dtype) const { return lmlab::to_dtype(*this, dtype); }
Tensor Tensor::clone() const { return lmlab::clone(*this); }

// ---------------------------------------------------------------- host element access
static int64_t flat_offset(const Tensor& t, std::initializer_list<int64_t> index, const char* op) {
  if (int64_t(index.size()) != t.dim())
    throw Error(std::string("[") + op + "] index has " + std::to_string(index.size()) +
                " entries for shape " + to_string(t.shape()));
  int64_t off = t.offset(), d = 0;
  for (int64_t i : index) {
    int64_t n = t.shape()[d];
    int64_t j = i < 0 ? i + n : i;
    if (j < 0 || j >= n)
      throw Error(std::string("[") + op + "] index " + std::to_string(i) +
                  " out of range for dim " + std::to_string(d) + " of shape " +
                  to_string(t.shape()));
    off += j * t.strides()[d++];
  }
  return off;
}

static double read_element(const Tensor& t, int64_t off) {
  const size_t es = dtype_size(t.dtype());
  char buf[8];
  const char* src = static_cast<const char*>(t.storage()->data()) + off * int64_t(es);
  if (t.device() == Device::CUDA)
    cuda::copy_device_to_host(buf, src, es);
  else
    std::memcpy(buf, src, es);
  switch (t.dtype()) {
    case DType::F32: {
      float v;
      std::memcpy(&v, buf, 4);
      return v;
    }
    case DType::F64: {
      double v;
      std::memcpy(&v, buf, 8);
      return v;
    }
    case DType::I32: {
      int32_t v;
      std::memcpy(&v, buf, 4);
      return v;
    }
    case DType::BF16: {
      bf16 v;
      std::memcpy(&v, buf, 2);
      return float(v);
    }
  }
  return 0;
}

double Tensor::item() const {
  if (numel() != 1)
    throw Error("[item] needs a 1-element tensor, got shape " + lmlab::to_string(shape()));
  return read_element(*this, offset());
}

double Tensor::at(std::initializer_list<int64_t> index) const {
  return read_element(*this, flat_offset(*this, index, "at"));
}

void Tensor::set(std::initializer_list<int64_t> index, double value) {
  check_inplace("set");
  int64_t off = flat_offset(*this, index, "set");
  char buf[8];
  switch (dtype()) {
    case DType::F32: {
      float v = float(value);
      std::memcpy(buf, &v, 4);
      break;
    }
    case DType::F64: std::memcpy(buf, &value, 8); break;
    case DType::I32: {
      int32_t v = int32_t(value);
      std::memcpy(buf, &v, 4);
      break;
    }
    case DType::BF16: {
      const bf16 v{float(value)};
      std::memcpy(buf, &v, 2);
      break;
    }
  }
  const size_t es = dtype_size(dtype());
  char* dst = static_cast<char*>(storage()->data()) + off * int64_t(es);
  if (device() == Device::CUDA)
    cuda::copy_host_to_device(dst, buf, es);
  else
    std::memcpy(dst, buf, es);
  storage()->bump_version();
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  NoGradGuard guard;
  Tensor c = (device() == Device::CPU ? *this : to(Device::CPU)).contiguous();
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<bf16> Tensor::to_vector<bf16>() const;

std::string Tensor::to_string(int64_t max_elements) const {
  if (!defined()) return "tensor(undefined)";
  std::ostringstream os;
  NoGradGuard guard;
  Tensor c = (device() == Device::CPU ? *this : to(Device::CPU)).contiguous();
  os << "tensor(";
  const int64_t n = c.numel();
  std::vector<int64_t> idx(dim(), 0);
  os << std::setprecision(6);
  std::string open(dim(), '[');
  os << open;
  for (int64_t i = 0; i < n && i < max_elements; ++i) {
    if (i > 0) {
      // close and reopen brackets where an index rolled over
      int64_t k = dim() - 1, closed = 0;
      while (k >= 0 && ++idx[k] == shape()[k]) idx[k--] = 0, ++closed;
      os << std::string(closed, ']') << ", " << std::string(closed, '[');
    }
    os << read_element(c, i);
  }
  if (n > max_elements) os << ", ...";
  os << std::string(dim(), ']') << ", shape=" << lmlab::to_string(shape())
     << ", dtype=" << lmlab::to_string(dtype());
  if (device() != Device::CPU) os << ", device=" << lmlab::to_string(device());
  if (requires_grad()) os << ", requires_grad";
  os << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.to_string(); }

// ---------------------------------------------------------------- autograd accessors
bool Tensor::requires_grad() const { return impl_ && impl_->meta != nullptr; }
bool Tensor::is_leaf() const { return !impl_ || !impl_->meta || impl_->meta->is_leaf; }

Tensor& Tensor::requires_grad_(bool on) {
  if (!is_leaf())
    throw Error(std::string("[requires_grad_] only leaf tensors can change requires_grad; this one "
                            "was produced by ") +
                impl().meta->producer);
  if (on && !is_float(dtype()))
    throw Error("[requires_grad_] only floating-point tensors can require grad, got " +
                lmlab::to_string(dtype()));
  if (on && !impl().meta) impl().meta = std::make_shared<AutogradMeta>();
  if (!on) impl().meta.reset();
  return *this;
}

Tensor Tensor::grad() const { return requires_grad() ? impl_->meta->grad : Tensor(); }
void Tensor::set_grad(const Tensor& g) const {
  if (!requires_grad()) throw Error("[set_grad] tensor does not require grad");
  if (g.defined() && g.shape() != shape())
    throw Error("[set_grad] gradient of shape " + lmlab::to_string(g.shape()) +
                " for a tensor of shape " + lmlab::to_string(shape()));
  impl_->meta->grad = g;
}
void Tensor::zero_grad() const {
  if (requires_grad()) impl_->meta->grad = Tensor();
}

// ---------------------------------------------------------------- in-place updates
void Tensor::check_inplace(const char* op) const {
  if (requires_grad() && tape::grad_enabled())
    throw Error(std::string("[") + op +
                "] in-place update of a tensor that requires grad while "
                "grad mode is on; wrap it in NoGradGuard");
}

Tensor& Tensor::fill_(double value) {
  check_inplace("fill_");
  if (!is_contiguous()) {
    copy_(Tensor::full({}, value, dtype(), device()));
    return *this;
  }
  const int64_t n = numel();
  if (device() == Device::CUDA) {
    if (dtype() == DType::I32)
      cuda::fill(data<int32_t>(), n, int32_t(value));
    else if (dtype() == DType::BF16)
      cuda::fill(data<bf16>(), n, bf16(float(value)));
    else
      cuda::fill(data<float>(), n, float(value));
  } else {
    switch (dtype()) {
      case DType::F32: cpu::fill(data<float>(), n, float(value)); break;
      case DType::F64: cpu::fill(data<double>(), n, value); break;
      case DType::I32: cpu::fill(data<int32_t>(), n, int32_t(value)); break;
      case DType::BF16: cpu::fill(data<bf16>(), n, bf16(float(value))); break;
    }
  }
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_inplace("copy_");
  check_defined(src, "copy_", "src");
  check_same_dtype(*this, src, "copy_");
  NoGradGuard guard;
  Tensor s = src.device() == device() ? src : src.to(device());
  if (lmlab::broadcast_shapes(s.shape(), shape(), "copy_") != shape())
    throw Error("[copy_] source of shape " + lmlab::to_string(s.shape()) +
                " does not broadcast to destination shape " + lmlab::to_string(shape()));
  Strides ss = broadcast_strides(s.shape(), s.strides(), shape());
  if (numel() > 0) {
    if (device() == Device::CUDA) {
      cuda::copy_strided(s.raw_data(), ss.data(), raw_data(), strides().data(), shape().data(),
                         dim(), dtype_size(dtype()));
    } else {
      switch (dtype()) {
        case DType::F32:
          cpu::copy_strided(s.data<float>(), ss.data(), data<float>(), strides().data(),
                            shape().data(), dim());
          break;
        case DType::F64:
          cpu::copy_strided(s.data<double>(), ss.data(), data<double>(), strides().data(),
                            shape().data(), dim());
          break;
        case DType::I32:
          cpu::copy_strided(s.data<int32_t>(), ss.data(), data<int32_t>(), strides().data(),
                            shape().data(), dim());
          break;
        case DType::BF16:
          cpu::copy_strided(s.data<bf16>(), ss.data(), data<bf16>(), strides().data(),
                            shape().data(), dim());
          break;
      }
    }
  }
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  check_inplace("add_");
  NoGradGuard guard;
  Tensor o = alpha == 1 ? other : lmlab::mul(other, alpha);
  return copy_(lmlab::add(*this, o));  // simple and correct; optimizers use fused kernels
}

Tensor& Tensor::mul_(double s) {
  check_inplace("mul_");
  NoGradGuard guard;
  return copy_(lmlab::mul(*this, s));
}

}  // namespace lmlab
