// The ablation report (ablation/report.h): read the runs' files, summarise and compare
// (ablation/summary.h), render summary.json and report.md, write them and draw the plots.
#include "train/ablation/report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/atomic_write.h"
#include "train/io/plot.h"

namespace lmlab::train {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// ---- reading the runs

// diagnostics.csv (step,layer,grad_norm,residual_rms,weight_norm,update_ratio rows).
Diagnostics read_diagnostics(const std::string& path) {
  Diagnostics d;
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

// The runs of `variant` as their directories hold them: state, result.json (an unreadable one
// reads as {}), diagnostics.csv of the finished ones.
std::vector<RunRecord> read_runs(const std::string& variant, const std::vector<AblationRun>& runs,
                                 const std::string& out) {
  std::vector<RunRecord> records;
  for (const AblationRun& r : runs) {
    if (r.variant != variant) continue;
    RunRecord rec;
    rec.seed = r.seed;
    rec.dir = fs::relative(r.dir, out).string();
    rec.state = run_state(r);
    rec.warmup_iters = r.config.optim.warmup_iters;
    if (rec.state == RunState::Finished || rec.state == RunState::Diverged) {
      std::ifstream in(r.dir + "/result.json");
      json res = json::parse(in, nullptr, false);
      rec.result = res.is_discarded() ? json::object() : res;
    }
    if (rec.state == RunState::Finished)
      rec.diagnostics = read_diagnostics(r.dir + "/diagnostics.csv");
    records.push_back(std::move(rec));
  }
  return records;
}

// ---- summary.json

json stats_json(const std::optional<SeedStats>& s) {
  if (!s) return json();
  return {{"mean", s->mean}, {"std", s->std}, {"min", s->min}, {"max", s->max}, {"n", s->n}};
}

json run_json(const RunRecord& r) {
  json jr{{"seed", r.seed}, {"dir", r.dir}, {"status", run_state_name(r.state)}};
  if (r.result) jr["result"] = *r.result;
  return jr;
}

json variant_json(const VariantSummary& v) {
  json jv{{"name", v.name}, {"description", v.description}, {"overrides", v.overrides}};
  if (v.num_parameters) jv["num_parameters"] = *v.num_parameters;
  if (v.kv_cache_bytes_per_token) jv["kv_cache_bytes_per_token"] = *v.kv_cache_bytes_per_token;
  jv["runs"] = json::array();
  for (const RunRecord& r : v.runs) jv["runs"].push_back(run_json(r));
  jv["final_val_loss"] = stats_json(v.final_val_loss);
  jv["best_val_loss"] = stats_json(v.best_val_loss);
  jv["final_val_bpb"] = stats_json(v.final_val_bpb);
  jv["tokens_per_s"] = v.tokens_per_s;
  jv["peak_rss_bytes"] = v.peak_rss_bytes;
  jv["clipped_fraction"] = v.clipped_fraction ? json(*v.clipped_fraction) : json();
  jv["diverged"] = v.diverged;
  jv["finished"] = v.finished;
  jv["total"] = v.total;
  jv["warmup_iters"] = v.warmup_iters;
  const VariantDiagnostics& d = v.diagnostics;
  jv["diagnostics"] = {{"step_after_warmup", d.step_after_warmup},
                       {"step_final", d.step_final},
                       {"grad_norm_init", d.grad_norm_init},
                       {"grad_norm_after_warmup", d.grad_norm_after_warmup},
                       {"residual_rms_init", d.residual_rms_init},
                       {"residual_rms_final", d.residual_rms_final},
                       {"update_ratio_after_warmup", d.update_ratio_after_warmup}};
  return jv;
}

json comparison_json(const Comparison& c) {
  json jc{{"variant", c.variant}, {"baseline", c.baseline}, {"verdict", c.verdict}};
  if (c.diff) jc["diff"] = *c.diff;
  if (c.std_error) jc["stderr"] = *c.std_error;
  if (c.unstable) jc["unstable"] = true;
  return jc;
}

// ---- report.md

std::string pm(const std::optional<SeedStats>& s, int prec = 4) {
  if (!s) return "–";
  if (s->n < 2) return format_fixed(s->mean, prec) + " (1 seed)";
  return format_fixed(s->mean, prec) + " ± " + format_fixed(s->std, prec);
}

std::string mib(double bytes) { return format_fixed(bytes / (1024.0 * 1024.0), 1) + " MiB"; }

std::string ratio_str(const std::vector<double>& v) {
  if (v.size() < 2 || !(v.front() > 0)) return "–";
  return format_fixed(v.back() / v.front(), 2);
}

// An integer a result.json gave, "–" when none did.
std::string int_or_dash(const std::optional<json>& x) {
  return x ? std::to_string(x->get<int64_t>()) : "–";
}

std::string metric_name(const AblationSpec& spec) {
  return spec.metric == "best_val_loss" ? "best val loss" : "final val loss";
}

void md_intro(std::ostream& md, const AblationSpec& spec) {
  md << "# Ablation `" << spec.name << "`\n\n";
  if (!spec.description.empty()) md << spec.description << "\n\n";
  md << "Spec `" << spec.source << "` on base `" << spec.base << "`; " << spec.variants.size()
     << " variants x " << spec.seeds.size() << " seeds. Losses are nats per token on the whole "
     << "validation split (bits per byte: the same loss per byte of validation text, which "
        "compares "
     << "char-, byte- and BPE-level runs); mean ± sample std over seeds (lower is better). Metric: "
     << metric_name(spec) << "; baseline: `" << spec.baseline << "`.\n\n";
}

void md_results(std::ostream& md, const std::vector<VariantSummary>& variants) {
  md << "## Results\n\n| variant | params | final val | best val | final val bits/byte | tokens/s "
        "| "
        "peak RSS | KV cache B/token | clipped steps | diverged "
        "|\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const VariantSummary& v : variants) {
    md << "| `" << v.name << "` | " << int_or_dash(v.num_parameters) << " | "
       << pm(v.final_val_loss) << " | " << pm(v.best_val_loss) << " | " << pm(v.final_val_bpb)
       << " | " << format_fixed(v.tokens_per_s, 0) << " | " << mib(v.peak_rss_bytes) << " | "
       << int_or_dash(v.kv_cache_bytes_per_token) << " | "
       << (v.clipped_fraction ? format_fixed(100 * *v.clipped_fraction, 0) + "%" : "–") << " | "
       << v.diverged << "/" << v.total << " |\n";
  }
  md << "\nTokens/s is the median training-step rate of each run (runs may have shared the cores: "
        "compare throughput with `lmlab bench`, not here). Peak RSS is the largest of the "
        "runs.\n\n";
}

void md_comparisons(std::ostream& md, const AblationSpec& spec,
                    const std::vector<Comparison>& comparisons) {
  md << "## Against the baseline (" << metric_name(spec)
     << ")\n\n| variant | difference | std. error | reading |\n"
        "|---|---:|---:|---|\n";
  for (const Comparison& c : comparisons)
    md << "| `" << c.variant << "` | " << (c.diff ? format_fixed(*c.diff) : "–") << " | "
       << (c.std_error ? format_fixed(*c.std_error) : "–") << " | " << c.verdict << " |\n";
  md << "\n\"within noise\": the difference of means is under two standard errors of that "
        "difference (seed-to-seed spread); \"better\"/\"worse\" otherwise. \"unstable across "
        "seeds\": the variant's seeds spread over more than 0.1 nats and 5x the baseline's spread "
        "(look at the runs: some seeds may have failed to train).\n\n";
}

void md_diagnostics(std::ostream& md, const std::vector<VariantSummary>& variants) {
  md << "## Diagnostics (Xiong et al. 2020)\n\nRatios of the last block to the first: gradient "
        "norm of the block's parameters at initialisation and right after warmup, residual-stream "
        "RMS at the end; largest per-block update/weight ratio after warmup. Post-Norm predicts a "
        "gradient ratio well above 1 at init (gradients grow toward the output); Pre-Norm a ratio "
        "near or below 1 and a residual stream that grows with depth.\n\n"
        "| variant | grad last/first, init | grad last/first, after warmup | residual RMS "
        "last/first, end | max update/weight |\n"
        "|---|---:|---:|---:|---:|\n";
  for (const VariantSummary& v : variants) {
    const VariantDiagnostics& d = v.diagnostics;
    const std::vector<double>& u = d.update_ratio_after_warmup;
    md << "| `" << v.name << "` | " << ratio_str(d.grad_norm_init) << " | "
       << ratio_str(d.grad_norm_after_warmup) << " | " << ratio_str(d.residual_rms_final) << " | "
       << (u.empty() ? "–" : format_fixed(*std::max_element(u.begin(), u.end()), 5)) << " |\n";
  }
}

void md_plots(std::ostream& md, const ReportPlots& plots) {
  md << "\n## Plots\n\n";
  if (plots.drawn) {
    md << "![loss curves](loss_curves.png)\n\n![per-layer diagnostics](diagnostics.png)\n\n";
    for (const std::string& png : plots.sweeps)
      md << "![" << png.substr(0, png.size() - 4) << "](" << png << ")\n\n";
  } else
    md << "The plots were not drawn (python3-matplotlib is missing: `apt-get install "
          "python3-matplotlib`). Draw them with:\n\n    "
       << plots.command << "\n\n";
}

// One row of the runs table.
void md_run(std::ostream& md, const std::string& variant, const RunRecord& r) {
  const json res = r.result.value_or(json::object());
  std::string status = run_state_name(r.state);
  if (r.state == RunState::Diverged) {
    const bool finite = res.contains("last_finite_loss") && res["last_finite_loss"].is_number();
    status += " at step " + std::to_string(res.value("diverged_step", int64_t(0))) +
              " (last finite loss " +
              (finite ? format_fixed(res["last_finite_loss"].get<double>()) : "–") + ")";
  }
  const bool has_final = res.contains("final_val_loss") && res["final_val_loss"].is_number();
  md << "| `" << variant << "` | " << r.seed << " | " << status << " | "
     << (has_final ? format_fixed(res["final_val_loss"].get<double>()) : "–") << " | "
     << res.value("steps", int64_t(0)) << " | `" << r.dir << "` |\n";
}

void md_runs(std::ostream& md, const AblationSpec& spec,
             const std::vector<VariantSummary>& variants, const std::string& out) {
  md << "## Runs\n\n| variant | seed | status | final val | steps | directory "
        "|\n|---|---:|---|---:|---:|---|\n";
  for (const VariantSummary& v : variants)
    for (const RunRecord& r : v.runs) md_run(md, v.name, r);
  md << "\nReproduce: `build/lmlab ablate " << spec.source << " --out " << out
     << "` (finished runs are "
        "skipped; each run's exact command is the first line of its train.log).\n";
}

// The sweep figures plot_ablation.py drew into `out` (sweep_<axis>.png), sorted.
std::vector<std::string> sweep_figures(const std::string& out) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(out, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("sweep_", 0) == 0 && e.path().extension() == ".png") found.push_back(name);
  }
  std::sort(found.begin(), found.end());
  return found;
}

}  // namespace

