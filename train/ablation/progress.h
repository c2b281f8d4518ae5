// What `lmlab ablate` prints while it runs (ablation/runner.h): the ETA of the whole ablation and
// the lines that report it. Pure functions: the runner reads the runs' progress and the clock.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lmlab::train {

// A running run as its metrics.csv shows it.
struct RunProgress {
  int64_t step = -1;      // steps completed (the last row's step + 1); -1: no row yet
  double elapsed = 0;     // seconds since the run started training (the last row's last column)
  int64_t max_iters = 0;  // steps it will take
};

// Seconds until every run of the ablation has ended, with `jobs` runs at a time: each running run
// projected from its own progress (elapsed / step per remaining step), the `pending` runs not yet
// started at the mean projected length of the finished and projected runs. A run's first steps
// include its start-up and the step-0 evaluation of the whole validation split, so a projection
// from them is far too long (it once said 28 minutes for a 30-second run): until max(10, 5%) of
// its steps are done, a running run counts at the mean length of the `finished` runs (seconds
// each, this invocation) less its elapsed time, or not at all before any has finished. Empty when
// nothing can be projected yet (no finished run, no running run past its first 5%).
std::optional<double> ablation_eta(const std::vector<double>& finished,
                                   const std::vector<RunProgress>& running, size_t pending,
                                   int jobs);

// The counts the progress line shows.
struct AblationCounts {
  int done = 0;  // finished or diverged
  int diverged = 0;
  int failed = 0;
  size_t total = 0;  // runs in the ablation
};

// "variant/seedS step/max_iters", a running run in the progress line (a step of -1 shows as 0).
std::string running_label(const std::string& variant, int64_t seed, const RunProgress& p);

// The progress line (no newline): "ablate: 3/8 done (1 diverged) | running pre/seed2 120/800,
// post/seed1 40/800 | ETA 2m10s", " | stopping" after a stop signal; no ETA when `eta` is empty.
std::string progress_line(const AblationCounts& counts, const std::vector<std::string>& running,
                          std::optional<double> eta, bool stopping);

// The line (with its newline) for a run that ended: "ablate: [3/8] pre/seed2: val 1.2345 (42s)";
// `what` says how it ended.
std::string run_ended_line(const AblationCounts& counts, const std::string& variant, int64_t seed,
                           const std::string& what, double seconds);

}  // namespace lmlab::train
