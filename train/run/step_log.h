// What the trainer reports per step, as pure functions a test can pin down: the tokens/s
// statistics, the ETA, the progress line and the metrics.csv row (docs/config.md, train.*).
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace lmlab::train {

// Tokens/s of every step so far: the median of all (result.json) and of the last few (the
// progress line, which should follow a run that speeds up or slows down).
class StepRates {
 public:
  void add(double tokens_per_s) { rates_.push_back(tokens_per_s); }
  bool empty() const { return rates_.empty(); }
  double last() const { return rates_.back(); }
  double median_all() const;
  double median_recent(size_t n = 20) const;

 private:
  std::vector<double> rates_;
};

// Seconds left for `steps_left` steps of `step_tokens` tokens at `tokens_per_s`.
double eta_seconds(int64_t steps_left, int64_t step_tokens, double tokens_per_s);

// "step     12/400 | loss 2.3456 | val 2.4000 | lr 1.00e-03 |   52000 tok/s | ETA 3m07s"
std::string progress_line(int64_t step, int64_t steps, double loss, double val_loss, double lr,
                          double tokens_per_s, double eta_s);

// One metrics.csv row (its header is kMetricsHeader); val_loss and val_bpb are left empty when
// !has_val, val_subset_loss (an estimate on part of the split, train.val_subset_interval) when
// it is NaN.
struct MetricsRow {
  int64_t step = 0, tokens = 0;
  double lr = 0, train_loss = 0, val_loss = 0;
  double val_bpb = 0;  // val_loss in bits per byte of text (left empty when not finite)
  double val_subset_loss = NAN;
  double grad_norm = 0;
  bool has_val = false, clipped = false;
  double tokens_per_s = 0, elapsed_s = 0;
};
inline constexpr const char* kMetricsHeader =
    "step,tokens,lr,train_loss,val_loss,val_bpb,val_subset_loss,grad_norm,clipped,tokens_per_s,"
    "elapsed_s";
std::string metrics_row(const MetricsRow& r);

}  // namespace lmlab::train
