#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "autograd/ops.h"

namespace lmlab {

namespace {

// Reads/writes logical element k (row-major over the shape) of a possibly strided tensor.
int64_t storage_index(const Tensor& t, int64_t k) {
  int64_t off = t.offset();
  for (int64_t d = t.dim() - 1; d >= 0; --d) {
    off += (k % t.shape()[d]) * t.strides()[d];
    k /= t.shape()[d];
  }
  return off;
}
double& element(const Tensor& t, int64_t k) {
  return static_cast<double*>(t.storage()->data())[storage_index(t, k)];
}

std::vector<double> evaluate(const GradcheckFn& f, const std::vector<Tensor>& inputs) {
  NoGradGuard guard;
  Tensor y = f(inputs);
  if (y.dtype() != DType::F64) throw Error("[gradcheck] f must return a float64 tensor");
  return y.to_vector<double>();
}

// The indices of the inputs that require grad (each must be a float64 CPU tensor).
std::vector<size_t> checked_inputs(const std::vector<Tensor>& inputs) {
  std::vector<size_t> checked;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].requires_grad()) continue;
    if (inputs[i].dtype() != DType::F64 || inputs[i].device() != Device::CPU)
      throw Error("[gradcheck] input " + std::to_string(i) + " must be a float64 CPU tensor");
    checked.push_back(i);
  }
  if (checked.empty()) throw Error("[gradcheck] no input requires grad");
  return checked;
}

// The analytic Jacobian, one backward pass per output element: J[o][c][k] = d out[o] / d
// inputs[checked[c]][k].
std::vector<std::vector<std::vector<double>>> analytic_jacobian(
    const GradcheckFn& f, const std::vector<Tensor>& inputs, const std::vector<size_t>& checked) {
  tape::clear();
  Tensor out = f(inputs);
  if (out.dtype() != DType::F64) throw Error("[gradcheck] f must return a float64 tensor");
  if (!out.requires_grad())
    throw Error("[gradcheck] the output does not depend on any input that requires grad");
  std::vector<std::vector<std::vector<double>>> J(size_t(out.numel()));
  for (int64_t o = 0; o < out.numel(); ++o) {
    for (size_t i : checked) inputs[i].zero_grad();
    Tensor seed = Tensor::zeros(out.shape(), DType::F64);
    seed.data<double>()[o] = 1.0;
    tape::backward(out, seed, /*retain_graph=*/true);
    for (size_t i : checked) {
      Tensor g = inputs[i].grad();
      J[size_t(o)].push_back(g.defined() ? g.to_vector<double>()
                                         : std::vector<double>(size_t(inputs[i].numel()), 0.0));
    }
  }
  tape::clear();
  for (size_t i : checked) inputs[i].zero_grad();
  return J;
}

}  // namespace

GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& opt) {
  const std::vector<size_t> checked = checked_inputs(inputs);
  const auto J = analytic_jacobian(f, inputs, checked);
  const int64_t n_out = int64_t(J.size());

  // Numerical Jacobian, column by column, compared as we go.
  GradcheckResult result;
  for (size_t c = 0; c < checked.size(); ++c) {
    const Tensor& x = inputs[checked[c]];
    for (int64_t k = 0; k < x.numel(); ++k) {
      double& v = element(x, k);
      const double orig = v;
      v = orig + opt.eps;
      std::vector<double> plus = evaluate(f, inputs);
      v = orig - opt.eps;
      std::vector<double> minus = evaluate(f, inputs);
      v = orig;
      for (int64_t o = 0; o < n_out; ++o) {
        const double numeric = (plus[o] - minus[o]) / (2 * opt.eps);
        const double analytic = J[size_t(o)][c][size_t(k)];
        if (!(std::abs(analytic - numeric) <= opt.atol + opt.rtol * std::abs(numeric))) {
          std::ostringstream os;
          os.precision(10);
          os << "gradient mismatch for input " << checked[c] << " " << to_string(x.shape())
             << ", element " << k << ", output " << o << ": analytic " << analytic << ", numeric "
             << numeric;
          result.ok = false;
          result.message = os.str();
          return result;
        }
      }
    }
  }
  return result;
}

}  // namespace lmlab
