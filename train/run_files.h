// Files of a run directory (the trainer's and the ablation runner's): writes that leave either the
// old file or the new one (never half of one), the writability check a run starts with, and the
// CSV logs a resumed run continues.
#pragma once
#include <cstdint>
#include <string>

namespace lmlab {

// Writes text to path atomically (temp file + rename). Throws "[<who>] cannot write <path> (disk
// full or not writable?)" and leaves no temp file behind.
void write_file_atomic(const std::string& path, const std::string& text, const char* who = "train");

// Checks that the run directory exists (creating it) and is writable, with a clear error, and
// removes the temp files of writes a kill -9 cut short (the files they were to replace are intact).
void prepare_run_dir(const std::string& dir);

// CSV rows (metrics.csv, diagnostics.csv) for steps before `keep_below` survive a resume; later
// rows are rewritten. Returns the last kept row's final column (metrics.csv: elapsed seconds).
double rewind_csv(const std::string& path, int64_t keep_below, const std::string& header);

}  // namespace lmlab
