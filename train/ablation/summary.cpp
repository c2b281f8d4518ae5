// The statistics of an ablation report (ablation/summary.h): per-variant statistics over seeds
// and the verdicts against the baseline.
#include "train/ablation/summary.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "train/common/stats.h"

namespace lmlab::train {

using nlohmann::json;

std::string format_fixed(double x, int prec) {
  if (!std::isfinite(x)) return "–";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", prec, x);
  return buf;
}

std::optional<SeedStats> seed_stats(const std::vector<double>& v) {
  if (v.empty()) return std::nullopt;
  SeedStats s;
  for (double x : v) s.mean += x;
  s.mean /= double(v.size());
  double var = 0;
  for (double x : v) var += (x - s.mean) * (x - s.mean);
  s.std = v.size() > 1 ? std::sqrt(var / double(v.size() - 1)) : 0.0;
  s.min = *std::min_element(v.begin(), v.end());
  s.max = *std::max_element(v.begin(), v.end());
  s.n = v.size();
  return s;
}

namespace {

// Elementwise mean of equally long vectors (skips the ones of another length than the first).
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

// The per-block vectors of the finished runs, before their means.
struct DiagnosticsSamples {
  int64_t step_after_warmup = -1, step_final = -1;
  std::vector<std::vector<double>> g_init, g_warm, r_init, r_final, u_warm;

  void add(const Diagnostics& d, int64_t warmup) {
    if (d.empty()) return;
    const auto warm = d.lower_bound(std::max<int64_t>(warmup, 1));
    const auto& w = warm == d.end() ? *d.rbegin() : *warm;
    step_after_warmup = w.first;
    step_final = d.rbegin()->first;
    if (d.count(0)) {
      g_init.push_back(d.at(0).at("grad_norm"));
      r_init.push_back(d.at(0).at("residual_rms"));
    }
    g_warm.push_back(w.second.at("grad_norm"));
    u_warm.push_back(w.second.at("update_ratio"));
    r_final.push_back(d.rbegin()->second.at("residual_rms"));
  }
  VariantDiagnostics means() const {
    return {step_after_warmup, step_final,       mean_of(g_init), mean_of(g_warm),
            mean_of(r_init),   mean_of(r_final), mean_of(u_warm)};
  }
};

// The metrics of the finished runs, before their statistics.
struct Samples {
  std::vector<double> finals, bests, bpbs, rates, rss, clip_frac;
  DiagnosticsSamples diagnostics;

  void add_finished(const json& res, const RunRecord& r) {
    if (res.contains("final_val_loss") && res["final_val_loss"].is_number())
      finals.push_back(res["final_val_loss"].get<double>());
    if (res.contains("best_val_loss") && res["best_val_loss"].is_number())
      bests.push_back(res["best_val_loss"].get<double>());
    if (res.contains("final_val_bpb") && res["final_val_bpb"].is_number())
      bpbs.push_back(res["final_val_bpb"].get<double>());
    rates.push_back(res.value("tokens_per_s", 0.0));
    const double steps = res.value("steps", 1.0);
    clip_frac.push_back(res.value("clipped_steps", 0.0) / std::max(steps, 1.0));
    diagnostics.add(r.diagnostics, r.warmup_iters);
  }
};

}  // namespace

VariantSummary summarise(const AblationVariant& v, std::vector<std::string> overrides,
                         std::vector<RunRecord> runs) {
  VariantSummary s;
  s.name = v.name;
  s.description = v.description;
  s.overrides = std::move(overrides);
  Samples samples;
  for (const RunRecord& r : runs) {
    ++s.total;
    s.warmup_iters = r.warmup_iters;
    if (r.state != RunState::Finished && r.state != RunState::Diverged) continue;
    const json res = r.result.value_or(json::object());
    if (res.contains("num_parameters")) s.num_parameters = res["num_parameters"];
    if (res.contains("kv_cache_bytes_per_token"))
      s.kv_cache_bytes_per_token = res["kv_cache_bytes_per_token"];
    if (res.contains("peak_rss_bytes")) samples.rss.push_back(res["peak_rss_bytes"].get<double>());
    if (r.state == RunState::Diverged) {
      ++s.diverged;
    } else {
      ++s.finished;
      samples.add_finished(res, r);
    }
  }
  s.runs = std::move(runs);
  s.final_val_loss = seed_stats(samples.finals);
  s.best_val_loss = seed_stats(samples.bests);
  s.final_val_bpb = seed_stats(samples.bpbs);
  s.tokens_per_s = median(samples.rates);
  s.peak_rss_bytes =
      samples.rss.empty() ? 0.0 : *std::max_element(samples.rss.begin(), samples.rss.end());
  if (const auto clipped = seed_stats(samples.clip_frac)) s.clipped_fraction = clipped->mean;
  s.diagnostics = samples.diagnostics.means();
  return s;
}

namespace {

// The verdict on a - b (a: the variant, b: the baseline; both with finished runs).
Comparison compare_stats(const SeedStats& a, const SeedStats& b, Comparison c) {
  const double diff = a.mean - b.mean;
  const int na = int(a.n), nb = int(b.n);
  const double se = std::sqrt(std::pow(a.std, 2) / na + std::pow(b.std, 2) / nb);
  c.diff = diff;
  c.std_error = se;
  if (na < 2 || nb < 2)
    c.verdict = "one seed: no error bar";
  else if (std::fabs(diff) < 2 * se)
    c.verdict = "within noise";
  else
    c.verdict = diff < 0 ? "better" : "worse";
  // A mean over seeds hides a bimodal outcome (some seeds train, some get stuck): say so when the
  // spread across seeds dwarfs the baseline's.
  if (na >= 2 && a.max - a.min > std::max(0.1, 5 * (b.max - b.min))) {
    c.verdict += "; unstable across seeds: " + format_fixed(a.min) + " to " + format_fixed(a.max);
    c.unstable = true;
  }
  return c;
}

const std::optional<SeedStats>& metric_of(const VariantSummary& v, const std::string& metric) {
  return metric == "best_val_loss" ? v.best_val_loss : v.final_val_loss;
}

}  // namespace

std::vector<Comparison> compare(const std::vector<VariantSummary>& variants,
                                const std::string& baseline, const std::string& metric) {
  const VariantSummary* base = nullptr;
  for (const VariantSummary& v : variants)
    if (v.name == baseline) base = &v;
  std::vector<Comparison> out;
  if (!base) return out;
  for (const VariantSummary& v : variants) {
    if (&v == base) continue;
    Comparison c;
    c.variant = v.name;
    c.baseline = baseline;
    const std::optional<SeedStats>&a = metric_of(v, metric), &b = metric_of(*base, metric);
    if (!a || !b)
      c.verdict = "no finished runs to compare";
    else
      c = compare_stats(*a, *b, c);
    out.push_back(c);
  }
  return out;
}

}  // namespace lmlab::train
