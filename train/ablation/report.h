// The report of an ablation: per-variant statistics over seeds and the verdicts against the
// baseline (ablation/summary.h), rendered as summary.json and report.md, and the PNG plots
// (docs/ablations.md).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/ablation/spec.h"
#include "train/ablation/summary.h"
#include "train/ablation/tune.h"

namespace lmlab::train {

// Reads the runs on disk, summarises each variant, compares them with the baseline, writes
// <out_dir>/summary.json, draws the plots with tools/plot_ablation.py (python3-matplotlib; it
// reads summary.json) and writes <out_dir>/report.md, both files through the one atomic write.
// Without matplotlib (or with draw_plots false) the report says how to draw the plots. `tune`: the
// tuning sweep of a spec with `tune:` (its table, and tune.png). Returns the report's path.
std::string write_ablation_report(const AblationSpec& spec, const std::vector<AblationRun>& runs,
                                  const std::string& out_dir, bool draw_plots = true,
                                  const TuneResult* tune = nullptr);

// summary.json: the spec's header, every variant's statistics and runs (with their result.json),
// the comparisons.
nlohmann::json summary_json(const AblationSpec& spec, const std::vector<VariantSummary>& variants,
                            const std::vector<Comparison>& comparisons,
                            const TuneResult* tune = nullptr);

// How the report shows the plots: drawn (embedded PNGs), or the command that draws them.
struct ReportPlots {
  bool drawn = false;
  std::string command;                   // when not drawn
  std::vector<std::string> sweeps = {};  // sweep_<axis>.png drawn for numeric grid axes, sorted
  bool tune_figure = false;              // tune.png drawn (the tuning sweep)
};

// report.md: the results table, the comparison with the baseline, the diagnostics table, the
// plots, every run, and the command that reproduces the ablation in `out_dir`.
std::string report_markdown(const AblationSpec& spec, const std::vector<VariantSummary>& variants,
                            const std::vector<Comparison>& comparisons, const std::string& out_dir,
                            const ReportPlots& plots, const TuneResult* tune = nullptr);

}  // namespace lmlab::train
