// Ablation specs: YAML parsing with located errors, grid expansion, and planning (every variant x
// seed resolved into a validated TrainConfig before any run starts).
#include "train/ablation/spec.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "autograd/error.h"
#include "data/read_file.h"

namespace lmlab::train {

namespace fs = std::filesystem;

namespace {

std::string where(const std::string& source, const YAML::Node& n) {
  const std::string file = source.empty() ? "<ablation spec>" : source;
  const YAML::Mark m = n.Mark();
  return m.is_null() || m.line < 0 ? file : file + ":" + std::to_string(m.line + 1);
}

[[noreturn]] void fail(const std::string& source, const YAML::Node& n, const std::string& what) {
  throw Error(where(source, n) + ": " + what);
}

std::string scalar(const std::string& source, const YAML::Node& n, const std::string& key) {
  if (!n.IsScalar()) fail(source, n, key + " must be a single value (a string or a number)");
  return n.Scalar();
}

// `set:` maps of "section.key: value" pairs, in file order.
Overrides overrides_of(const std::string& source, const YAML::Node& n, const std::string& what) {
  Overrides out;
  if (!n || n.IsNull()) return out;
  if (!n.IsMap()) fail(source, n, what + " must be a map of section.key: value overrides");
  for (const auto& kv : n) {
    const std::string key = scalar(source, kv.first, what + " key");
    if (key.find('.') == std::string::npos)
      fail(source, kv.first, what + ": '" + key + "' is not a section.key name (e.g. model.norm)");
    out.emplace_back(key, scalar(source, kv.second, what + "." + key));
  }
  return out;
}

void check_keys(const std::string& source, const YAML::Node& map,
                const std::set<std::string>& known, const std::string& what) {
  for (const auto& kv : map) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "?";
    if (known.count(key)) continue;
    std::string list;
    for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
    fail(source, kv.first, "unknown key '" + key + "' in " + what + "; the keys are " + list);
  }
}

// Variant names become directory names: letters, digits and . _ = , + - only.
void check_name(const std::string& source, const YAML::Node& at, const std::string& name) {
  bool ok = !name.empty() && name.size() <= 120 && name[0] != '.';
  for (char c : name)
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) ||
                std::string("._=,+-").find(c) != std::string::npos);
  if (!ok)
    fail(source, at,
         "variant name '" + name +
             "' is not usable as a directory name (use letters, "
             "digits and . _ = , + - only; at most 120 characters)");
}

std::string leaf(const std::string& key) { return key.substr(key.rfind('.') + 1); }

// The spec's YAML: a map holding only the keys a spec has.
YAML::Node load_spec_yaml(const std::string& text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error((source.empty() ? "<ablation spec>" : source) + ":" +
                std::to_string(e.mark.line + 1) + ": not valid YAML: " + e.msg);
  }
  if (!root.IsMap())
    fail(source, root, "an ablation spec must be a YAML map (base, variants, seeds, ...)");
  check_keys(source, root,
             {"name", "description", "base", "set", "variants", "grid", "seeds", "metric",
              "baseline", "tune", "tune_set", "tune_seed"},
             "the ablation spec");
  return root;
}

// name, description, base (resolved against the spec's folder) and the common `set`.
void read_header(AblationSpec& spec, const YAML::Node& root) {
  const std::string& source = spec.source;
  spec.name =
      root["name"] ? scalar(source, root["name"], "name") : fs::path(source).stem().string();
  if (spec.name.empty()) spec.name = "ablation";
  check_name(source, root["name"] ? root["name"] : root, spec.name);
  if (root["description"]) spec.description = scalar(source, root["description"], "description");
  if (!root["base"])
    fail(source, root, "missing key 'base' (the config file every variant starts from)");
  spec.base = scalar(source, root["base"], "base");
  if (fs::path(spec.base).is_relative() && !source.empty())
    spec.base = (fs::path(source).parent_path() / spec.base).lexically_normal().string();
  spec.common = overrides_of(source, root["set"], "set");
}