json summary_json(const AblationSpec& spec, const std::vector<VariantSummary>& variants,
                  const std::vector<Comparison>& comparisons, const TuneResult* tune) {
  json summary{{"name", spec.name},  {"description", spec.description}, {"spec", spec.source},
               {"base", spec.base},  {"metric", spec.metric},           {"baseline", spec.baseline},
               {"seeds", spec.seeds}};
  summary["variants"] = json::array();
  for (const VariantSummary& v : variants) summary["variants"].push_back(variant_json(v));
  summary["comparisons"] = json::array();
  for (const Comparison& c : comparisons) summary["comparisons"].push_back(comparison_json(c));
  if (tune) summary["tune"] = tune_json(*tune);
  return summary;
}

std::string report_markdown(const AblationSpec& spec, const std::vector<VariantSummary>& variants,
                            const std::vector<Comparison>& comparisons, const std::string& out,
                            const ReportPlots& plots, const TuneResult* tune) {
  std::ostringstream md;
  md_intro(md, spec);
  md_results(md, variants);
  md_comparisons(md, spec, comparisons);
  if (tune) tune_markdown(md, *tune, plots.tune_figure);
  md_diagnostics(md, variants);
  md_plots(md, plots);
  md_runs(md, spec, variants, out);
  return md.str();
}

