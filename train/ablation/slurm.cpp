// `lmlab ablate SPEC --emit-slurm DIR`: the ablation as a Slurm job array (issue 9's fan-out), one
// task per variant x seed, each an ordinary `lmlab train` that a cluster runs wherever it likes.
#include "train/ablation/slurm.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "autograd/error.h"
#include "train/common/text.h"

namespace lmlab::train {

namespace {

namespace fs = std::filesystem;

void write_script(const fs::path& path, const std::string& text) {
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << text;
    if (!f) throw Error("[ablate] cannot write " + path.string());
  }
  chmod(path.c_str(), 0755);
}

std::string absolute(const std::string& p) { return fs::absolute(p).lexically_normal().string(); }

// tasks/<i>.sh: one run, resumable, its output appended to the run's train.log.
std::string task_script(const AblationSpec& spec, const AblationRun& r, size_t i, size_t n,
                        int threads, const std::string& exe) {
  const std::string cmd = shell_quote(train_command(spec, r, exe));
  const std::string log = shell_quote(r.dir + "/train.log");
  std::ostringstream s;
  s << "#!/usr/bin/env bash\n"
    << "# lmlab ablation '" << spec.name << "', task " << i << " of " << n << ": variant "
    << r.variant << ", seed " << r.seed << ".\n"
    << "# Resumable: re-running it continues the run from its checkpoint (or does nothing if\n"
    << "# it has finished).\n"
    << "set -euo pipefail\n"
    << "mkdir -p " << shell_quote(r.dir) << "\n"
    << "export OMP_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-" << threads << "}\"\n"
    << "export OPENBLAS_NUM_THREADS=\"$OMP_NUM_THREADS\"\n"
    << "echo " << shell_quote("$ " + cmd) << " >> " << log << "\n"
    << "exec " << cmd << " >> " << log << " 2>&1\n";
  return s.str();
}

// ablation.sbatch: the job array, task i running tasks/<i>.sh.
std::string sbatch_script(const AblationSpec& spec, size_t n, int threads, const std::string& dir) {
  std::ostringstream sb;
  sb << "#!/usr/bin/env bash\n"
     << "# lmlab ablation '" << spec.name << "' (" << spec.source << "): " << n
     << " tasks, one per variant x seed.\n"
     << "# Submit:       sbatch " << shell_quote(dir + "/ablation.sbatch") << "\n"
     << "# When all finished: bash " << shell_quote(dir + "/report.sh") << "\n"
     << "# One task by hand: SLURM_ARRAY_TASK_ID=3 bash " << shell_quote(dir + "/ablation.sbatch")
     << "\n"
     << "#SBATCH --job-name=lmlab-" << spec.name << "\n"
     << "#SBATCH --array=0-" << n - 1 << "\n"
     << "#SBATCH --cpus-per-task=" << threads << "\n"
     << "#SBATCH --ntasks=1\n"
     << "#SBATCH --output=" << dir << "/logs/%A_%a.out\n"
     << "set -euo pipefail\n"
     << ": \"${SLURM_ARRAY_TASK_ID:?set by Slurm (or by hand: SLURM_ARRAY_TASK_ID=0)}\"\n"
     << "exec bash " << shell_quote(dir) << "/tasks/\"$SLURM_ARRAY_TASK_ID\".sh\n";
  return sb.str();
}

// report.sh: `lmlab ablate SPEC --out OUT --report-only`.
std::string report_script(const AblationSpec& spec, const std::string& out,
                          const std::string& exe) {
  std::ostringstream rep;
  rep << "#!/usr/bin/env bash\n"
      << "# The report of lmlab ablation '" << spec.name << "' from its runs on disk (report.md,\n"
      << "# summary.json, plots in " << out << "); run it once every task has finished.\n"
      << "exec "
      << shell_quote(std::vector<std::string>{exe, "ablate", absolute(spec.source), "--out", out,
                                              "--report-only"})
      << "\n";
  return rep.str();
}

}  // namespace

int emit_slurm(const AblationSpec& spec, const std::vector<AblationRun>& runs,
               const AblateOptions& opt, const std::string& dir_in) {
  if (runs.empty()) throw Error("[ablate] " + spec.source + " has no runs");
  for (const AblationRun& r : runs)
    if (fs::path(r.dir).is_relative())
      throw Error("[ablate] --emit-slurm needs absolute run directories (got " + r.dir + ")");
  const std::string out = absolute(opt.out_dir), dir = absolute(dir_in);
  prepare_ablation_dir(spec, runs, out);
  std::error_code ec;
  fs::create_directories(fs::path(dir) / "tasks", ec);
  if (!ec) fs::create_directories(fs::path(dir) / "logs", ec);
  if (ec) throw Error("[ablate] cannot create " + dir + ": " + ec.message());
  const int threads = opt.threads > 0 ? opt.threads : 1;
  const std::string exe = absolute(opt.exe);
  for (size_t i = 0; i < runs.size(); ++i)
    write_script(fs::path(dir) / "tasks" / (std::to_string(i) + ".sh"),
                 task_script(spec, runs[i], i, runs.size(), threads, exe));
  write_script(fs::path(dir) / "ablation.sbatch", sbatch_script(spec, runs.size(), threads, dir));
  write_script(fs::path(dir) / "report.sh", report_script(spec, out, exe));
  return int(runs.size());
}

}  // namespace lmlab::train
