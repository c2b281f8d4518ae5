#include "train/run/resume.h"

#include <set>

#include "autograd/error.h"
#include "autograd/shape.h"
#include "autograd/tape.h"

namespace lmlab::train {

namespace {

// `saved` with every field that may change on resume taken from `now`.
TrainConfig with_resumable_fields_of(TrainConfig saved, const TrainConfig& now) {
  saved.train.run_dir = now.train.run_dir;  // a moved run directory, or the same one spelt anew
  saved.train.max_iters = now.train.max_iters;
  saved.train.eval_interval = now.train.eval_interval;
  saved.train.val_subset_interval = now.train.val_subset_interval;  // evaluation only
  saved.train.val_subset_tokens = now.train.val_subset_tokens;
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

// "model.n_embd: 64" (a line of first_yaml_difference) as "model.n_embd 64".
std::string key_and_value(const std::string& line) {
  const size_t colon = line.find(':');
  if (colon == std::string::npos) return line;
  const size_t value = line.find_first_not_of(' ', colon + 1);
  return line.substr(0, colon) + " " + (value == std::string::npos ? "\"\"" : line.substr(value));
}

// The first key on which `saved` (its resumable fields taken from `now`) and `now` differ.
std::string config_error(const TrainConfig& saved, const TrainConfig& now,
                         const std::string& ckpt_path, const std::string& run_dir) {
  const auto [was, is] = first_yaml_difference(to_yaml(saved), to_yaml(now));
  return "[train] " + ckpt_path + " was written with " + key_and_value(was) + ", this config has " +
         key_and_value(is) + "; resume needs the same model, data and optimizer config (see " +
         run_dir +
         "/config.yaml; start a new run, or --init-from the checkpoint to reuse its weights)";
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
  if (to_yaml(a) != to_yaml(now)) throw Error(config_error(a, now, ckpt_path, run_dir));
}

std::string name_list(const std::vector<std::string>& names) {
  constexpr size_t kShown = 8;
  std::string out;
  for (size_t i = 0; i < names.size() && i < kShown; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > kShown) out += ", and " + std::to_string(names.size() - kShown) + " more";
  return out;
}

namespace {

// The checkpoint's parameters: its tensors less its optimizer state ("adamw.m.<param>", ...).
std::vector<std::string> checkpoint_parameters(const Checkpoint& ckpt) {
  const auto it = ckpt.file.metadata.find("optimizer");
  const std::string state_prefix =
      it == ckpt.file.metadata.end() || it->second == "none" ? "" : it->second + ".";
  std::vector<std::string> names;
  for (const auto& [name, t] : ckpt.file.tensors)
    if (state_prefix.empty() || name.rfind(state_prefix, 0) != 0) names.push_back(name);
  return names;
}

// "1 parameter" / "4 parameters".
std::string parameters(size_t n) {
  return std::to_string(n) + (n == 1 ? " parameter" : " parameters");
}

}  // namespace

InitFromLoad load_init_weights(const Checkpoint& ckpt, nn::TransformerLM& model,
                               bool init_missing) {
  const std::string& path = ckpt.file.path;
  InitFromLoad load;
  nn::StateDict weights;
  std::set<std::string> mine;
  NoGradGuard guard;
  for (const auto& [name, t] : model.named_parameters()) {
    mine.insert(name);
    if (!ckpt.file.contains(name)) {
      load.missing.push_back(name);
      weights[name] = t.clone();  // its init, copied back onto itself
      continue;
    }
    const Tensor& saved = ckpt.file.tensors.at(name);
    if (saved.shape() != t.shape())
      throw Error("[checkpoint] " + path + ": parameter '" + name + "' has shape " +
                  to_string(saved.shape()) + " in the checkpoint but " + to_string(t.shape()) +
                  " in the model (use a config with the checkpoint's model keys)");
    weights[name] = saved;
  }
  if (!load.missing.empty() && !init_missing)
    throw Error("[checkpoint] " + path + " lacks " + parameters(load.missing.size()) +
                " of this model: " + name_list(load.missing) +
                " (--init-missing starts them at their init)");
  for (const std::string& name : checkpoint_parameters(ckpt))
    if (!mine.count(name)) load.unused.push_back(name);
  try {
    model.load_state_dict(weights, /*strict=*/true);
  } catch (const Error& e) {
    throw Error("[checkpoint] " + path + ": " + e.what());
  }
  return load;
}

std::string init_from_notes(const InitFromLoad& load, const std::string& ckpt_path) {
  const bool one_missing = load.missing.size() == 1, one_unused = load.unused.size() == 1;
  std::string notes;
  if (!load.missing.empty())
    notes += "init-from: " + parameters(load.missing.size()) + " not in " + ckpt_path +
             (one_missing ? " starts at its init: " : " start at their init: ") +
             name_list(load.missing) + "\n";
  if (!load.unused.empty())
    notes += "init-from: " + parameters(load.unused.size()) + " of " + ckpt_path +
             (one_unused ? " is not in this model and is not used: "
                         : " are not in this model and are not used: ") +
             name_list(load.unused) + "\n";
  return notes;
}

}  // namespace lmlab::train
