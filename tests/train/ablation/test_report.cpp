// The ablation report's phases on hand-made runs (train/ablation/summary.h, report.h): summarise
// (statistics over seeds, diverged and unfinished runs, diagnostics), compare (every verdict),
// render (summary.json's fields, report.md's rows).
#include <gtest/gtest.h>

#include <cmath>

#include "train/ablation/report.h"
#include "train/ablation/summary.h"

namespace lmlab::train {
namespace {

using nlohmann::json;

RunRecord finished(int64_t seed, double final_loss, double tokens_per_s, double rss, int clipped) {
  RunRecord r;
  r.seed = seed;
  r.dir = "v/seed" + std::to_string(seed);
  r.state = RunState::Finished;
  r.result = json{{"final_val_loss", final_loss},    {"best_val_loss", final_loss - 0.1},
                  {"final_val_bpb", final_loss / 2}, {"tokens_per_s", tokens_per_s},
                  {"peak_rss_bytes", rss},           {"steps", 100},
                  {"clipped_steps", clipped},        {"num_parameters", 1234},
                  {"kv_cache_bytes_per_token", 512}};
  return r;
}

RunRecord diverged(int64_t seed, double rss) {
  RunRecord r;
  r.seed = seed;
  r.dir = "v/seed" + std::to_string(seed);
  r.state = RunState::Diverged;
  r.result = json{{"diverged", true},
                  {"diverged_step", 7},
                  {"last_finite_loss", 3.1},
                  {"peak_rss_bytes", rss},
                  {"steps", 7}};
  return r;
}

// Diagnostics at steps 0, 4 and 8 of two blocks: block values scaled by `s`.
Diagnostics diagnostics(double s) {
  Diagnostics d;
  for (int64_t step : {0, 4, 8}) {
    const double k = s * double(step + 1);
    d[step] = {{"grad_norm", {k, 2 * k}},
               {"residual_rms", {1.0, k}},
               {"weight_norm", {1.0, 1.0}},
               {"update_ratio", {0.01 * k, 0.02 * k}}};
  }
  return d;
}

TEST(AblationReport, SeedStatsAreMeanSampleStdMinMax) {
  EXPECT_FALSE(seed_stats({}));
  const SeedStats one = *seed_stats({3.0});
  EXPECT_EQ(one.mean, 3.0);
  EXPECT_EQ(one.std, 0.0);
  EXPECT_EQ(one.n, 1u);
  const SeedStats s = *seed_stats({2.0, 2.2, 2.4});
  EXPECT_DOUBLE_EQ(s.mean, 2.2);
  EXPECT_NEAR(s.std, 0.2, 1e-12);  // sample std: n - 1 in the denominator
  EXPECT_EQ(s.min, 2.0);
  EXPECT_EQ(s.max, 2.4);
}

TEST(AblationReport, SummariseCountsFinishedDivergedAndUnfinishedRuns) {
  RunRecord pending;
  pending.seed = 4;
  pending.state = RunState::Partial;
  AblationVariant v{"pre", {}, "pre-norm", 3};
  const VariantSummary s = summarise(
      v, {"model.norm_placement=pre"},
      {finished(1, 2.0, 100, 5e6, 10), finished(2, 2.2, 300, 7e6, 30), diverged(3, 9e6), pending});
  EXPECT_EQ(s.name, "pre");
  EXPECT_EQ(s.description, "pre-norm");
  EXPECT_EQ(s.runs.size(), 4u);
  EXPECT_EQ(s.finished, 2);
  EXPECT_EQ(s.diverged, 1);
  EXPECT_EQ(s.total, 4);
  ASSERT_TRUE(s.final_val_loss);
  EXPECT_DOUBLE_EQ(s.final_val_loss->mean, 2.1);
  EXPECT_NEAR(s.final_val_loss->std, std::sqrt(0.02), 1e-12);
  EXPECT_EQ(s.final_val_loss->n, 2u);  // the diverged run has no loss
  EXPECT_DOUBLE_EQ(s.best_val_loss->mean, 2.0);
  EXPECT_EQ(s.tokens_per_s, 200.0);  // the median of the finished runs
  EXPECT_EQ(s.peak_rss_bytes, 9e6);  // the diverged run's memory counts
  EXPECT_DOUBLE_EQ(*s.clipped_fraction, 0.2);
  EXPECT_EQ(*s.num_parameters, 1234);
  EXPECT_EQ(s.diagnostics.step_after_warmup, -1);  // no diagnostics.csv

  const VariantSummary none = summarise(v, {}, {diverged(1, 1e6), pending});
  EXPECT_FALSE(none.final_val_loss);
  EXPECT_FALSE(none.clipped_fraction);
  EXPECT_EQ(none.tokens_per_s, 0.0);
  EXPECT_FALSE(none.num_parameters);
  EXPECT_FALSE(summarise(v, {}, {}).kv_cache_bytes_per_token);
}

TEST(AblationReport, SummariseAveragesTheDiagnosticsAfterWarmup) {
  RunRecord a = finished(1, 2.0, 100, 5e6, 0), b = finished(2, 2.0, 100, 5e6, 0);
  a.diagnostics = diagnostics(1.0);
  b.diagnostics = diagnostics(3.0);
  RunRecord deeper = finished(3, 2.0, 100, 5e6, 0);  // three blocks: left out of the means
  deeper.diagnostics = diagnostics(1.0);
  a.warmup_iters = b.warmup_iters = deeper.warmup_iters = 5;
  for (auto& [step, cols] : deeper.diagnostics)
    for (auto& [name, values] : cols) values.push_back(100.0);
  const VariantSummary s = summarise({"v", {}, "", 1}, {}, {a, b, deeper});
  const VariantDiagnostics& d = s.diagnostics;
  EXPECT_EQ(d.step_after_warmup, 8);  // the first evaluation at or after warmup
  EXPECT_EQ(d.step_final, 8);
  EXPECT_EQ(d.grad_norm_init, (std::vector<double>{2.0, 4.0}));  // mean of (1, 2) and (3, 6)
  EXPECT_EQ(d.grad_norm_after_warmup, (std::vector<double>{18.0, 36.0}));
  EXPECT_EQ(d.residual_rms_final, (std::vector<double>{1.0, 18.0}));
  EXPECT_EQ(s.warmup_iters, 5);

  a.warmup_iters = 0;  // no warmup: the first evaluation after step 0
  EXPECT_EQ(summarise({"v", {}, "", 1}, {}, {a}).diagnostics.step_after_warmup, 4);
}

VariantSummary with_loss(const std::string& name, std::optional<SeedStats> s) {
  VariantSummary v;
  v.name = name;
  v.final_val_loss = s;
  if (s) v.best_val_loss = SeedStats{s->mean - 1, s->std, s->min - 1, s->max - 1, s->n};
  return v;
}

TEST(AblationReport, CompareGivesEveryVerdict) {
  const std::vector<VariantSummary> vs{with_loss("base", SeedStats{2.0, 0.01, 1.99, 2.01, 3}),
                                       with_loss("worse", SeedStats{2.5, 0.01, 2.49, 2.51, 3}),
                                       with_loss("better", SeedStats{1.5, 0.01, 1.49, 1.51, 3}),
                                       with_loss("noise", SeedStats{2.005, 0.01, 1.995, 2.015, 3}),
                                       with_loss("single", SeedStats{1.0, 0.0, 1.0, 1.0, 1}),
                                       with_loss("none", std::nullopt),
                                       with_loss("unstable", SeedStats{2.0, 0.3, 1.7, 2.4, 3})};
  const std::vector<Comparison> c = compare(vs, "base", "final_val_loss");
  ASSERT_EQ(c.size(), 6u);  // the baseline is not compared with itself
  EXPECT_EQ(c[0].variant, "worse");
  EXPECT_EQ(c[0].baseline, "base");
  EXPECT_EQ(c[0].verdict, "worse");
  EXPECT_DOUBLE_EQ(*c[0].diff, 0.5);
  EXPECT_DOUBLE_EQ(*c[0].std_error, std::sqrt(2 * 0.0001 / 3));
  EXPECT_EQ(c[1].verdict, "better");
  EXPECT_EQ(c[2].verdict, "within noise");
  EXPECT_EQ(c[3].verdict, "one seed: no error bar");
  EXPECT_EQ(c[4].verdict, "no finished runs to compare");
  EXPECT_FALSE(c[4].diff);
  EXPECT_EQ(c[5].verdict, "within noise; unstable across seeds: 1.7000 to 2.4000");
  EXPECT_TRUE(c[5].unstable);
  EXPECT_FALSE(c[0].unstable);

  EXPECT_DOUBLE_EQ(*compare(vs, "base", "best_val_loss")[0].diff, 0.5);
  EXPECT_DOUBLE_EQ(*compare(vs, "single", "final_val_loss")[0].diff, 1.0);
  EXPECT_TRUE(compare(vs, "no-such-variant", "final_val_loss").empty());
}

TEST(AblationReport, RenderedSummaryJsonAndMarkdown) {
  AblationSpec spec;
  spec.name = "mini";
  spec.source = "mini.yaml";
  spec.base = "tiny.yaml";
  spec.variants = {{"pre", {}, "", 1}, {"post", {}, "", 2}};
  spec.seeds = {1, 2};
  spec.baseline = "pre";
  const std::vector<VariantSummary> vs{
      summarise(spec.variants[0], {"a.b=1"},
                {finished(1, 2.0, 100, 5e6, 10), finished(2, 2.2, 300, 7e6, 30)}),
      summarise(spec.variants[1], {}, {diverged(1, 2e6), finished(2, 2.5, 100, 5e6, 0)})};
  const std::vector<Comparison> cs = compare(vs, spec.baseline, spec.metric);

  const json j = summary_json(spec, vs, cs);
  EXPECT_EQ(j["variants"][0]["overrides"], json({"a.b=1"}));
  EXPECT_EQ(j["variants"][0]["final_val_loss"]["n"], 2);
  EXPECT_DOUBLE_EQ(j["variants"][0]["final_val_bpb"]["mean"].get<double>(), 1.05);
  EXPECT_EQ(j["variants"][1]["runs"][0]["status"], "diverged");
  EXPECT_EQ(j["variants"][1]["runs"][0]["result"]["diverged_step"], 7);
  EXPECT_EQ(j["variants"][1]["diagnostics"]["step_final"], -1);
  EXPECT_EQ(j["comparisons"][0]["verdict"], "one seed: no error bar");
  EXPECT_TRUE(j["comparisons"][0].contains("stderr"));
  EXPECT_FALSE(j["comparisons"][0].contains("unstable"));

  const std::string md = report_markdown(spec, vs, cs, "out", {false, "python3 plot.py out"});
  for (const char* part :
       {"# Ablation `mini`\n\nSpec `mini.yaml` on base `tiny.yaml`; 2 variants x 2 seeds.",
        "| `pre` | 1234 | 2.1000 ± 0.1414 | 2.0000 ± 0.1414 | 1.0500 ± 0.0707 | 200 | 6.7 MiB | "
        "512 | 20% | 0/2 |",
        "| `post` | 1234 | 2.5000 (1 seed) | 2.4000 (1 seed) | 1.2500 (1 seed) | 100 | 4.8 MiB | "
        "512 | 0% | 1/2 |",
        "| `post` | 0.4000 | 0.1000 | one seed: no error bar |", "| `pre` | – | – | – | – |",
        "Draw them with:\n\n    python3 plot.py out\n\n",
        "| `post` | 1 | diverged at step 7 (last finite loss 3.1000) | – | 7 | `v/seed1` |",
        "Reproduce: `build/lmlab ablate mini.yaml --out out`"})
    EXPECT_NE(md.find(part), std::string::npos) << part << "\n" << md;
  EXPECT_NE(report_markdown(spec, vs, cs, "out", {true, ""}).find("![loss curves]"),
            std::string::npos);
}

}  // namespace
}  // namespace lmlab::train
