// The resume check: whether a checkpoint written with one config may continue under another; and
// the --init-from load: a checkpoint's weights into a model that may have more parameters.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "train/config/config.h"
#include "train/io/checkpoint.h"

namespace lmlab::train {

// Throws lmlab::Error unless a run whose checkpoint (`ckpt_path`) was written with `saved` by
// `saved_ranks` data-parallel ranks may continue as `now` on `world` ranks. Only the loop length,
// logging, threads, bucketing and where the run lives may change; the global batch (batch_size x
// ranks) must stay, however it is split over the ranks; the model, data and optimizer must not.
// The messages say what to set (train.batch_size, a rank count), which key differs and its two
// values, and where to look (run_dir).
void check_resume(const TrainConfig& saved, int64_t saved_ranks, const TrainConfig& now,
                  int64_t world, const std::string& ckpt_path, const std::string& run_dir);

// What an --init-from load left aside, each list in the model's (or the file's) order.
struct InitFromLoad {
  std::vector<std::string> missing;  // the model's parameters the checkpoint lacks: at their init
  std::vector<std::string> unused;   // the checkpoint's parameters the model lacks: not read
};

// Copies the checkpoint's parameters into `model` (--init-from). A parameter with another shape
// is an error naming it and both shapes; parameters the checkpoint lacks are an error naming them
// unless `init_missing` (--init-missing), which leaves them at their fresh initialisation. The
// checkpoint's parameters the model lacks are not read (its optimizer state never is). Checks
// everything before the first copy: a failed load leaves the model untouched.
InitFromLoad load_init_weights(const Checkpoint& ckpt, nn::TransformerLM& model, bool init_missing);

// The lines that tell what an --init-from of `ckpt_path` left aside ("init-from: 4 parameters not
// in <ckpt> start at their init: a, b, ..."), one per non-empty list; "" when nothing was.
std::string init_from_notes(const InitFromLoad& load, const std::string& ckpt_path);

// Names for a message: all of them, or the first 8 and "and N more", separated by ", ".
std::string name_list(const std::vector<std::string>& names);

}  // namespace lmlab::train
