// The resume check: whether a checkpoint written with one config may continue under another.
#pragma once
#include <cstdint>
#include <string>

#include "train/config/config.h"

namespace lmlab::train {

// Throws lmlab::Error unless a run whose checkpoint (`ckpt_path`) was written with `saved` by
// `saved_ranks` data-parallel ranks may continue as `now` on `world` ranks. Only the loop length,
// logging, threads, bucketing and where the run lives may change; the global batch (batch_size x
// ranks) must stay, however it is split over the ranks; the model, data and optimizer must not.
// The messages say what to set (train.batch_size, a rank count) or where to look (run_dir).
void check_resume(const TrainConfig& saved, int64_t saved_ranks, const TrainConfig& now,
                  int64_t world, const std::string& ckpt_path, const std::string& run_dir);

}  // namespace lmlab::train
