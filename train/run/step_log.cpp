#include "train/run/step_log.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "train/common/stats.h"
#include "train/common/text.h"

namespace lmlab::train {

double StepRates::median_all() const { return median(rates_); }

double StepRates::median_recent(size_t n) const {
  const size_t k = std::min(n, rates_.size());
  return median(std::vector<double>(rates_.end() - std::ptrdiff_t(k), rates_.end()));
}

double eta_seconds(int64_t steps_left, int64_t step_tokens, double tokens_per_s) {
  if (steps_left <= 0) return 0;
  return double(steps_left * step_tokens) / std::max(tokens_per_s, 1e-9);
}

std::string progress_line(int64_t step, int64_t steps, double loss, double val_loss, double lr,
                          double tokens_per_s, double eta_s) {
  char line[200];
  std::snprintf(line, sizeof line,
                "step %6lld/%lld | loss %.4f | val %.4f | lr %.2e | %7.0f tok/s | ETA %s",
                (long long)step, (long long)steps, loss, val_loss, lr, tokens_per_s,
                format_duration(eta_s).c_str());
  return line;
}

std::string metrics_row(const MetricsRow& r) {
  std::ostringstream row;
  row.precision(7);
  row << r.step << "," << r.tokens << "," << r.lr << "," << r.train_loss << ",";
  if (r.has_val) row << r.val_loss;
  row << ",";
  if (r.has_val && std::isfinite(r.val_bpb)) row << r.val_bpb;
  row << ",";
  if (std::isfinite(r.val_subset_loss)) row << r.val_subset_loss;
  row << "," << r.grad_norm << "," << int(r.clipped) << "," << r.tokens_per_s << "," << r.elapsed_s;
  return row.str();
}

}  // namespace lmlab::train
