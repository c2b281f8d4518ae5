// The statistics of an ablation report (ablation/report.h), as pure functions of the runs' files
// once read: summarise (per-variant statistics over seeds) and compare (verdicts against the
// baseline). Rendering them as summary.json and report.md is report.cpp's.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "train/ablation/runner.h"

namespace lmlab::train {

// A run's diagnostics.csv: step -> column (grad_norm, residual_rms, weight_norm, update_ratio;
// every step has all four) -> one value per block.
using Diagnostics = std::map<int64_t, std::map<std::string, std::vector<double>>>;

// One run of a variant as its directory holds it.
struct RunRecord {
  int64_t seed = 0;
  std::string dir;  // relative to the ablation's output directory
  RunState state = RunState::Pending;
  std::optional<nlohmann::json> result;  // result.json of a finished or diverged run
  Diagnostics diagnostics;               // of a finished run (empty: none written)
  int64_t warmup_iters = 0;              // optim.warmup_iters of its config
};

// One metric over seeds: mean, sample standard deviation (n - 1 in the denominator; 0 for a
// single value), min, max and the count.
struct SeedStats {
  double mean = 0, std = 0, min = 0, max = 0;
  size_t n = 0;
};
// Empty for no values.
std::optional<SeedStats> seed_stats(const std::vector<double>& values);

// Per-block diagnostics of a variant, each the elementwise mean over its finished runs (runs with
// another block count are left out): gradient norms at step 0 and at the first evaluation at or
// after warmup (at least step 1), residual-stream RMS at step 0 and at the last evaluation, and
// update/weight ratios after warmup (Xiong et al. 2020). The steps are the last run's.
struct VariantDiagnostics {
  int64_t step_after_warmup = -1, step_final = -1;  // -1: no diagnostics
  std::vector<double> grad_norm_init, grad_norm_after_warmup;
  std::vector<double> residual_rms_init, residual_rms_final;
  std::vector<double> update_ratio_after_warmup;
};

struct VariantSummary {
  std::string name, description;
  std::vector<std::string> overrides;  // "key=value", the spec's common ones first
  std::vector<RunRecord> runs;         // in plan order
  std::optional<SeedStats> final_val_loss, best_val_loss;  // over the finished runs
  // The final val loss in bits per byte of text (result.json's final_val_bpb): char-, byte- and
  // BPE-level variants on one scale.
  std::optional<SeedStats> final_val_bpb;
  double tokens_per_s = 0;    // median over finished runs of each run's tokens_per_s (0: none)
  double peak_rss_bytes = 0;  // the largest of the finished and diverged runs (0: none)
  std::optional<double> clipped_fraction;  // mean over finished runs of clipped steps / steps
  // As the last finished or diverged run's result.json has them (absent when none has).
  std::optional<nlohmann::json> num_parameters, kv_cache_bytes_per_token;
  int64_t diverged = 0, finished = 0, total = 0;
  int64_t warmup_iters = 0;  // the last run's
  VariantDiagnostics diagnostics;
};

// The statistics of variant `v` over its `runs`; `overrides` are its override strings.
VariantSummary summarise(const AblationVariant& v, std::vector<std::string> overrides,
                         std::vector<RunRecord> runs);

// A variant against the baseline on the spec's metric.
struct Comparison {
  std::string variant, baseline;
  std::optional<double> diff;       // mean(variant) - mean(baseline)
  std::optional<double> std_error;  // sqrt(s_a^2 / n_a + s_b^2 / n_b), that difference's
  // "better" / "worse" (|diff| >= 2 std errors), "within noise", "one seed: no error bar" (a side
  // has one seed), "no finished runs to compare"; "; unstable across seeds: MIN to MAX" appended
  // when the variant's seeds spread over more than max(0.1, 5x the baseline's spread).
  std::string verdict;
  bool unstable = false;
};

// Every variant but the baseline against the baseline on `metric` (final_val_loss or
// best_val_loss), in order; empty when no variant is named `baseline`.
std::vector<Comparison> compare(const std::vector<VariantSummary>& variants,
                                const std::string& baseline, const std::string& metric);

// "%.*f" of x at `prec` decimals, "–" when not finite (the report's numbers).
std::string format_fixed(double x, int prec = 4);

}  // namespace lmlab::train
