// `lmlab ablate` end to end, as a user runs it: a 2x2 spec on a tiny model runs every variant x
// seed and writes the report; re-running skips finished runs; SIGINT stops it resumably and the
// resumed ablation gives the same numbers as an uninterrupted one; diverged runs are recorded and
// the ablation goes on; bad specs and foreign output directories fail before any run starts.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/train/cli_util.h"
#include "train/io/plot.h"

namespace lmlab::test {
namespace {
using namespace lmlab::train;

using nlohmann::json;

// A 2 variants x 2 seeds spec on configs/tiny.yaml and a small corpus, ~1 s per run.
std::string write_spec(const TempDir& dir, const std::string& extra = "", int iters = 24) {
  write_file(dir / "corpus.txt", small_corpus(300));
  const std::string spec = dir / "spec.yaml";
  write_file(spec,
             "name: mini\nbase: " + tiny_config() +
                 "\nseeds: [1, 2]\nset:\n"
                 "  data.corpus: " +
                 (dir / "corpus.txt") + "\n  train.max_iters: " + std::to_string(iters) +
                 "\n  train.eval_interval: 8\n  optim.warmup_iters: 4\n  train.sample_tokens: 0\n"
                 "  train.log_interval: 1\n"
                 "variants:\n  - name: pre\n    set: {model.norm_placement: pre}\n"
                 "  - name: post\n    set: {model.norm_placement: post}\n" +
                 extra);
  return spec;
}

json summary(const std::string& out) { return json::parse(read_file(out + "/summary.json")); }

// variant/seed -> final val loss, from summary.json.
std::map<std::string, double> finals(const json& s) {
  std::map<std::string, double> m;
  for (const json& v : s["variants"])
    for (const json& r : v["runs"])
      if (r.contains("result") && r["result"]["final_val_loss"].is_number())
        m[v["name"].get<std::string>() + "/" + std::to_string(r["seed"].get<int>())] =
            r["result"]["final_val_loss"].get<double>();
  return m;
}

TEST(AblateCli, RunsEveryVariantAndSeedAndWritesTheReport) {
  TempDir dir("ablate");
  const std::string spec = write_spec(dir), out = dir / "out";
  RunResult r = run_lmlab({"ablate", spec, "--out", out, "--jobs", "2"}, dir.str(), {}, 240);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("2 variants x 2 seeds = 4 runs"), std::string::npos) << r.out;
  const json s = summary(out);
  ASSERT_EQ(s["variants"].size(), 2u);
  for (const json& v : s["variants"]) {
    EXPECT_EQ(v["finished"], 2);
    EXPECT_EQ(v["diverged"], 0);
    EXPECT_EQ(v["final_val_loss"]["n"], 2);
    EXPECT_GT(v["final_val_loss"]["std"].get<double>(), 0.0);  // seeds differ
    EXPECT_GT(v["num_parameters"].get<int64_t>(), 0);
    EXPECT_GT(v["kv_cache_bytes_per_token"].get<int64_t>(), 0);
    EXPECT_GT(v["peak_rss_bytes"].get<double>(), 1e6);
    EXPECT_EQ(v["diagnostics"]["grad_norm_init"].size(), 2u);  // one per block
  }
  ASSERT_EQ(s["comparisons"].size(), 1u);
  EXPECT_EQ(s["comparisons"][0]["variant"], "post");
  const std::string report = read_file(out + "/report.md");
  for (const char* part : {"# Ablation `mini`", "| `pre` |", "| `post` |",
                           "## Against the baseline", "## Diagnostics", "post/seed2"})
    EXPECT_NE(report.find(part), std::string::npos) << part;
  EXPECT_EQ(csv_rows(out + "/pre/seed1/diagnostics.csv")[0][0], "0");  // step 0 is there
  if (fs::exists("/usr/lib/python3/dist-packages/matplotlib")) {
    EXPECT_GT(fs::file_size(out + "/loss_curves.png"), 10000u);
    EXPECT_GT(fs::file_size(out + "/diagnostics.png"), 10000u);
  }

  // Re-running the same command runs nothing and rewrites the same numbers.
  const auto mtime = fs::last_write_time(out + "/pre/seed1/metrics.csv");
  r = run_lmlab({"ablate", spec, "--out", out}, dir.str(), {}, 120);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("4 already done, 0 to run"), std::string::npos) << r.out;
  EXPECT_EQ(fs::last_write_time(out + "/pre/seed1/metrics.csv"), mtime);
  EXPECT_EQ(finals(summary(out)), finals(s));
}

bool have_matplotlib() { return fs::exists("/usr/lib/python3/dist-packages/matplotlib"); }

// A numeric grid axis gets its figure: the final metric against n_layer, embedded in the report.
TEST(AblateCli, ANumericGridAxisGetsASweepFigure) {
  if (!have_matplotlib()) GTEST_SKIP() << "python3-matplotlib is not installed";
  TempDir dir("ablate_sweep");
  const std::string spec = write_spec(dir, "grid:\n  model.n_layer: [1, 2]\n", 8);
  const std::string out = dir / "out";
  const RunResult r = run_lmlab({"ablate", spec, "--out", out, "--jobs", "2"}, dir.str(), {}, 240);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_GT(fs::file_size(out + "/sweep_n_layer.png"), 10000u);
  EXPECT_NE(read_file(out + "/report.md").find("![sweep_n_layer](sweep_n_layer.png)"),
            std::string::npos);
}

