// Shared helpers for the GoogleTest suite: random float64 leaves, gradcheck as an assertion,
// and checks that an error message names the op and the shapes.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "autograd/kernels/cuda_runtime.h"
#include "autograd/ops.h"

namespace lmlab::test {

// A float64 leaf with N(0, 1) entries that requires grad.
inline Tensor randn64(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  return Tensor::randn(shape, gen, DType::F64).requires_grad_();
}
// Same, but with entries drawn from U[lo, hi) (for log, sqrt, ...).
inline Tensor rand64(const Shape& shape, uint64_t seed, double lo, double hi) {
  Generator gen(seed);
  return Tensor::rand(shape, gen, DType::F64, lo, hi).requires_grad_();
}
// A non-contiguous float64 leaf of `shape`: the transpose of a random (shape[1], shape[0], ...)
// tensor, detached so it is a leaf that still views strided storage.
inline Tensor randn64_transposed(const Shape& shape, uint64_t seed) {
  Shape swapped = shape;
  std::swap(swapped[0], swapped[1]);
  Generator gen(seed);
  Tensor base = Tensor::randn(swapped, gen, DType::F64);
  Tensor t = base.transpose(0, 1).detach();
  t.requires_grad_();
  return t;
}

inline ::testing::AssertionResult Gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs,
                                            const GradcheckOptions& options = {}) {
  GradcheckResult r = gradcheck(f, inputs, options);
  if (r.ok) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << r.message;
}

// Runs fn, expects an lmlab::Error whose message contains every one of `parts`.
inline ::testing::AssertionResult ThrowsWith(const std::function<void()>& fn,
                                             const std::vector<std::string>& parts) {
  try {
    fn();
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const std::string& p : parts)
      if (msg.find(p) == std::string::npos)
        return ::testing::AssertionFailure() << "message \"" << msg << "\" lacks \"" << p << "\"";
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-lmlab exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

// Max |a - b| over two tensors of the same shape (any float dtype), as double.
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  std::vector<double> x = a.to(DType::F64).to_vector<double>();
  std::vector<double> y = b.to(DType::F64).to_vector<double>();
  EXPECT_EQ(x.size(), y.size());
  double m = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

}  // namespace lmlab::test

// True when CUDA tests can run; CUDA tests call GTEST_SKIP() with cuda::unavailable_reason() else.
inline bool cuda_available_for_tests() { return lmlab::cuda::available(); }