// Seeds: a list of distinct integers >= 0, or a count n meaning seeds 1..n.
std::vector<int64_t> read_seeds(const std::string& source, const YAML::Node& root) {
  const YAML::Node seeds = root["seeds"];
  if (!seeds) fail(source, root, "missing key 'seeds' (a list such as [1, 2, 3], or a count)");
  std::vector<int64_t> out;
  try {
    if (seeds.IsScalar()) {
      const int64_t n = seeds.as<int64_t>();
      if (n < 1 || n > 1000)
        fail(source, seeds, "seeds must be a count in [1, 1000] or a list, got " + seeds.Scalar());
      for (int64_t s = 1; s <= n; ++s) out.push_back(s);
    } else if (seeds.IsSequence()) {
      for (const auto& s : seeds) out.push_back(s.as<int64_t>());
    }
  } catch (const YAML::Exception&) {
    fail(source, seeds, "seeds must be integers");
  }
  if (out.empty()) fail(source, seeds, "seeds must list at least one seed");
  if (std::set<int64_t>(out.begin(), out.end()).size() != out.size())
    fail(source, seeds, "seeds repeat a value");
  for (int64_t s : out)
    if (s < 0) fail(source, seeds, "seeds must be >= 0, got " + std::to_string(s));
  return out;
}

// `metric`: final_val_loss (the default) or best_val_loss.
std::string read_metric(const std::string& source, const YAML::Node& root, std::string metric) {
  if (!root["metric"]) return metric;
  metric = scalar(source, root["metric"], "metric");
  if (metric != "final_val_loss" && metric != "best_val_loss")
    fail(source, root["metric"],
         "metric must be final_val_loss or best_val_loss, got '" + metric + "'");
  return metric;
}

// The explicit `variants:` list, in file order (empty when there is none).
std::vector<AblationVariant> read_variants(const std::string& source, const YAML::Node& vs) {
  std::vector<AblationVariant> out;
  if (!vs || vs.IsNull()) return out;
  if (!vs.IsSequence()) fail(source, vs, "variants must be a list of {name, set} entries");
  for (const auto& v : vs) {
    if (!v.IsMap())
      fail(source, v, "each variant must be a map with a name and a set of overrides");
    check_keys(source, v, {"name", "set", "description"}, "a variant");
    if (!v["name"]) fail(source, v, "a variant needs a name");
    AblationVariant av;
    av.name = scalar(source, v["name"], "variant name");
    check_name(source, v["name"], av.name);
    av.overrides = overrides_of(source, v["set"], "variant '" + av.name + "' set");
    if (v["description"]) av.description = scalar(source, v["description"], "description");
    av.line = int(v.Mark().line) + 1;
    out.push_back(av);
  }
  return out;
}

// The points so far times one grid axis `key: [values]`, each named "...,leaf=value".
std::vector<AblationVariant> grid_product(const std::string& source,
                                          const std::vector<AblationVariant>& points,
                                          const YAML::Node& key_node, const YAML::Node& values) {
  const std::string key = scalar(source, key_node, "grid key");
  if (key.find('.') == std::string::npos)
    fail(source, key_node, "grid: '" + key + "' is not a section.key name (e.g. optim.lr)");
  if (!values.IsSequence() || values.size() == 0)
    fail(source, values, "grid." + key + " must be a non-empty list of values");
  // The grid is a product: refuse it before it grows past the run limit, not after.
  if (points.size() * values.size() > 10000)
    fail(source, key_node, "the grid expands to more than 10000 variants");
  std::vector<AblationVariant> next;
  for (const AblationVariant& g : points)
    for (const auto& value : values) {
      AblationVariant n = g;
      const std::string val = scalar(source, value, "grid." + key + " value");
      n.name += (n.name.empty() ? "" : ",") + leaf(key) + "=" + val;
      n.overrides.emplace_back(key, val);
      n.line = int(value.Mark().line) + 1;
      next.push_back(n);
    }
  return next;
}

// The `grid:` points: every combination of the listed values (one unnamed point without a grid).
std::vector<AblationVariant> read_grid(const std::string& source, const YAML::Node& grid) {
  std::vector<AblationVariant> points{{}};
  if (!grid || grid.IsNull()) return points;
  if (!grid.IsMap()) fail(source, grid, "grid must be a map of section.key: [values]");
  for (const auto& kv : grid) points = grid_product(source, points, kv.first, kv.second);
  return points;
}

// Explicit variants times the grid points; without explicit variants, the grid points alone
// (one implicit variant "base" when there is no grid either).
std::vector<AblationVariant> combine(const std::vector<AblationVariant>& explicit_variants,
                                     std::vector<AblationVariant> grid_points) {
  if (explicit_variants.empty()) {
    if (grid_points.size() == 1 && grid_points[0].name.empty()) grid_points[0].name = "base";
    return grid_points;
  }
  std::vector<AblationVariant> out;
  for (const AblationVariant& v : explicit_variants)
    for (const AblationVariant& g : grid_points) {
      AblationVariant n = v;
      if (!g.name.empty()) {
        n.name += "," + g.name;
        n.overrides.insert(n.overrides.end(), g.overrides.begin(), g.overrides.end());
      }
      out.push_back(n);
    }
  return out;
}

