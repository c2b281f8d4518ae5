#include "train/run/resume.h"

#include "autograd/error.h"

namespace lmlab::train {

namespace {

// `saved` with every field that may change on resume taken from `now`.
TrainConfig with_resumable_fields_of(TrainConfig saved, const TrainConfig& now) {
  saved.train.run_dir = now.train.run_dir;  // a moved run directory, or the same one spelt anew
  saved.train.max_iters = now.train.max_iters;
  saved.train.eval_interval = now.train.eval_interval;
  saved.train.checkpoint_interval = now.train.checkpoint_interval;
  saved.train.log_interval = now.train.log_interval;
  saved.train.threads = now.train.threads;      // results do not depend on the thread count
  saved.train.bucket_mb = now.train.bucket_mb;  // nor on how gradients are bucketed
  saved.source = now.source;
  return saved;
}

std::string global_batch_error(const TrainConfig& saved, int64_t saved_ranks,
                               const TrainConfig& now, int64_t world,
                               const std::string& ckpt_path) {
  const int64_t was = saved.train.batch_size * saved_ranks, is = now.train.batch_size * world;
  const std::string fix = was % world == 0
                              ? " (set train.batch_size=" + std::to_string(was / world) + ")"
                              : " (use a rank count that divides " + std::to_string(was) + ")";
  return "[train] " + ckpt_path + " was written by " + std::to_string(saved_ranks) +
         " rank(s) x train.batch_size " + std::to_string(saved.train.batch_size) +
         " (a global batch of " + std::to_string(was) + "); this run has " + std::to_string(world) +
         " rank(s) x " + std::to_string(now.train.batch_size) + " = " + std::to_string(is) +
         ": resume needs the same global batch" + fix;
}

}  // namespace

void check_resume(const TrainConfig& saved, int64_t saved_ranks, const TrainConfig& now,
                  int64_t world, const std::string& ckpt_path, const std::string& run_dir) {
  // The same config on the same ranks: nothing to check (another rank count always is checked).
  if (saved_ranks == world && to_yaml(saved) == to_yaml(now)) return;
  TrainConfig a = with_resumable_fields_of(saved, now);
  const int64_t was = saved.train.batch_size * saved_ranks, is = now.train.batch_size * world;
  if (was == is)
    a.train.batch_size = now.train.batch_size;
  else if (saved_ranks != world)
    throw Error(global_batch_error(saved, saved_ranks, now, world, ckpt_path));
  if (to_yaml(a) != to_yaml(now))
    throw Error("[train] " + ckpt_path +
                " was written with a different config; resume needs the same model, data and "
                "optimizer settings (see " +
                run_dir + "/config.yaml)");
}

}  // namespace lmlab::train
