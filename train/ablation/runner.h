// Running an ablation (`lmlab ablate`): every run is an ordinary `lmlab train` child process
// (isolated: a crash or divergence stays in its run), up to --jobs at a time, with a progress
// line; finished runs are skipped and interrupted ones resumed when the command is re-run. The
// report (ablation/report.h) is written at the end. docs/ablations.md.
#pragma once
#include <string>
#include <vector>

#include "train/ablation/spec.h"

namespace lmlab::train {
struct TuneResult;  // ablation/tune.h
}

namespace lmlab::train {

struct AblateOptions {
  std::string out_dir;  // "": runs/ablations/<spec name>
  int jobs = 1;         // runs at a time
  int threads = 0;      // threads per run; 0: cores / jobs (at least 1)
  bool quiet = false;   // no progress line
  std::string exe;      // the lmlab binary the runs execute (the CLI passes itself)
};

// Where a run stands, read from its directory.
enum class RunState { Pending, Partial, Finished, Diverged, Failed };
RunState run_state(const AblationRun& run);
const char* run_state_name(RunState s);

// Refuses an output directory that holds something else: another ablation (a different name in
// its ablation.json), files that are not an ablation's, or a run whose config.yaml differs from
// what the spec now asks for (names the run and the first differing key). Throws lmlab::Error.
void check_ablation_dir(const AblationSpec& spec, const std::vector<AblationRun>& runs,
                        const std::string& out_dir);

// The command line of one run: `EXE train BASE --set <overrides> --set train.seed=S --set
// train.run_dir=DIR --resume --no-plot` (the first line of its train.log).
std::vector<std::string> train_command(const AblationSpec& spec, const AblationRun& run,
                                       const std::string& exe);

// Checks the output directory (check_ablation_dir), creates it and writes ablation.json and a copy
// of the spec, as every way of running an ablation does first.
void prepare_ablation_dir(const AblationSpec& spec, const std::vector<AblationRun>& runs,
                          const std::string& out_dir);

// Runs (or resumes) every run that is not finished, then writes the report (with `tune`'s section
// when given). Returns the exit code: 0 all runs finished or diverged, 1 some failed, 130
// interrupted (re-run to resume).
int run_ablation(const AblationSpec& spec, const std::vector<AblationRun>& runs,
                 const AblateOptions& options, const TuneResult* tune = nullptr);

// A spec with `tune:`: the sweep (plan_tune_runs) first, resumable like any runs; when every
// sweep run has ended, each variant's pick (ablation/tune.h), then the seeds at the picks and the
// report with the sweep. A failed or interrupted sweep returns before any seed starts.
int run_tuned_ablation(const AblationSpec& spec, const AblateOptions& options);

// The spec with the sweep's picks (`tune` receives the sweep's results). Throws when the sweep
// has not ended, or when a variant has no finished sweep run.
AblationSpec tuned_spec(const AblationSpec& spec, const std::vector<AblationRun>& sweep,
                        const std::string& out_dir, TuneResult* tune);

}  // namespace lmlab::train
