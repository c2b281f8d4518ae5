// The ablation report: per-variant statistics over seeds (summary.json), a Markdown report with
// tables, the comparison against the baseline and the diagnostics that explain it (report.md),
// and the plots drawn by tools/plot_ablation.py.
#include "train/ablation/report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "autograd/error.h"
#include "train/ablation/runner.h"
#include "train/common/stats.h"
#include "train/io/atomic_write.h"
#include "train/io/plot.h"

namespace lmlab::train {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json stats(std::vector<double> v) {
  if (v.empty()) return json();
  double mean = 0;
  for (double x : v) mean += x;
  mean /= double(v.size());
  double var = 0;
  for (double x : v) var += (x - mean) * (x - mean);
  const double sd = v.size() > 1 ? std::sqrt(var / double(v.size() - 1)) : 0.0;
  return {{"mean", mean},
          {"std", sd},
          {"min", *std::min_element(v.begin(), v.end())},
          {"max", *std::max_element(v.begin(), v.end())},
          {"n", v.size()}};
}

// diagnostics.csv as step -> column -> per-layer values.
using Diag = std::map<int64_t, std::map<std::string, std::vector<double>>>;
Diag read_diagnostics(const std::string& path) {
  Diag d;
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return d;
  const char* cols[] = {"grad_norm", "residual_rms", "weight_norm", "update_ratio"};
  while (std::getline(in, line)) {
    std::istringstream row(line);
    std::string f[6];
    for (std::string& x : f) std::getline(row, x, ',');
    try {
      const int64_t step = std::stoll(f[0]);
      const size_t layer = size_t(std::stoll(f[1]));
      for (int c = 0; c < 4; ++c) {
        std::vector<double>& v = d[step][cols[c]];
        if (v.size() <= layer) v.resize(layer + 1, NAN);
        v[layer] = std::stod(f[2 + c]);
      }
    } catch (const std::exception&) {
      // a torn last line of an interrupted run: skip it
    }
  }
  return d;
}

// Elementwise mean of equally long vectors (skips the ones of another length).
std::vector<double> mean_of(const std::vector<std::vector<double>>& vs) {
  if (vs.empty()) return {};
  std::vector<double> m(vs[0].size(), 0.0);
  int n = 0;
  for (const auto& v : vs) {
    if (v.size() != m.size()) continue;
    for (size_t i = 0; i < m.size(); ++i) m[i] += v[i];
    ++n;
  }
  for (double& x : m) x /= std::max(n, 1);
  return m;
}

std::string num(double x, int prec = 4) {
  if (!std::isfinite(x)) return "–";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", prec, x);
  return buf;
}

std::string pm(const json& s, int prec = 4) {
  if (s.is_null()) return "–";
  if (s["n"].get<int>() < 2) return num(s["mean"].get<double>(), prec) + " (1 seed)";
  return num(s["mean"].get<double>(), prec) + " ± " + num(s["std"].get<double>(), prec);
}

std::string mib(double bytes) { return num(bytes / (1024.0 * 1024.0), 1) + " MiB"; }

std::string ratio_str(const std::vector<double>& v) {
  if (v.size() < 2 || !(v.front() > 0)) return "–";
  return num(v.back() / v.front(), 2);
}

}  // namespace