std::string write_ablation_report(const AblationSpec& spec, const std::vector<AblationRun>& runs,
                                  const std::string& out, bool draw_plots, const TuneResult* tune) {
  std::vector<VariantSummary> variants;
  for (const AblationVariant& v : spec.variants)
    variants.push_back(summarise(v, override_strings(spec, v), read_runs(v.name, runs, out)));
  const std::vector<Comparison> comparisons = compare(variants, spec.baseline, spec.metric);
  data::write_file_atomic(out + "/summary.json",
                          summary_json(spec, variants, comparisons, tune).dump(2) + "\n", "ablate");
  // The plots read summary.json: drawn after it is written, before report.md embeds them.
  ReportPlots plots;
  plots.drawn = draw_plots && run_plot_tool("plot_ablation.py", {out}, &plots.command);
  if (plots.drawn) plots.sweeps = sweep_figures(out);
  plots.tune_figure = plots.drawn && tune && std::filesystem::exists(out + "/tune.png");
  if (!draw_plots) plots.command = "/usr/bin/python3 tools/plot_ablation.py " + out;
  const std::string path = out + "/report.md";
  data::write_file_atomic(path, report_markdown(spec, variants, comparisons, out, plots, tune),
                          "ablate");
  return path;
}

}  // namespace lmlab::train
