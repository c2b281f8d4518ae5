// Ablation specs (docs/ablations.md): a base config, named variants (each a set of overrides), an
// optional grid (the product of override lists), seeds and the metric to compare. Loading a spec
// expands it into runs, each a fully resolved TrainConfig, and validates all of them up front.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "train/config/config.h"

namespace lmlab::train {

using Overrides = std::vector<std::pair<std::string, std::string>>;  // key, value (in order)

struct AblationVariant {
  std::string name;         // unique; also the directory name under the ablation's output
  Overrides overrides;      // applied after the spec's common `set`
  std::string description;  // optional, for the report
  int line = 0;             // where it was declared in the spec (1-based; 0: unknown)
};

// `tune:` a key tried at several values per variant on one seed (a short sweep: `tune_set`), each
// variant's best value on the validation split (`metric`) then used for all its seeds.
struct TuneSpec {
  std::string key;                  // e.g. optim.lr; empty: no tuning
  std::vector<std::string> values;  // in spec order
  Overrides set;                    // `tune_set`: overrides for the sweep runs only
  int64_t seed = 0;                 // `tune_seed` (default: the first seed)
  bool active() const { return !key.empty(); }
};

struct AblationSpec {
  std::string source;       // the spec file ("" when built from text without one)
  std::string name;         // `name`, or the file's stem
  std::string description;  // free text for the report
  std::string base;         // the base config file, resolved against the spec's folder
  Overrides common;         // `set`: overrides every variant gets
  std::vector<AblationVariant> variants;  // explicit variants x grid points, in spec order
  std::vector<int64_t> seeds;
  std::string metric = "final_val_loss";  // final_val_loss | best_val_loss
  std::string baseline;                   // the variant others are compared with (default: first)
  TuneSpec tune;
};

// One run of an ablation: a variant at a seed, in <out>/<variant>/seed<seed>.
struct AblationRun {
  std::string variant;
  int64_t seed = 0;
  std::string dir;
  std::vector<std::string> sets;  // "key=value" on the base: common, variant, seed, run_dir
  TrainConfig config;             // the base with `sets` applied
  std::string tune_value;         // a tuning sweep's run: its value of tune.key ("" otherwise)
};

// Parses a spec (YAML) and expands its grid. Throws lmlab::Error "file:line: what" for unknown
// keys, wrong types, duplicate or unusable variant names, empty seeds, a missing base.
AblationSpec load_ablation_spec(const std::string& path);
// Whether a YAML file is an ablation spec (a map with a `base` key) rather than a train config.
bool is_ablation_spec(const std::string& path);
AblationSpec parse_ablation_spec(const std::string& text, const std::string& source);

// The one spelling of an output or run directory: absolute, lexically normal ("./", "a/../" and
// repeated slashes gone) and without a trailing slash, so "runs/x", "./runs/x/" and "$PWD/runs/x"
// are the same directory when stored in a run's train.run_dir and when compared with it.
std::string normal_dir(const std::string& dir);

// Resolves every variant x seed into a run under `out_dir` (as normal_dir spells it; the runs'
// dirs and train.run_dir are <out>/<variant>/seed<seed>): loads the base with the overrides and
// validates it. Errors name the spec, the variant and the key ("spec.yaml:12: variant 'post':
// --set model.norms=rmsnorm: unknown key 'model.norms' (did you mean 'model.norm'?)").
std::vector<AblationRun> plan_ablation(const AblationSpec& spec, const std::string& out_dir);

// The tuning sweep (spec.tune): every variant at every value of tune.key, on tune.seed, in
// <out>/<variant>/tune/<leaf>=<value> (e.g. tune/lr=0.001), with tune_set applied. Empty
// without `tune:`. Errors as plan_ablation's.
std::vector<AblationRun> plan_tune_runs(const AblationSpec& spec, const std::string& out_dir);

// The spec with each variant's picked value of tune.key (variant name -> value) appended to its
// overrides: what plan_ablation then runs at every seed.
AblationSpec with_tuned_values(const AblationSpec& spec,
                               const std::vector<std::pair<std::string, std::string>>& picks);

// The overrides of a variant as "key=value" strings (common first), for reports and --dry-run.
std::vector<std::string> override_strings(const AblationSpec& spec, const AblationVariant& v);

}  // namespace lmlab::train