std::string write_ablation_report(const AblationSpec& spec, const std::vector<AblationRun>& runs,
                                  const std::string& out, bool draw_plots) {
  json summary{{"name", spec.name},  {"description", spec.description}, {"spec", spec.source},
               {"base", spec.base},  {"metric", spec.metric},           {"baseline", spec.baseline},
               {"seeds", spec.seeds}};
  json variants = json::array();
  for (const AblationVariant& v : spec.variants) {
    json jv{
        {"name", v.name}, {"description", v.description}, {"overrides", override_strings(spec, v)}};
    std::vector<double> finals, bests, rates, rss, clip_frac;
    std::vector<std::vector<double>> g_init, g_warm, r_init, r_final, u_warm;
    int64_t n_div = 0, n_total = 0, n_done = 0, warmup = 0, diag_warm = -1, diag_final = -1;
    json jruns = json::array();
    for (const AblationRun& r : runs) {
      if (r.variant != v.name) continue;
      ++n_total;
      warmup = r.config.optim.warmup_iters;
      const RunState st = run_state(r);
      json jr{{"seed", r.seed},
              {"dir", fs::relative(r.dir, out).string()},
              {"status", run_state_name(st)}};
      if (st == RunState::Finished || st == RunState::Diverged) {
        std::ifstream in(r.dir + "/result.json");
        json res = json::parse(in, nullptr, false);
        if (res.is_discarded()) res = json::object();
        jr["result"] = res;
        if (res.contains("num_parameters")) jv["num_parameters"] = res["num_parameters"];
        if (res.contains("kv_cache_bytes_per_token"))
          jv["kv_cache_bytes_per_token"] = res["kv_cache_bytes_per_token"];
        if (res.contains("peak_rss_bytes")) rss.push_back(res["peak_rss_bytes"].get<double>());
        if (st == RunState::Diverged) {
          ++n_div;
        } else {
          ++n_done;
          if (res["final_val_loss"].is_number())
            finals.push_back(res["final_val_loss"].get<double>());
          if (res["best_val_loss"].is_number()) bests.push_back(res["best_val_loss"].get<double>());
          rates.push_back(res.value("tokens_per_s", 0.0));
          const double steps = res.value("steps", 1.0);
          clip_frac.push_back(res.value("clipped_steps", 0.0) / std::max(steps, 1.0));
          const Diag d = read_diagnostics(r.dir + "/diagnostics.csv");
          if (!d.empty()) {
            const auto warm = d.lower_bound(std::max<int64_t>(warmup, 1));
            const auto& w = warm == d.end() ? *d.rbegin() : *warm;
            diag_warm = w.first;
            diag_final = d.rbegin()->first;
            if (d.count(0)) {
              g_init.push_back(d.at(0).at("grad_norm"));
              r_init.push_back(d.at(0).at("residual_rms"));
            }
            g_warm.push_back(w.second.at("grad_norm"));
            u_warm.push_back(w.second.at("update_ratio"));
            r_final.push_back(d.rbegin()->second.at("residual_rms"));
          }
        }
      }
      jruns.push_back(jr);
    }
    jv["runs"] = jruns;
    jv["final_val_loss"] = stats(finals);
    jv["best_val_loss"] = stats(bests);
    jv["tokens_per_s"] = median(rates);
    jv["peak_rss_bytes"] = rss.empty() ? 0.0 : *std::max_element(rss.begin(), rss.end());
    jv["clipped_fraction"] = clip_frac.empty() ? json() : stats(clip_frac)["mean"];
    jv["diverged"] = n_div;
    jv["finished"] = n_done;
    jv["total"] = n_total;
    jv["warmup_iters"] = warmup;
    jv["diagnostics"] = {{"step_after_warmup", diag_warm},
                         {"step_final", diag_final},
                         {"grad_norm_init", mean_of(g_init)},
                         {"grad_norm_after_warmup", mean_of(g_warm)},
                         {"residual_rms_init", mean_of(r_init)},
                         {"residual_rms_final", mean_of(r_final)},
                         {"update_ratio_after_warmup", mean_of(u_warm)}};
    variants.push_back(jv);
  }
  summary["variants"] = variants;

  // Comparison with the baseline on the spec's metric: difference of means, its standard error,
  // and a plain verdict (|diff| < 2 standard errors: within seed noise).
  const json* base = nullptr;
  for (const json& jv : variants)
    if (jv["name"] == spec.baseline) base = &jv;
  json comparisons = json::array();
  for (const json& jv : variants) {
    if (!base || &jv == base) continue;
    const json& a = jv[spec.metric];
    const json& b = (*base)[spec.metric];
    json c{{"variant", jv["name"]}, {"baseline", spec.baseline}};
    if (a.is_null() || b.is_null()) {
      c["verdict"] = "no finished runs to compare";
    } else {
      const double diff = a["mean"].get<double>() - b["mean"].get<double>();
      const int na = a["n"], nb = b["n"];
      const double se = std::sqrt(std::pow(a["std"].get<double>(), 2) / na +
                                  std::pow(b["std"].get<double>(), 2) / nb);
      c["diff"] = diff;
      c["stderr"] = se;
      std::string verdict;
      if (na < 2 || nb < 2)
        verdict = "one seed: no error bar";
      else if (std::fabs(diff) < 2 * se)
        verdict = "within noise";
      else
        verdict = diff < 0 ? "better" : "worse";
      // A mean over seeds hides a bimodal outcome (some seeds train, some get stuck): say so when
      // the spread across seeds dwarfs the baseline's.
      const double range = a["max"].get<double>() - a["min"].get<double>();
      const double base_range = b["max"].get<double>() - b["min"].get<double>();
      if (na >= 2 && range > std::max(0.1, 5 * base_range)) {
        verdict += "; unstable across seeds: " + num(a["min"].get<double>()) + " to " +
                   num(a["max"].get<double>());
        c["unstable"] = true;
      }
      c["verdict"] = verdict;
    }
    comparisons.push_back(c);
  }
  summary["comparisons"] = comparisons;
  write_file_atomic(out + "/summary.json", summary.dump(2) + "\n", "ablate");

  std::string plot_cmd;
  const bool plotted = draw_plots && run_plot_tool("plot_ablation.py", {out}, &plot_cmd);
  if (!draw_plots) plot_cmd = "/usr/bin/python3 tools/plot_ablation.py " + out;

  const std::string metric_name =
      spec.metric == "best_val_loss" ? "best val loss" : "final val loss";
  std::ostringstream md;
  md << "# Ablation `" << spec.name << "`\n\n";
  if (!spec.description.empty()) md << spec.description << "\n\n";
  md << "Spec `" << spec.source << "` on base `" << spec.base << "`; " << spec.variants.size()
     << " variants x " << spec.seeds.size() << " seeds. Losses are nats per token on the whole "
     << "validation split; mean ± sample std over seeds (lower is better). Metric: " << metric_name
     << "; baseline: `" << spec.baseline << "`.\n\n";
  md << "## Results\n\n| variant | params | final val | best val | tokens/s | peak RSS | KV cache "
        "B/token "
        "| clipped steps | diverged |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const json& jv : variants) {
    md << "| `" << jv["name"].get<std::string>() << "` | "
       << (jv.contains("num_parameters") ? std::to_string(jv["num_parameters"].get<int64_t>())
                                         : "–")
       << " | " << pm(jv["final_val_loss"]) << " | " << pm(jv["best_val_loss"]) << " | "
       << num(jv["tokens_per_s"].get<double>(), 0) << " | "
       << mib(jv["peak_rss_bytes"].get<double>()) << " | "
       << (jv.contains("kv_cache_bytes_per_token")
               ? std::to_string(jv["kv_cache_bytes_per_token"].get<int64_t>())
               : "–")
       << " | "
       << (jv["clipped_fraction"].is_null()
               ? "–"
               : num(100 * jv["clipped_fraction"].get<double>(), 0) + "%")
       << " | " << jv["diverged"].get<int64_t>() << "/" << jv["total"].get<int64_t>() << " |\n";
  }
  md << "\nTokens/s is the median training-step rate of each run (runs may have shared the cores: "
        "compare throughput with `lmlab bench`, not here). Peak RSS is the largest of the "
        "runs.\n\n";
  md << "## Against the baseline (" << metric_name
     << ")\n\n| variant | difference | std. error | reading |\n"
        "|---|---:|---:|---|\n";
  for (const json& c : comparisons)
    md << "| `" << c["variant"].get<std::string>() << "` | "
       << (c.contains("diff") ? num(c["diff"].get<double>()) : "–") << " | "
       << (c.contains("stderr") ? num(c["stderr"].get<double>()) : "–") << " | "
       << c["verdict"].get<std::string>() << " |\n";
  md << "\n\"within noise\": the difference of means is under two standard errors of that "
        "difference (seed-to-seed spread); \"better\"/\"worse\" otherwise. \"unstable across "
        "seeds\": the variant's seeds spread over more than 0.1 nats and 5x the baseline's spread "
        "(look at the runs: some seeds may have failed to train).\n\n";
  md << "## Diagnostics (Xiong et al. 2020)\n\nRatios of the last block to the first: gradient "
        "norm "
        "of the block's parameters at initialisation and right after warmup, residual-stream RMS "
        "at the end; largest per-block update/weight ratio after warmup. Post-Norm predicts a "
        "gradient ratio well above 1 at init (gradients grow toward the output); Pre-Norm a ratio "
        "near or below 1 and a residual stream that grows with depth.\n\n"
        "| variant | grad last/first, init | grad last/first, after warmup | residual RMS "
        "last/first, end | max update/weight |\n"
        "|---|---:|---:|---:|---:|\n";
  for (const json& jv : variants) {
    const json& d = jv["diagnostics"];
    const auto u = d["update_ratio_after_warmup"].get<std::vector<double>>();
    md << "| `" << jv["name"].get<std::string>() << "` | "
       << ratio_str(d["grad_norm_init"].get<std::vector<double>>()) << " | "
       << ratio_str(d["grad_norm_after_warmup"].get<std::vector<double>>()) << " | "
       << ratio_str(d["residual_rms_final"].get<std::vector<double>>()) << " | "
       << (u.empty() ? "–" : num(*std::max_element(u.begin(), u.end()), 5)) << " |\n";
  }
  md << "\n## Plots\n\n";
  if (plotted)
    md << "![loss curves](loss_curves.png)\n\n![per-layer diagnostics](diagnostics.png)\n\n";
  else
    md << "The plots were not drawn (python3-matplotlib is missing: `apt-get install "
          "python3-matplotlib`). Draw them with:\n\n    "
       << plot_cmd << "\n\n";
  md << "## Runs\n\n| variant | seed | status | final val | steps | directory "
        "|\n|---|---:|---|---:|---:|---|\n";
  for (const json& jv : variants)
    for (const json& jr : jv["runs"]) {
      const json res = jr.value("result", json::object());
      std::string status = jr["status"];
      if (status == "diverged")
        status += " at step " + std::to_string(res.value("diverged_step", int64_t(0))) +
                  " (last finite loss " +
                  (res["last_finite_loss"].is_number() ? num(res["last_finite_loss"].get<double>())
                                                       : "–") +
                  ")";
      md << "| `" << jv["name"].get<std::string>() << "` | " << jr["seed"].get<int64_t>() << " | "
         << status << " | "
         << (res.contains("final_val_loss") && res["final_val_loss"].is_number()
                 ? num(res["final_val_loss"].get<double>())
                 : "–")
         << " | " << res.value("steps", int64_t(0)) << " | `" << jr["dir"].get<std::string>()
         << "` |\n";
    }
  md << "\nReproduce: `build/lmlab ablate " << spec.source << " --out " << out
     << "` (finished runs are "
        "skipped; each run's exact command is the first line of its train.log).\n";
  const std::string path = out + "/report.md";
  write_file_atomic(path, md.str(), "ablate");
  return path;
}

}  // namespace lmlab::train