// Every combined name usable as a directory and unique; returns the names.
std::set<std::string> check_variant_names(const AblationSpec& spec, const YAML::Node& at) {
  std::set<std::string> names;
  for (const AblationVariant& v : spec.variants) {
    check_name(spec.source, at, v.name);
    if (!names.insert(v.name).second)
      throw Error((spec.source.empty() ? "<ablation spec>" : spec.source) +
                  (v.line ? ":" + std::to_string(v.line) : "") + ": duplicate variant name '" +
                  v.name + "' (variant names must be unique)");
  }
  return names;
}

// `baseline`: one of the variants (default: the first).
std::string read_baseline(const AblationSpec& spec, const YAML::Node& root,
                          const std::set<std::string>& names) {
  if (!root["baseline"]) return spec.variants.front().name;
  const std::string baseline = scalar(spec.source, root["baseline"], "baseline");
  if (!names.count(baseline))
    fail(spec.source, root["baseline"], "baseline '" + baseline + "' is not one of the variants");
  return baseline;
}

// `tune: {section.key: [values]}` (one key), `tune_set` and `tune_seed`.
TuneSpec read_tune(const AblationSpec& spec, const YAML::Node& root) {
  TuneSpec t;
  const std::string& source = spec.source;
  const YAML::Node tune = root["tune"];
  if (!tune || tune.IsNull()) {
    if (root["tune_set"] || root["tune_seed"])
      fail(source, root["tune_set"] ? root["tune_set"] : root["tune_seed"],
           "tune_set and tune_seed need a tune: {section.key: [values]}");
    return t;
  }
  if (!tune.IsMap() || tune.size() != 1)
    fail(source, tune,
         "tune must be a map of one section.key to its values, e.g. "
         "tune: {optim.lr: [5e-4, 1e-3, 2e-3]}");
  const auto kv = *tune.begin();
  t.key = scalar(source, kv.first, "tune key");
  if (t.key.find('.') == std::string::npos)
    fail(source, kv.first, "tune: '" + t.key + "' is not a section.key name (e.g. optim.lr)");
  if (t.key == "train.seed" || t.key == "train.run_dir")
    fail(source, kv.first, "tune: " + t.key + " is set by the ablation for every run");
  if (!kv.second.IsSequence() || kv.second.size() < 2)
    fail(source, kv.second, "tune." + t.key + " must list at least two values to choose from");
  for (const auto& v : kv.second) t.values.push_back(scalar(source, v, "tune." + t.key + " value"));
  if (std::set<std::string>(t.values.begin(), t.values.end()).size() != t.values.size())
    fail(source, kv.second, "tune." + t.key + " repeats a value");
  t.set = overrides_of(source, root["tune_set"], "tune_set");
  t.seed = spec.seeds.front();
  if (root["tune_seed"]) {
    try {
      t.seed = root["tune_seed"].as<int64_t>();
    } catch (const YAML::Exception&) {
      fail(source, root["tune_seed"], "tune_seed must be an integer");
    }
    if (t.seed < 0) fail(source, root["tune_seed"], "tune_seed must be >= 0");
  }
  return t;
}

}  // namespace

// The steps in the order their errors are reported: the YAML and its keys, the header, seeds,
// metric, variants x grid, the names, the run count, the baseline.
AblationSpec parse_ablation_spec(const std::string& text, const std::string& source) {
  const YAML::Node root = load_spec_yaml(text, source);
  AblationSpec spec;
  spec.source = source;
  read_header(spec, root);
  spec.seeds = read_seeds(source, root);
  spec.metric = read_metric(source, root, spec.metric);
  const YAML::Node vs = root["variants"];
  const std::vector<AblationVariant> explicit_variants = read_variants(source, vs);
  spec.variants = combine(explicit_variants, read_grid(source, root["grid"]));
  const std::set<std::string> names = check_variant_names(spec, vs ? vs : root);
  if (spec.variants.size() * spec.seeds.size() > 10000)
    fail(source, root, "the spec expands to more than 10000 runs");
  spec.baseline = read_baseline(spec, root, names);
  spec.tune = read_tune(spec, root);
  return spec;
}