// The loss-curve plot of a variant the report calls unstable draws each seed (a diverged one
// too) instead of a median; with --log-x as well, and subset estimates of the val loss between
// whole-split points (val_subset_loss). Checked on a hand-made ablation directory.
TEST(AblateCli, UnstableVariantsArePlottedSeedBySeed) {
  if (!have_matplotlib()) GTEST_SKIP() << "python3-matplotlib is not installed";
  TempDir dir("ablate_plot");
  const std::string out = dir.str();
  json s = {{"name", "synthetic"}, {"metric", "final_val_loss"}};
  s["comparisons"] = json::array({{{"variant", "post"}, {"unstable", true}}});
  s["variants"] = json::array();
  for (const char* v : {"pre", "post"}) {
    json runs = json::array();
    for (int seed = 1; seed <= 3; ++seed) {
      const std::string run = std::string(v) + "/seed" + std::to_string(seed);
      fs::create_directories(dir / run);
      const bool stuck = std::string(v) == "post" && seed > 1;
      std::string csv = "step,tokens,train_loss,val_loss,val_subset_loss\n";
      for (int step = 0; step < 20; ++step) {
        const std::string loss = std::to_string(stuck ? 3.35 : 4.0 - 0.1 * step);
        csv += std::to_string(step) + "," + std::to_string(100 * (step + 1)) + "," +
               std::to_string(stuck ? 3.3 : 4.0 - 0.1 * step) + "," + (step % 5 == 4 ? loss : "") +
               "," + (step % 5 == 2 ? loss : "") + "\n";
      }
      write_file(dir / (run + "/metrics.csv"), csv);
      runs.push_back(
          {{"dir", run}, {"seed", seed}, {"status", seed == 3 ? "diverged" : "finished"}});
    }
    s["variants"].push_back({{"name", v}, {"runs", runs}});
  }
  write_file(dir / "summary.json", s.dump());
  std::string command;
  ASSERT_TRUE(run_plot_tool("plot_ablation.py", {out, "--log-x"}, &command)) << command;
  EXPECT_GT(fs::file_size(dir / "loss_curves.png"), 10000u);
}

TEST(AblateCli, InterruptedAblationResumesToTheSameNumbers) {
  TempDir dir("ablate_int");
  // 1000 iterations: long enough that no run can finish between the check below and the signal,
  // even on a loaded machine (with 60, the AVX2 build once finished pre/seed1 first in CI-like
  // conditions: a run of 60 tiny steps takes ~0.2 s).
  const std::string spec = write_spec(dir, "", 1000), out = dir / "out", ref = dir / "ref";
  std::vector<std::string> argv{lmlab_binary(), "ablate", spec, "--out", out, "--jobs", "2"};
  Child child(argv, dir.str());
  // Stop once the first runs are under way (their metrics show a few steps).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    if (fs::exists(out + "/pre/seed1/metrics.csv") &&
        csv_rows(out + "/pre/seed1/metrics.csv").size() >= 10)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  child.signal(SIGINT);
  ASSERT_EQ(child.wait(120), 130) << child.out() << child.err();
  EXPECT_NE(child.err().find("run the same command again to resume"), std::string::npos)
      << child.err();
  EXPECT_TRUE(fs::exists(out + "/pre/seed1/ckpt.safetensors"));  // checkpointed on the signal
  EXPECT_FALSE(fs::exists(out + "/pre/seed1/result.json"));

  RunResult r = run_lmlab({"ablate", spec, "--out", out, "--jobs", "2"}, dir.str(), {}, 240);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  RunResult straight = run_lmlab({"ablate", spec, "--out", ref, "--jobs", "2"}, dir.str(), {}, 240);
  ASSERT_EQ(straight.code, 0) << straight.err;
  const auto a = finals(summary(out)), b = finals(summary(ref));
  EXPECT_EQ(a.size(), 4u);
  EXPECT_EQ(a, b);  // bit-exact resume
}

