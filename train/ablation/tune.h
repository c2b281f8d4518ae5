// Per-variant tuning (spec `tune:`, docs/ablations.md): the sweep's results read from its runs,
// each variant's pick (the value with the lowest `metric` among its finished sweep runs), and the
// sweep as summary.json's "tune" object and report.md's "Tuning" section.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "train/ablation/runner.h"
#include "train/ablation/spec.h"

namespace lmlab::train {

struct TunePoint {
  std::string value;
  std::string dir;  // relative to the ablation's output directory
  RunState state = RunState::Pending;
  std::optional<double> metric;  // a finished run's metric (final or best val loss)
};

struct TunedVariant {
  std::string variant;
  std::vector<TunePoint> points;  // in the spec's value order
  std::string picked;             // "" while no sweep run of the variant has finished
};

struct TuneResult {
  std::string key, metric;
  int64_t seed = 0;
  std::vector<TunedVariant> variants;  // in spec order
  // Whether every sweep run has ended (finished, diverged or failed).
  bool complete() const;
};

// The sweep as its runs' directories hold it; the pick of each variant is the value with the
// lowest metric among its finished runs (ties: the earlier value in the spec), none when none
// finished. `out_dir` makes the runs' directories relative.
TuneResult read_tune_result(const AblationSpec& spec, const std::vector<AblationRun>& sweep,
                            const std::string& out_dir);

// variant -> picked value, for with_tuned_values. Throws lmlab::Error naming each variant none of
// whose sweep runs finished ("[ablate] variant 'post': no value of optim.lr trained in its sweep
// (diverged: 0.004; failed: ...): nothing to run its seeds at").
std::vector<std::pair<std::string, std::string>> tuned_values(const TuneResult& tune);

nlohmann::json tune_json(const TuneResult& tune);
// "## Tuning": the metric of every variant at every value (the pick in bold), the figure when
// plot_ablation.py drew tune.png.
void tune_markdown(std::ostream& md, const TuneResult& tune, bool figure);

}  // namespace lmlab::train
