// The report of an ablation: per-variant statistics over seeds, the verdicts against the baseline,
// summary.json, report.md and the PNG plots (docs/ablations.md).
#pragma once
#include <string>
#include <vector>

#include "train/ablation/spec.h"

namespace lmlab::train {

// Aggregates the runs into <out_dir>/summary.json and <out_dir>/report.md and draws the plots
// with tools/plot_ablation.py (python3-matplotlib); without matplotlib the report says how to
// draw them. Returns the report's path.
std::string write_ablation_report(const AblationSpec& spec, const std::vector<AblationRun>& runs,
                                  const std::string& out_dir, bool draw_plots = true);

}  // namespace lmlab::train
