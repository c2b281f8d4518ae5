// Per-variant tuning (spec `tune:`): parsing and its errors, the sweep's runs, the picks from the
// runs' results (lowest metric, diverged and unfinished values skipped, no pick an error), and
// `lmlab ablate` end to end: the sweep, then the seeds at each variant's own pick, the report's
// Tuning section and tune.png, a re-run that runs nothing, --dry-run, --report-only, Slurm refused.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/test_util.h"
#include "tests/train/cli_util.h"
#include "train/ablation/tune.h"

namespace lmlab::test {
namespace {
using namespace lmlab::train;
using nlohmann::json;

const std::string kHeader = "name: t\nbase: " + tiny_config() + "\nseeds: [1, 2]\n";
const std::string kVariants =
    "variants:\n  - name: pre\n    set: {model.norm_placement: pre}\n"
    "  - name: post\n    set: {model.norm_placement: post}\n";

TEST(AblationTune, ParsesOneKeyItsValuesTheSweepSettingsAndTheSeed) {
  const AblationSpec s = parse_ablation_spec(
      kHeader + kVariants +
          "tune: {optim.lr: [1e-3, 4e-3]}\ntune_set: {train.max_iters: 5}\ntune_seed: 7\n",
      "s.yaml");
  EXPECT_EQ(s.tune.key, "optim.lr");
  EXPECT_EQ(s.tune.values, (std::vector<std::string>{"1e-3", "4e-3"}));
  EXPECT_EQ(s.tune.set, (Overrides{{"train.max_iters", "5"}}));
  EXPECT_EQ(s.tune.seed, 7);
  EXPECT_EQ(
      parse_ablation_spec(kHeader + kVariants + "tune: {optim.lr: [1, 2]}\n", "s.yaml").tune.seed,
      1);  // the first seed
  EXPECT_FALSE(parse_ablation_spec(kHeader + kVariants, "s.yaml").tune.active());
  const auto error = [&](const std::string& tail, const std::vector<std::string>& parts) {
    return ThrowsWith([&] { parse_ablation_spec(kHeader + kVariants + tail, "s.yaml"); }, parts);
  };
  EXPECT_TRUE(error("tune: {optim.lr: [1e-3, 2e-3], optim.beta2: [0.9, 0.99]}\n",
                    {"s.yaml:9", "tune must be a map of one section.key"}));
  EXPECT_TRUE(error("tune: {optim.lr: [1e-3]}\n", {"at least two values"}));
  EXPECT_TRUE(error("tune: {optim.lr: [1e-3, 1e-3]}\n", {"repeats a value"}));
  EXPECT_TRUE(error("tune: {lr: [1e-3, 2e-3]}\n", {"'lr' is not a section.key name"}));
  EXPECT_TRUE(error("tune: {train.seed: [1, 2]}\n", {"set by the ablation"}));
  EXPECT_TRUE(error("tune_set: {train.max_iters: 5}\n", {"tune_set and tune_seed need a tune"}));
  EXPECT_TRUE(error("tune: {optim.lr: [1, 2]}\ntune_seed: x\n", {"tune_seed must be an integer"}));
}

TEST(AblationTune, TheSweepRunsEveryVariantAtEveryValueOnOneSeed) {
  TempDir dir("tune_plan");
  const AblationSpec s = parse_ablation_spec(
      kHeader + kVariants + "tune: {optim.lr: [1e-3, 4e-3]}\ntune_set: {train.max_iters: 5}\n",
      "s.yaml");
  const std::vector<AblationRun> sweep = plan_tune_runs(s, dir.str());
  ASSERT_EQ(sweep.size(), 4u);
  EXPECT_EQ(sweep[1].dir, dir / "pre/tune/lr=4e-3");
  EXPECT_EQ(sweep[1].tune_value, "4e-3");
  EXPECT_EQ(sweep[1].seed, 1);
  EXPECT_DOUBLE_EQ(sweep[1].config.optim.lr, 4e-3);
  EXPECT_EQ(sweep[1].config.train.max_iters, 5);
  EXPECT_EQ(sweep[2].config.model.norm_placement, nn::NormPlacement::Post);
  // The seeds then run at the picks, with the spec's own max_iters.
  const AblationSpec tuned = with_tuned_values(s, {{"pre", "4e-3"}, {"post", "1e-3"}});
  const std::vector<AblationRun> runs = plan_ablation(tuned, dir.str());
  ASSERT_EQ(runs.size(), 4u);
  EXPECT_DOUBLE_EQ(runs[0].config.optim.lr, 4e-3);
  EXPECT_DOUBLE_EQ(runs[3].config.optim.lr, 1e-3);
  EXPECT_EQ(runs[3].config.train.max_iters, load_config(tiny_config()).train.max_iters);
  EXPECT_EQ(runs[3].sets.back(), "train.run_dir=" + dir / "post/seed2");
}

// result.json of a finished (or diverged) sweep run with this final val loss.
void finish(const AblationRun& r, double loss, bool diverged = false) {
  std::filesystem::create_directories(r.dir);
  write_file(
      r.dir + "/result.json",
      json{{"steps", r.config.train.max_iters}, {"final_val_loss", loss}, {"diverged", diverged}}
          .dump());
}

TEST(AblationTune, EachVariantPicksItsLowestLossAmongRunsThatFinished) {
  TempDir dir("tune_pick");
  const AblationSpec s =
      parse_ablation_spec(kHeader + kVariants + "tune: {optim.lr: [1e-3, 2e-3, 4e-3]}\n", "s.yaml");
  const std::vector<AblationRun> sweep = plan_tune_runs(s, dir.str());
  finish(sweep[0], 2.5);
  finish(sweep[1], 2.1);
  finish(sweep[2], 1.9, /*diverged=*/true);  // diverged: never picked
  finish(sweep[3], 3.0);
  finish(sweep[4], 3.0);  // a tie: the earlier value
  TuneResult t = read_tune_result(s, sweep, dir.str());
  EXPECT_FALSE(t.complete());  // post at 4e-3 has not run
  EXPECT_EQ(t.variants[0].picked, "2e-3");
  EXPECT_EQ(t.variants[1].picked, "1e-3");
  EXPECT_EQ(t.variants[0].points[2].state, RunState::Diverged);
  EXPECT_EQ(t.variants[0].points[1].dir, "pre/tune/lr=2e-3");
  EXPECT_EQ(tuned_values(t),
            (std::vector<std::pair<std::string, std::string>>{{"pre", "2e-3"}, {"post", "1e-3"}}));
  const json j = tune_json(t);
  EXPECT_EQ(j["variants"][0]["points"][2]["status"], "diverged");
  EXPECT_TRUE(j["variants"][0]["points"][2]["metric"].is_null());
  std::ostringstream md;
  tune_markdown(md, t, true);
  EXPECT_NE(md.str().find("| `pre` | 2.5000 | **2.1000** | diverged |"), std::string::npos)
      << md.str();
  EXPECT_NE(md.str().find("![tuning sweep](tune.png)"), std::string::npos);
  // A variant none of whose values trained has nothing to run its seeds at.
  finish(sweep[3], 3.0, true);
  finish(sweep[4], 3.0, true);
  finish(sweep[5], 3.0, true);
  t = read_tune_result(s, sweep, dir.str());
  EXPECT_TRUE(t.complete());
  EXPECT_TRUE(
      ThrowsWith([&] { tuned_values(t); },
                 {"variant 'post': no value of optim.lr trained in its sweep", "1e-3 diverged"}));
}

TEST(AblationTune, AblateRunsTheSweepThenTheSeedsAtEachVariantsPick) {
  TempDir dir("tune_cli");
  write_file(dir / "corpus.txt", small_corpus(300));
  const std::string spec = dir / "spec.yaml", out = dir / "out";
  write_file(spec, kHeader + "set:\n  data.corpus: " + (dir / "corpus.txt") +
                       "\n  train.max_iters: 16\n  train.eval_interval: 8\n"
                       "  optim.warmup_iters: 4\n  train.sample_tokens: 0\n" +
                       kVariants +
                       "tune: {optim.lr: [3e-4, 3e-3]}\ntune_set: {train.max_iters: 12}\n");
  const RunResult dry = run_lmlab({"ablate", spec, "--out", out, "--dry-run"}, dir.str());
  ASSERT_EQ(dry.code, 0) << dry.err;
  EXPECT_NE(dry.out.find("tuning sweep of optim.lr over 2 values x 2 variants on seed 1"),
            std::string::npos)
      << dry.out;
  EXPECT_NE(dry.out.find(out + "/post/tune/lr=3e-3: pending"), std::string::npos) << dry.out;

  const RunResult r = run_lmlab({"ablate", spec, "--out", out, "--jobs", "2"}, dir.str(), {}, 240);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("2 values of optim.lr (tuning sweep, seed 1) = 4 runs"), std::string::npos)
      << r.out;
  const json s = json::parse(read_file(out + "/summary.json"));
  ASSERT_TRUE(s.contains("tune")) << s.dump();
  for (size_t i = 0; i < 2; ++i) {
    const json& tv = s["tune"]["variants"][i];
    const std::string picked = tv["picked"];
    // the pick is the sweep's lower final val loss, and every seed ran at it
    const json& a = tv["points"][0]["metric"];
    const json& b = tv["points"][1]["metric"];
    ASSERT_TRUE(a.is_number() && b.is_number()) << tv.dump();
    EXPECT_EQ(picked, a.get<double>() <= b.get<double>() ? "3e-4" : "3e-3");
    for (int seed : {1, 2}) {
      const TrainConfig c = load_config(out + "/" + tv["name"].get<std::string>() + "/seed" +
                                        std::to_string(seed) + "/config.yaml");
      EXPECT_DOUBLE_EQ(c.optim.lr, std::stod(picked));
      EXPECT_EQ(c.train.max_iters, 16);
    }
    EXPECT_EQ(s["variants"][i]["finished"], 2);
  }
  EXPECT_EQ(load_config(out + "/pre/tune/lr=3e-3/config.yaml").train.max_iters, 12);
  const std::string report = read_file(out + "/report.md");
  EXPECT_NE(report.find("## Tuning"), std::string::npos);
  EXPECT_NE(report.find("| variant | optim.lr = 3e-4 | optim.lr = 3e-3 |"), std::string::npos)
      << report;
  if (fs::exists("/usr/lib/python3/dist-packages/matplotlib")) {
    EXPECT_GT(fs::file_size(out + "/tune.png"), 10000u);
    EXPECT_NE(report.find("![tuning sweep](tune.png)"), std::string::npos);
  }
  // Resumable: a re-run has nothing left to run; the report can be rebuilt from disk.
  const RunResult again = run_lmlab({"ablate", spec, "--out", out}, dir.str());
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.out.find("4 already done, 0 to run"), std::string::npos) << again.out;
  const RunResult report_only =
      run_lmlab({"ablate", spec, "--out", out, "--report-only"}, dir.str());
  EXPECT_EQ(report_only.code, 0) << report_only.err;
  expect_failure(
      run_lmlab({"ablate", spec, "--out", out, "--emit-slurm", dir / "slurm"}, dir.str()), 2,
      {"tune:", "Slurm"});
  // A report from a sweep that has not run says so.
  expect_failure(run_lmlab({"ablate", spec, "--out", dir / "fresh", "--report-only"}, dir.str()), 1,
                 {"tuning sweep", "has not finished"});
}

}  // namespace
}  // namespace lmlab::test
