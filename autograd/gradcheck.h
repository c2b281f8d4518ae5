// Gradient checking in float64 (flashlight's jacobianTestImpl; PyTorch's gradcheck defaults).
// The numerical Jacobian comes from central differences, one input element at a time; the
// analytic one from one backward pass per output element with a one-hot upstream gradient.
// They must agree elementwise: |analytic - numeric| <= atol + rtol * |numeric|.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "autograd/tensor.h"

namespace lmlab {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
};

struct GradcheckResult {
  bool ok = true;
  std::string message;  // on failure: input, element, both values
};

using GradcheckFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Checks d f(inputs) / d inputs for every float64 input with requires_grad set (others, such as
// int32 ids, are passed through). Inputs may be non-contiguous views; f must be deterministic.
GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace lmlab
