// Ablation specs: parsing, grid expansion, planning into validated run configs, the errors for
// every mistake a spec can hold (located at file:line), the output-directory checks, and the
// shipped specs in configs/ablations/.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/test_util.h"
#include "tests/train/cli_util.h"
#include "train/ablation/runner.h"
#include "train/ablation/spec.h"

namespace lmlab::train {
namespace {

namespace fs = std::filesystem;

std::string base_path() { return std::string(LMLAB_SOURCE_DIR) + "/configs/tiny.yaml"; }

std::string spec_text(const std::string& body) {
  return "base: " + base_path() + "\nseeds: [1, 2]\n" + body;
}

TEST(AblationSpec, VariantsTimesGridInOrderWithGeneratedNames) {
  const AblationSpec s = parse_ablation_spec(
      spec_text("set: {train.max_iters: 20}\n"
                "variants:\n"
                "  - name: pre\n    set: {model.norm_placement: pre}\n"
                "  - name: post\n    set: {model.norm_placement: post}\n"
                "grid:\n  optim.lr: [1.0e-3, 3.0e-3]\n  model.n_layer: [1, 2]\n"),
      "spec.yaml");
  ASSERT_EQ(s.variants.size(), 8u);
  EXPECT_EQ(s.variants[0].name, "pre,lr=1.0e-3,n_layer=1");
  EXPECT_EQ(s.variants[3].name, "pre,lr=3.0e-3,n_layer=2");
  EXPECT_EQ(s.variants[4].name, "post,lr=1.0e-3,n_layer=1");
  EXPECT_EQ(override_strings(s, s.variants[5]),
            (std::vector<std::string>{"train.max_iters=20", "model.norm_placement=post",
                                      "optim.lr=1.0e-3", "model.n_layer=2"}));
  EXPECT_EQ(s.baseline, "pre,lr=1.0e-3,n_layer=1");
  EXPECT_EQ(s.seeds, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(s.name, "spec");  // the file's stem when no name is given
  EXPECT_EQ(s.metric, "final_val_loss");
}

TEST(AblationSpec, GridAloneSeedCountAndNoVariantsAtAll) {
  AblationSpec s = parse_ablation_spec(
      "base: x.yaml\nseeds: 3\ngrid:\n  model.norm: [layernorm, rmsnorm]\n", "");
  ASSERT_EQ(s.variants.size(), 2u);
  EXPECT_EQ(s.variants[1].name, "norm=rmsnorm");
  EXPECT_EQ(s.seeds, (std::vector<int64_t>{1, 2, 3}));
  s = parse_ablation_spec("base: x.yaml\nseeds: [7]\n", "a/b.yaml");
  ASSERT_EQ(s.variants.size(), 1u);
  EXPECT_EQ(s.variants[0].name, "base");
  EXPECT_EQ(s.base, "a/x.yaml");  // relative to the spec's folder
}

TEST(AblationSpec, MistakesAreLocatedErrors) {
  struct Case {
    std::string text;
    std::vector<std::string> parts;
  };
  const std::vector<Case> cases = {
      {"base: b.yaml\nseeds: [1]\nvariant:\n  - name: a\n", {"s.yaml:3", "unknown key 'variant'"}},
      {"seeds: [1]\n", {"s.yaml", "missing key 'base'"}},
      {"base: b.yaml\n", {"missing key 'seeds'"}},
      {"base: b.yaml\nseeds: []\n", {"s.yaml:2", "at least one seed"}},
      {"base: b.yaml\nseeds: [1, 1]\n", {"s.yaml:2", "repeat"}},
      {"base: b.yaml\nseeds: [one]\n", {"s.yaml:2", "integers"}},
      {"base: b.yaml\nseeds: 0\n", {"s.yaml:2", "count"}},
      {"base: b.yaml\nseeds: [1]\nmetric: loss\n", {"s.yaml:3", "final_val_loss or best_val_loss"}},
      {"base: b.yaml\nseeds: [1]\nvariants:\n  - name: a\n  - name: a\n",
       {"s.yaml:5", "duplicate variant name 'a'"}},
      {"base: b.yaml\nseeds: [1]\nvariants:\n  - name: a/b\n",
       {"s.yaml:4", "'a/b'", "directory name"}},
      {"base: b.yaml\nseeds: [1]\nvariants:\n  - set: {model.norm: rmsnorm}\n",
       {"s.yaml:4", "needs a name"}},
      {"base: b.yaml\nseeds: [1]\nvariants:\n  - name: a\n    sett: {}\n",
       {"s.yaml:5", "unknown key 'sett'"}},
      {"base: b.yaml\nseeds: [1]\nset: {lr: 1}\n", {"s.yaml:3", "'lr' is not a section.key"}},
      {"base: b.yaml\nseeds: [1]\nset: {model.norm: [a, b]}\n", {"s.yaml:3", "single value"}},
      {"base: b.yaml\nseeds: [1]\ngrid: {optim.lr: []}\n", {"s.yaml:3", "non-empty list"}},
      {"base: b.yaml\nseeds: [1]\nbaseline: zz\n", {"s.yaml:3", "baseline 'zz'"}},
      {"base: b.yaml\nseeds: [1\n", {"s.yaml", "not valid YAML"}},
      {"- just a list\n", {"s.yaml:1", "must be a YAML map"}},
  };
  // A grid of 20 two-value keys would be 2^20 variants (found by fuzz_ablation_spec as a hang):
  // refused while expanding.
  std::string big = "base: b.yaml\nseeds: [1]\ngrid:\n";
  for (int k = 0; k < 20; ++k) big += "  model.k" + std::to_string(k) + ": [1, 2]\n";
  EXPECT_TRUE(test::ThrowsWith([&] { parse_ablation_spec(big, "s.yaml"); },
                               {"s.yaml:", "more than 10000 variants"}));
  for (const Case& c : cases)
    EXPECT_TRUE(test::ThrowsWith([&] { parse_ablation_spec(c.text, "s.yaml"); }, c.parts))
        << c.text;
}

TEST(AblationSpec, PlanResolvesEveryRunAndNamesTheVariantOnBadOverrides) {
  const AblationSpec s = parse_ablation_spec(
      spec_text("variants:\n  - name: rms\n    set: {model.norm: rmsnorm, model.n_kv_head: 2}\n"),
      "s.yaml");
  const std::vector<AblationRun> runs = plan_ablation(s, "/tmp/out");
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[1].dir, "/tmp/out/rms/seed2");
  EXPECT_EQ(runs[1].config.train.seed, 2);
  EXPECT_EQ(runs[1].config.train.run_dir, "/tmp/out/rms/seed2");
  EXPECT_EQ(runs[1].config.model.norm, nn::NormType::RMSNorm);
  EXPECT_EQ(runs[1].config.model.n_kv_head, 2);

  const AblationSpec typo = parse_ablation_spec(
      spec_text("variants:\n  - name: a\n  - name: b\n    set: {model.norms: rmsnorm}\n"),
      "s.yaml");
  EXPECT_TRUE(
      test::ThrowsWith([&] { plan_ablation(typo, "/tmp/out"); },
                       {"s.yaml:5", "variant 'b'", "model.norms", "did you mean 'model.norm'"}));
  const AblationSpec invalid = parse_ablation_spec(
      spec_text("variants:\n  - name: odd-heads\n    set: {model.n_kv_head: 3}\n"), "s.yaml");
  EXPECT_TRUE(test::ThrowsWith([&] { plan_ablation(invalid, "/tmp/out"); },
                               {"s.yaml:4", "variant 'odd-heads'", "n_kv_head"}));
  const AblationSpec seeded = parse_ablation_spec(spec_text("set: {train.seed: 5}\n"), "s.yaml");
  EXPECT_TRUE(
      test::ThrowsWith([&] { plan_ablation(seeded, "/tmp/out"); }, {"train.seed", "seeds:"}));
  const AblationSpec no_base =
      parse_ablation_spec("base: /nonexistent/base.yaml\nseeds: [1]\n", "s.yaml");
  EXPECT_TRUE(test::ThrowsWith([&] { plan_ablation(no_base, "/tmp/out"); },
                               {"s.yaml", "/nonexistent/base.yaml", "does not exist"}));
}

TEST(AblationDir, RefusesAnotherAblationsOutputForeignFilesAndChangedRuns) {
  test::TempDir dir("ablation_dir");
  const AblationSpec s = parse_ablation_spec(spec_text("name: mine\n"), "s.yaml");
  const std::string out = dir / "out";
  std::vector<AblationRun> runs = plan_ablation(s, out);
  EXPECT_NO_THROW(check_ablation_dir(s, runs, out));  // does not exist yet
  fs::create_directories(out);
  EXPECT_NO_THROW(check_ablation_dir(s, runs, out));  // empty
  test::write_file(out + "/notes.txt", "mine");
  EXPECT_TRUE(
      test::ThrowsWith([&] { check_ablation_dir(s, runs, out); }, {out, "not an lmlab ablation"}));
  fs::remove(out + "/notes.txt");
  test::write_file(out + "/ablation.json", "{\"name\": \"theirs\"}");
  EXPECT_TRUE(test::ThrowsWith([&] { check_ablation_dir(s, runs, out); },
                               {out, "another ablation ('theirs'"}));
  test::write_file(out + "/ablation.json", "{\"name\": \"mine\"}");
  EXPECT_NO_THROW(check_ablation_dir(s, runs, out));
  // A run on disk made with another config (e.g. the spec was edited since).
  TrainConfig changed = runs[0].config;
  changed.optim.lr = 0.5;
  fs::create_directories(runs[0].dir);
  test::write_file(runs[0].dir + "/config.yaml", to_yaml(changed));
  EXPECT_TRUE(test::ThrowsWith([&] { check_ablation_dir(s, runs, out); },
                               {runs[0].dir, "different config", "optim.lr: 0.5 (on disk)"}));
  test::write_file(runs[0].dir + "/config.yaml", to_yaml(runs[0].config));
  EXPECT_NO_THROW(check_ablation_dir(s, runs, out));
}

// The output directory has one spelling: relative or absolute, with "./" or a trailing slash, the
// same runs; a run on disk written under one spelling is not "another config" under the other.
TEST(AblationDir, TheSameOutputSpeltAnotherWayIsTheSameAblation) {
  test::TempDir dir("ablation_out");
  const std::string abs = fs::absolute(dir / "out").lexically_normal().string();
  EXPECT_EQ(normal_dir(abs + "/"), abs);
  EXPECT_EQ(normal_dir(abs + "/./x/.."), abs);
  const std::string cwd = fs::current_path().string();
  fs::current_path(dir.str());
  EXPECT_EQ(normal_dir("out"), abs);
  EXPECT_EQ(normal_dir("./out/"), abs);
  const AblationSpec s = parse_ablation_spec(spec_text("name: mine\n"), "s.yaml");
  const std::vector<AblationRun> relative = plan_ablation(s, "./out/");
  fs::current_path(cwd);
  const std::vector<AblationRun> absolute = plan_ablation(s, abs);
  ASSERT_EQ(relative.size(), absolute.size());
  EXPECT_EQ(relative[0].dir, absolute[0].dir);
  EXPECT_EQ(to_yaml(relative[0].config), to_yaml(absolute[0].config));
  fs::create_directories(relative[0].dir);
  test::write_file(relative[0].dir + "/config.yaml", to_yaml(relative[0].config));
  test::write_file(abs + "/ablation.json", "{\"name\": \"mine\"}");
  EXPECT_NO_THROW(check_ablation_dir(s, absolute, abs));
  // A run written with another spelling of its directory in train.run_dir (relative, "./", a
  // trailing slash: as an lmlab before this normalisation stored it) is the same run...
  const std::string rel = fs::relative(absolute[0].dir, dir.str()).string();
  fs::current_path(dir.str());
  for (const std::string& spelt : {rel, "./" + rel + "/", absolute[0].dir + "/"}) {
    TrainConfig on_disk = absolute[0].config;
    on_disk.train.run_dir = spelt;
    test::write_file(absolute[0].dir + "/config.yaml", to_yaml(on_disk));
    EXPECT_NO_THROW(check_ablation_dir(s, absolute, abs)) << spelt;
  }
  fs::current_path(cwd);
  // ...while another directory is not.
  TrainConfig moved = absolute[0].config;
  moved.train.run_dir = abs + "/elsewhere";
  test::write_file(absolute[0].dir + "/config.yaml", to_yaml(moved));
  EXPECT_TRUE(test::ThrowsWith([&] { check_ablation_dir(s, absolute, abs); },
                               {absolute[0].dir, "different config", "train.run_dir: "}));
}

// Every shipped spec parses and plans (all run configs valid); quick.yaml stays small.
TEST(AblationSpec, ShippedSpecsPlan) {
  int n = 0;
  for (const auto& e :
       fs::directory_iterator(std::string(LMLAB_SOURCE_DIR) + "/configs/ablations")) {
    if (e.path().extension() != ".yaml") continue;
    SCOPED_TRACE(e.path().string());
    const AblationSpec s = load_ablation_spec(e.path().string());
    const std::vector<AblationRun> runs = plan_ablation(s, "/tmp/plan");
    EXPECT_GE(s.seeds.size(), s.name == "quick" ? 2u : 3u);
    EXPECT_EQ(runs.size(), s.variants.size() * s.seeds.size());
    EXPECT_EQ(plan_tune_runs(s, "/tmp/plan").size(), s.variants.size() * s.tune.values.size());
    if (s.name == "quick") {
      EXPECT_LE(runs.size(), 8u);
      for (const AblationRun& r : runs)
        EXPECT_LE(r.config.train.max_iters * r.config.model.n_layer, 3000);
    }
    ++n;
  }
  // quick, norm_2x2, postnorm_warmup, kv_heads, kv_heads_bpe, norm_depth(_postnorm), precision
  EXPECT_EQ(n, 8);
}

}  // namespace
}  // namespace lmlab::train