TEST(AblateCli, DivergedRunsAreRecordedAndTheAblationGoesOn) {
  TempDir dir("ablate_div");
  const std::string spec = write_spec(dir), out = dir / "out";
  ChildOptions nan_at_5{{"LMLAB_FAULT_NAN_AT_STEP=5"}};
  RunResult r = run_lmlab({"ablate", spec, "--out", out, "--jobs", "2"}, dir.str(), nan_at_5, 240);
  ASSERT_EQ(r.code, 0) << r.err;  // a diverged run is a result, not a failure
  EXPECT_NE(r.out.find("diverged at step 5"), std::string::npos) << r.out;
  const json s = summary(out);
  for (const json& v : s["variants"]) {
    EXPECT_EQ(v["diverged"], 2);
    EXPECT_EQ(v["total"], 2);
    EXPECT_TRUE(v["final_val_loss"].is_null());
    for (const json& run : v["runs"]) {
      EXPECT_EQ(run["status"], "diverged");
      EXPECT_EQ(run["result"]["diverged_step"], 5);
      EXPECT_TRUE(run["result"]["last_finite_loss"].is_number());
    }
  }
  EXPECT_NE(read_file(out + "/report.md").find("diverged at step 5 (last finite loss"),
            std::string::npos);
  // Diverged runs count as done: a re-run does not repeat them.
  r = run_lmlab({"ablate", spec, "--out", out}, dir.str(), {}, 120);
  EXPECT_NE(r.out.find("4 already done"), std::string::npos) << r.out;
}

TEST(AblateCli, BadSpecsAndForeignOutputFailBeforeAnyRun) {
  TempDir dir("ablate_bad");
  const std::string out = dir / "out";
  const std::string typo = write_spec(dir, "  - name: rms\n    set: {model.norms: rmsnorm}\n");
  RunResult r = run_lmlab({"ablate", typo, "--out", out}, dir.str());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("variant 'rms'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("did you mean 'model.norm'"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));  // nothing started

  const std::string dup = write_spec(dir, "  - name: pre\n");
  r = run_lmlab({"ablate", dup, "--out", out}, dir.str());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("duplicate variant name 'pre'"), std::string::npos) << r.err;

  fs::create_directories(out);
  write_file(out + "/ablation.json", "{\"name\": \"someone-else\"}");
  r = run_lmlab({"ablate", write_spec(dir), "--out", out}, dir.str());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("another ablation ('someone-else'"), std::string::npos) << r.err;
  EXPECT_EQ(files_in(out).size(), 1u);

  r = run_lmlab({"ablate", dir / "missing.yaml"}, dir.str());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("missing.yaml"), std::string::npos) << r.err;
  r = run_lmlab({"ablate", write_spec(dir), "--jobs", "0"}, dir.str());
  EXPECT_EQ(r.code, 2);
}

TEST(AblateCli, DryRunListsRunsAndRunsNothing) {
  TempDir dir("ablate_dry");
  const std::string out = dir / "out";
  RunResult r = run_lmlab({"ablate", write_spec(dir), "--out", out, "--dry-run"}, dir.str());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("post: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("model.norm_placement=post"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(out + "/post/seed2: pending"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace lmlab::test

namespace lmlab::test {
namespace {

// --emit-slurm writes a job array and runs nothing; its tasks, run by hand with the array index
// Slurm would set (from another directory), then report.sh, give the report `lmlab ablate` gives,
// with bit-identical final losses.
TEST(AblateCli, EmitSlurmTasksRunByHandMatchTheLocalAblation) {
  TempDir dir("ablate_slurm");
  const std::string spec = write_spec(dir), out = dir / "out", slurm = dir / "slurm";
  RunResult r = run_lmlab({"ablate", spec, "--out", out, "--emit-slurm", slurm}, dir.str(), {}, 60);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("4 Slurm array tasks"), std::string::npos) << r.out;
  const std::string sbatch = read_file(slurm + "/ablation.sbatch");
  for (const char* part : {"#SBATCH --array=0-3", "#SBATCH --cpus-per-task=1", "report.sh"})
    EXPECT_NE(sbatch.find(part), std::string::npos) << part << "\n" << sbatch;
  EXPECT_TRUE(fs::exists(out + "/ablation.json"));
  EXPECT_FALSE(fs::exists(out + "/pre/seed1/metrics.csv"));  // nothing ran yet
  // Without an index the script refuses, naming the variable.
  EXPECT_NE(
      std::system(
          ("env -u SLURM_ARRAY_TASK_ID bash " + slurm + "/ablation.sbatch 2>/dev/null").c_str()),
      0);

  for (int i = 0; i < 4; ++i) {
    const std::string cmd =
        "cd / && SLURM_ARRAY_TASK_ID=" + std::to_string(i) + " bash " + slurm + "/ablation.sbatch";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << "task " << i;
  }
  const std::string first_line = read_file(out + "/post/seed2/train.log").substr(0, 2);
  EXPECT_EQ(first_line, "$ ");  // the command, as the local runner writes it
  const std::string rep = dir / "report.out";
  ASSERT_EQ(std::system(("bash " + slurm + "/report.sh > " + rep + " 2>&1").c_str()), 0)
      << read_file(rep);
  const json s = summary(out);
  ASSERT_EQ(s["variants"].size(), 2u);
  for (const json& v : s["variants"]) EXPECT_EQ(v["finished"], 2);
  EXPECT_TRUE(fs::exists(out + "/report.md"));

  const std::string local = dir / "local";
  r = run_lmlab({"ablate", spec, "--out", local, "--jobs", "2"}, dir.str(), {}, 240);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(finals(summary(local)), finals(s));
  EXPECT_EQ(finals(s).size(), 4u);
}

}  // namespace
}  // namespace lmlab::test
