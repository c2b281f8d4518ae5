// Files of a run directory (the trainer's and the ablation runner's): the writability check a run
// starts with, and the CSV logs a resumed run continues. Whole files are written with
// write_file_atomic (data/atomic_write.h).
#pragma once
#include <cstdint>
#include <string>

#include "data/atomic_write.h"

namespace lmlab::train {

// Checks that the run directory exists (creating it) and is writable, with a clear error, and
// removes the temp files of writes a kill -9 cut short (the files they were to replace are intact).
void prepare_run_dir(const std::string& dir);

// CSV rows (metrics.csv, diagnostics.csv) for steps before `keep_below` survive a resume; later
// rows are rewritten. Returns the last kept row's final column (metrics.csv: elapsed seconds).
double rewind_csv(const std::string& path, int64_t keep_below, const std::string& header);

}  // namespace lmlab::train
