// Per-layer diagnostics: gradient norms, residual-stream RMS and update/weight ratios per block.
#include "train/run/diagnostics.h"

#include <cmath>
#include <sstream>

namespace lmlab::train {

namespace {

// Sum of squares of a tensor, accumulated in double (tensor ops run in its dtype; float32 sums
// of ~1e5 squares are accurate to ~1e-6 relative, plenty for a diagnostic).
double sum_sq(const Tensor& t) {
  NoGradGuard guard;
  return sum(mul(t, t)).item();
}

}  // namespace

int64_t block_of(const std::string& name) {
  const std::string prefix = "blocks.";
  if (name.compare(0, prefix.size(), prefix) != 0) return -1;
  const size_t dot = name.find('.', prefix.size());
  if (dot == std::string::npos || dot == prefix.size()) return -1;
  int64_t v = 0;
  for (size_t i = prefix.size(); i < dot; ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

void DiagnosticsProbe::before(const nn::TransformerLM& model, const Tensor& ids) {
  const int64_t L = model.config().n_layer;
  std::vector<double> g2(size_t(L), 0.0), w2(size_t(L), 0.0);
  snapshot_.clear();
  NoGradGuard guard;
  for (const auto& [name, p] : model.named_parameters()) {
    const int64_t b = block_of(name);
    if (b < 0 || b >= L) continue;
    if (p.grad().defined()) g2[size_t(b)] += sum_sq(p.grad());
    w2[size_t(b)] += sum_sq(p);
    snapshot_.push_back(p.clone());
  }
  std::vector<Tensor> hidden;
  model.forward_hidden(ids, &hidden);
  rows_.assign(size_t(L), {});
  for (int64_t l = 0; l < L; ++l) {
    LayerDiagnostics& r = rows_[size_t(l)];
    r.layer = l;
    r.grad_norm = std::sqrt(g2[size_t(l)]);
    r.weight_norm = std::sqrt(w2[size_t(l)]);
    const Tensor& h = hidden[size_t(l)];
    r.residual_rms = std::sqrt(sum_sq(h) / double(h.numel()));
  }
}

std::vector<LayerDiagnostics> DiagnosticsProbe::after(const nn::TransformerLM& model) {
  const int64_t L = model.config().n_layer;
  std::vector<double> d2(size_t(L), 0.0);
  NoGradGuard guard;
  size_t k = 0;
  for (const auto& [name, p] : model.named_parameters()) {
    const int64_t b = block_of(name);
    if (b < 0 || b >= L) continue;
    d2[size_t(b)] += sum_sq(sub(p, snapshot_.at(k++)));
  }
  for (LayerDiagnostics& r : rows_)
    r.update_ratio = r.weight_norm > 0 ? std::sqrt(d2[size_t(r.layer)]) / r.weight_norm : 0.0;
  snapshot_.clear();
  return rows_;
}

std::string diagnostics_rows(int64_t step, const std::vector<LayerDiagnostics>& rows) {
  std::ostringstream out;
  out.precision(7);
  for (const LayerDiagnostics& r : rows)
    out << step << "," << r.layer << "," << r.grad_norm << "," << r.residual_rms << ","
        << r.weight_norm << "," << r.update_ratio << "\n";
  return out.str();
}

}  // namespace lmlab::train