AblationSpec load_ablation_spec(const std::string& path) {
  std::string why;
  const std::optional<std::string> text = data::read_whole_file(path, &why);
  if (!text) throw Error("[ablate] cannot read the ablation spec " + path + ": " + why);
  return parse_ablation_spec(*text, path);
}

bool is_ablation_spec(const std::string& path) {
  try {
    const YAML::Node root = YAML::LoadFile(path);
    return root.IsMap() && root["base"];
  } catch (const YAML::Exception&) {
    return false;  // not YAML at all: load_config reports it, located
  }
}

std::vector<std::string> override_strings(const AblationSpec& spec, const AblationVariant& v) {
  std::vector<std::string> out;
  for (const auto& [k, val] : spec.common) out.push_back(k + "=" + val);
  for (const auto& [k, val] : v.overrides) out.push_back(k + "=" + val);
  return out;
}

std::string normal_dir(const std::string& dir) {
  if (dir.empty()) return dir;
  std::error_code ec;
  fs::path p = fs::absolute(dir, ec);  // fails only without a current directory
  p = (ec ? fs::path(dir) : p).lexically_normal();
  if (!p.has_filename() && p.has_relative_path()) p = p.parent_path();  // "a/b/" -> "a/b"
  return p.string();
}

namespace {

void check_base(const AblationSpec& spec) {
  if (!fs::is_regular_file(spec.base))
    throw Error(spec.source + ": base config '" + spec.base +
                "' does not exist (relative paths are "
                "resolved against the spec's folder)");
}

// One run of variant `v` at `seed` in `dir`: the base with the spec's and the variant's
// overrides, then `extra` (a tuning sweep's), the seed and the run directory, loaded and checked.
AblationRun plan_run(const AblationSpec& spec, const AblationVariant& v, int64_t seed,
                     const std::string& dir, const std::vector<std::string>& extra) {
  const std::string at = spec.source + (v.line ? ":" + std::to_string(v.line) : "");
  AblationRun r;
  r.variant = v.name;
  r.seed = seed;
  r.dir = dir;
  r.sets = override_strings(spec, v);
  for (const std::string& s : r.sets)
    if (s.rfind("train.seed=", 0) == 0 || s.rfind("train.run_dir=", 0) == 0)
      throw Error(at + ": variant '" + v.name + "' sets " + s.substr(0, s.find('=')) +
                  "; the ablation sets it for every run (use `seeds:` for seeds)");
  r.sets.insert(r.sets.end(), extra.begin(), extra.end());
  r.sets.push_back("train.seed=" + std::to_string(seed));
  r.sets.push_back("train.run_dir=" + dir);
  try {
    r.config = load_config(spec.base, r.sets);
  } catch (const Error& e) {
    throw Error(at + ": variant '" + v.name + "': " + e.what());
  }
  return r;
}

}  // namespace

std::vector<AblationRun> plan_ablation(const AblationSpec& spec, const std::string& out) {
  const std::string out_dir = normal_dir(out);
  check_base(spec);
  std::vector<AblationRun> runs;
  for (const AblationVariant& v : spec.variants)
    for (int64_t seed : spec.seeds)
      runs.push_back(
          plan_run(spec, v, seed, out_dir + "/" + v.name + "/seed" + std::to_string(seed), {}));
  return runs;
}

std::vector<AblationRun> plan_tune_runs(const AblationSpec& spec, const std::string& out) {
  std::vector<AblationRun> runs;
  if (!spec.tune.active()) return runs;
  const std::string out_dir = normal_dir(out);
  check_base(spec);
  for (const AblationVariant& v : spec.variants)
    for (const std::string& value : spec.tune.values) {
      std::vector<std::string> extra;
      for (const auto& [k, val] : spec.tune.set) extra.push_back(k + "=" + val);
      extra.push_back(spec.tune.key + "=" + value);
      const std::string dir = out_dir + "/" + v.name + "/tune/" + leaf(spec.tune.key) + "=" + value;
      runs.push_back(plan_run(spec, v, spec.tune.seed, dir, extra));
      runs.back().tune_value = value;
    }
  return runs;
}

AblationSpec with_tuned_values(const AblationSpec& spec,
                               const std::vector<std::pair<std::string, std::string>>& picks) {
  AblationSpec out = spec;
  for (AblationVariant& v : out.variants)
    for (const auto& [name, value] : picks)
      if (name == v.name) v.overrides.emplace_back(spec.tune.key, value);
  return out;
}

}  // namespace lmlab::train
