// Per-variant tuning: the sweep's results, the picks, their JSON and markdown (ablation/tune.h).
#include "train/ablation/tune.h"

#include <filesystem>

#include "autograd/error.h"
#include "data/read_file.h"
#include "train/ablation/summary.h"

namespace lmlab::train {

namespace fs = std::filesystem;

namespace {

std::optional<double> metric_of(const AblationRun& run, const std::string& metric) {
  const std::optional<std::string> text = data::read_whole_file(run.dir + "/result.json");
  if (!text) return std::nullopt;
  try {
    const nlohmann::json j = nlohmann::json::parse(*text);
    if (j.contains(metric) && j[metric].is_number()) return j[metric].get<double>();
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

std::string relative(const std::string& dir, const std::string& out) {
  return fs::path(dir).lexically_relative(out).string();
}

}  // namespace

bool TuneResult::complete() const {
  for (const TunedVariant& v : variants)
    for (const TunePoint& p : v.points)
      if (p.state == RunState::Pending || p.state == RunState::Partial) return false;
  return true;
}

TuneResult read_tune_result(const AblationSpec& spec, const std::vector<AblationRun>& sweep,
                            const std::string& out) {
  TuneResult t{spec.tune.key, spec.metric, spec.tune.seed, {}};
  for (const AblationVariant& v : spec.variants) {
    TunedVariant tv{v.name, {}, ""};
    std::optional<double> best;
    for (const AblationRun& r : sweep) {
      if (r.variant != v.name) continue;
      TunePoint p{r.tune_value, relative(r.dir, out), run_state(r), std::nullopt};
      if (p.state == RunState::Finished) p.metric = metric_of(r, spec.metric);
      if (p.metric && (!best || *p.metric < *best)) {
        best = p.metric;
        tv.picked = p.value;
      }
      tv.points.push_back(p);
    }
    t.variants.push_back(tv);
  }
  return t;
}

std::vector<std::pair<std::string, std::string>> tuned_values(const TuneResult& t) {
  std::vector<std::pair<std::string, std::string>> picks;
  std::string problems;
  for (const TunedVariant& v : t.variants) {
    if (!v.picked.empty()) {
      picks.emplace_back(v.variant, v.picked);
      continue;
    }
    std::string how;
    for (const TunePoint& p : v.points)
      how += (how.empty() ? "" : ", ") + p.value + " " + run_state_name(p.state);
    problems += std::string(problems.empty() ? "" : "; ") + "variant '" + v.variant +
                "': no value of " + t.key + " trained in its sweep (" + how + ")";
  }
  if (!problems.empty())
    throw Error("[ablate] " + problems +
                ": nothing to run its seeds at (widen the tune values, or look at the sweep's "
                "train.log files)");
  return picks;
}

nlohmann::json tune_json(const TuneResult& t) {
  nlohmann::json j{{"key", t.key}, {"metric", t.metric}, {"seed", t.seed}};
  j["variants"] = nlohmann::json::array();
  for (const TunedVariant& v : t.variants) {
    nlohmann::json points = nlohmann::json::array();
    for (const TunePoint& p : v.points)
      points.push_back({{"value", p.value},
                        {"dir", p.dir},
                        {"status", run_state_name(p.state)},
                        {"metric", p.metric ? nlohmann::json(*p.metric) : nlohmann::json()}});
    j["variants"].push_back(
        {{"name", v.variant},
         {"picked", v.picked.empty() ? nlohmann::json() : nlohmann::json(v.picked)},
         {"points", points}});
  }
  return j;
}

void tune_markdown(std::ostream& md, const TuneResult& t, bool figure) {
  if (t.variants.empty()) return;
  md << "## Tuning\n\nEach variant ran at every value of `" << t.key << "` on seed " << t.seed
     << " (the spec's `tune_set` applied); its seeds then ran at the value with the lowest "
     << (t.metric == "best_val_loss" ? "best" : "final")
     << " validation loss (**bold**), so the results above compare each variant at its own best "
        "value.\n\n| variant |";
  for (const TunePoint& p : t.variants.front().points)
    md << " " << t.key << " = " << p.value << " |";
  md << "\n|---|";
  for (size_t i = 0; i < t.variants.front().points.size(); ++i) md << "---:|";
  md << "\n";
  for (const TunedVariant& v : t.variants) {
    md << "| `" << v.variant << "` |";
    for (const TunePoint& p : v.points) {
      const std::string cell = p.metric ? format_fixed(*p.metric) : run_state_name(p.state);
      md << " " << (p.value == v.picked ? "**" + cell + "**" : cell) << " |";
    }
    md << "\n";
  }
  md << "\n";
  // A pick at either end of the values may not be the best value: the sweep did not bracket it.
  std::string edge;
  for (const TunedVariant& v : t.variants)
    if (!v.points.empty() &&
        (v.picked == v.points.front().value || v.picked == v.points.back().value))
      edge += (edge.empty() ? "`" : ", `") + v.variant + "`";
  if (!edge.empty())
    md << "Picked at an end of the range: " << edge << " (the best value may lie beyond it; widen "
       << "`tune:` to bracket it).\n\n";
  if (figure) md << "![tuning sweep](tune.png)\n\n";
}

}  // namespace lmlab::train
