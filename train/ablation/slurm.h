// `lmlab ablate --slurm DIR`: the ablation as a Slurm job array instead of local child processes.
#pragma once
#include <string>
#include <vector>

#include "train/ablation/runner.h"

namespace lmlab::train {

// Writes a Slurm job array for the ablation into `dir` instead of running it: tasks/<i>.sh (one
// ordinary `lmlab train` per variant x seed, i = 0 .. runs - 1, logging to <run>/train.log),
// ablation.sbatch (`#SBATCH --array=0-<runs-1>`, runs tasks/$SLURM_ARRAY_TASK_ID.sh) and report.sh
// (`lmlab ablate SPEC --out OUT --report-only`, once every task has finished). Paths are absolute
// (a cluster shares the file system): plan the runs under an absolute out_dir. `threads` per task
// (0: 1). Returns the number of tasks.
int emit_slurm(const AblationSpec& spec, const std::vector<AblationRun>& runs,
               const AblateOptions& options, const std::string& dir);

}  // namespace lmlab::train
