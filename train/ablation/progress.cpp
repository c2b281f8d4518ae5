// The ablation's ETA and progress lines (ablation/progress.h).
#include "train/ablation/progress.h"

#include <algorithm>
#include <sstream>

#include "train/common/text.h"

namespace lmlab::train {

std::optional<double> ablation_eta(const std::vector<double>& finished,
                                   const std::vector<RunProgress>& running, size_t pending,
                                   int jobs) {
  double mean_done = 0;
  for (double d : finished) mean_done += d / double(finished.size());
  double remaining = 0, total_est = 0;  // seconds left; projected lengths of est_n runs
  int est_n = 0;
  for (const RunProgress& p : running) {
    if (p.step > 0 && p.step >= std::max<int64_t>(10, p.max_iters / 20)) {
      const double per_step = p.elapsed / double(p.step);
      remaining += per_step * double(p.max_iters - p.step);
      total_est += per_step * double(p.max_iters);
      ++est_n;
    } else if (!finished.empty()) {
      remaining += std::max(0.0, mean_done - std::max(p.elapsed, 0.0));
    }
  }
  for (double d : finished) total_est += d, ++est_n;
  if (est_n == 0) return std::nullopt;
  remaining += double(pending) * total_est / est_n;
  return remaining / jobs;
}

std::string running_label(const std::string& variant, int64_t seed, const RunProgress& p) {
  return variant + "/seed" + std::to_string(seed) + " " +
         std::to_string(std::max<int64_t>(p.step, 0)) + "/" + std::to_string(p.max_iters);
}

std::string progress_line(const AblationCounts& counts, const std::vector<std::string>& running,
                          std::optional<double> eta, bool stopping) {
  std::ostringstream line;
  line << "ablate: " << counts.done << "/" << counts.total << " done";
  if (counts.diverged) line << " (" << counts.diverged << " diverged)";
  if (counts.failed) line << " (" << counts.failed << " failed)";
  line << " | running ";
  for (size_t i = 0; i < running.size(); ++i) line << (i ? ", " : "") << running[i];
  if (eta) line << " | ETA " << format_duration(*eta);
  if (stopping) line << " | stopping";
  return line.str();
}

std::string run_ended_line(const AblationCounts& counts, const std::string& variant, int64_t seed,
                           const std::string& what, double seconds) {
  std::ostringstream line;
  line << "ablate: [" << counts.done << "/" << counts.total << "] " << variant << "/seed" << seed
       << ": " << what << " (" << format_duration(seconds) << ")\n";
  return line.str();
}

}  // namespace lmlab::train
