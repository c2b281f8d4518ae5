#include "train/cli/commands.h"

#include <algorithm>
#include <cxxopts.hpp>
#include <filesystem>
#include <iostream>

#include "autograd/threads.h"
#include "data/dataset.h"
#include "data/tokenizer.h"
#include "data/utf8.h"
#include "train/ablation/report.h"
#include "train/ablation/runner.h"
#include "train/ablation/slurm.h"
#include "train/ablation/spec.h"
#include "train/dist/distributed.h"
#include "train/io/checkpoint.h"
#include "train/io/plot.h"
#include "train/run/bench.h"
#include "train/run/data_setup.h"
#include "train/run/sample.h"
#include "train/run/trainer.h"

namespace lmlab::train::cli {

namespace {

// The model a checkpoint describes, with its weights loaded.
struct Loaded {
  Checkpoint ckpt;
  std::unique_ptr<nn::TransformerLM> model;
};

Loaded load_model(const std::string& path) {
  Loaded l{load_checkpoint(path), nullptr};
  Generator gen(0);
  l.model = std::make_unique<nn::TransformerLM>(l.ckpt.config.model, gen);
  load_weights(l.ckpt, *l.model);
  l.model->eval();
  return l;
}

}  // namespace

bool parse(cxxopts::Options& opts, int argc, char** argv, cxxopts::ParseResult& out,
           size_t positional) {
  opts.add_options()("h,help", "show this help");
  out = opts.parse(argc, argv);
  if (out.count("help")) {
    std::cout << opts.help();
    return false;
  }
  if (out.unmatched().size() > positional)
    throw UsageError("unexpected argument '" + out.unmatched()[positional] + "'");
  if (out.unmatched().size() < positional) throw UsageError("missing argument");
  return true;
}

int train_main(int argc, char** argv) {
  cxxopts::Options opts("lmlab train",
                        "Train a language model from a YAML config.\n"
                        "usage: lmlab train CONFIG [--set section.key=value]... "
                        "[--resume | --init-from CKPT [--init-missing]]");
  std::vector<std::string> sets;
  std::string run_dir, init_from;
  opts.add_options()("set", "override a config key, e.g. --set model.norm=rmsnorm (repeatable)",
                     cxxopts::value(sets))("resume",
                                           "continue from <run_dir>/ckpt.safetensors (bit-exact)")(
      "run-dir", "where to write the run (default: train.run_dir or runs/<config name>)",
      cxxopts::value(run_dir))("init-from", "start from the weights of this checkpoint",
                               cxxopts::value(init_from))(
      "init-missing",
      "with --init-from: parameters the checkpoint lacks start at their init (else an error)")(
      "quiet", "no progress output (and no plot)")("no-plot", "do not draw <run_dir>/loss.png");
  cxxopts::ParseResult r;
  if (!parse(opts, argc, argv, r, 1)) return 0;
  if (r.count("init-missing") && init_from.empty())
    throw UsageError("--init-missing needs --init-from CKPT");
  TrainConfig cfg = load_config(r.unmatched()[0], sets);
  if (!run_dir.empty()) cfg.train.run_dir = run_dir;
  TrainOptions to;
  to.resume = r.count("resume") > 0;
  to.init_from = init_from;
  to.init_missing = r.count("init-missing") > 0;
  to.quiet = r.count("quiet") > 0;
  TrainResult res = train(cfg, to);
  if (!to.quiet && !r.count("no-plot") && res.steps > 0 && dist::rank() == 0) {
    const std::string png = plot_loss_curve(res.run_dir + "/metrics.csv", res.run_dir + "/loss.png",
                                            "lmlab train " + r.unmatched()[0]);
    if (!png.empty()) std::cout << "train: loss curve in " << png << "\n";
  }
  if (res.diverged) return 3;
  if (res.interrupted) return 130;
  return 0;
}

int eval_main(int argc, char** argv) {
  cxxopts::Options opts("lmlab eval",
                        "Validation loss of a checkpoint over the whole validation "
                        "split.\nusage: lmlab eval CKPT [--data PATH]");
  std::string data_path;
  int64_t batch = 32;
  opts.add_options()("data", "corpus to evaluate on (default: the checkpoint's)",
                     cxxopts::value(data_path))("batch", "windows per forward pass",
                                                cxxopts::value(batch)->default_value("32"));
  cxxopts::ParseResult r;
  if (!parse(opts, argc, argv, r, 1)) return 0;
  if (batch <= 0) throw UsageError("--batch must be positive");
  Loaded l = load_model(r.unmatched()[0]);
  const TrainConfig& cfg = l.ckpt.config;
  set_num_threads(int(cfg.train.threads));
  DataConfig d = cfg.data;
  if (!data_path.empty()) d.corpus = data_path;
  const RunData data = load_run_data(d, cfg.model.block_size, l.ckpt.tokenizer);
  int64_t tokens = 0;
  const double loss = evaluate(*l.model, data.dataset, batch, &tokens);
  std::cout << "val_loss " << loss << "\nval_bpb " << bits_per_byte(loss, data.val_bytes_per_token)
            << "\ntokens " << tokens << "\ncorpus " << d.corpus << "\nstep " << l.ckpt.state.step
            << "\n";
  return 0;
}

int sample_main(int argc, char** argv) {
  cxxopts::Options opts("lmlab sample",
                        "Generate text from a checkpoint (KV-cache decoding).\n"
                        "usage: lmlab sample CKPT [--prompt S] [--tokens N]");
  std::string prompt = "\n";
  SampleOptions so;
  opts.add_options()("prompt", "text to continue", cxxopts::value(prompt)->default_value("\n"))(
      "tokens", "tokens to generate", cxxopts::value(so.tokens)->default_value("200"))(
      "temperature", "softmax temperature (> 0)",
      cxxopts::value(so.temperature)->default_value("1.0"))(
      "top-k", "sample among the k most likely tokens (0: all)",
      cxxopts::value(so.top_k)->default_value("0"))("seed", "random seed",
                                                    cxxopts::value(so.seed)->default_value("1337"));
  cxxopts::ParseResult r;
  if (!parse(opts, argc, argv, r, 1)) return 0;
  if (so.tokens <= 0) throw UsageError("--tokens must be positive");
  if (!(so.temperature > 0)) throw UsageError("--temperature must be > 0");
  if (so.top_k < 0) throw UsageError("--top-k must be >= 0");
  Loaded l = load_model(r.unmatched()[0]);
  set_num_threads(int(l.ckpt.config.train.threads));
  const data::Tokenizer tok = data::Tokenizer::from_serialized(l.ckpt.tokenizer);
  // Each token's text as it comes; a character split between two BPE tokens waits for its end.
  data::utf8::Stream out;
  std::cout << prompt << std::flush;
  so.on_token = [&](int32_t id) { std::cout << out.push(tok.decode_bytes({id})) << std::flush; };
  SampleResult s = generate(*l.model, tok.encode(prompt.empty() ? "\n" : prompt), so);
  std::cout << out.finish() << "\n";
  std::cerr << "sample: " << s.ids.size() << " tokens, " << int64_t(s.tokens_per_s)
            << " tok/s, KV cache " << s.kv_cache_bytes << " bytes ("
            << l.ckpt.config.model.n_kv_head << " kv heads)\n";
  return 0;
}

namespace {

// This lmlab binary's path, which an ablation's runs (child processes, Slurm tasks) start.
std::string own_binary() {
  std::error_code ec;
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec) throw Error("[ablate] cannot find the lmlab binary (/proc/self/exe): " + ec.message());
  return exe;
}

// `lmlab ablate --dry-run`: the variants with their overrides, then each run's directory and state.
void print_ablation_plan(const AblationSpec& spec, const std::vector<AblationRun>& runs) {
  std::cout << "ablate: " << spec.name << ": " << spec.variants.size() << " variants x "
            << spec.seeds.size() << " seeds = " << runs.size() << " runs (base " << spec.base
            << ")\n";
  for (const AblationVariant& v : spec.variants) {
    std::cout << "  " << v.name << ":";
    for (const std::string& o : override_strings(spec, v)) std::cout << " " << o;
    std::cout << "\n";
  }
  for (const AblationRun& run : runs)
    std::cout << "  " << run.dir << ": " << run_state_name(run_state(run)) << "\n";
}

// `lmlab ablate` of a spec with `tune:`: the sweep's runs (--dry-run), the report from disk once
// the sweep has ended (--report-only), or the sweep then the seeds (run_tuned_ablation).
int ablate_tuned(const AblationSpec& spec, AblateOptions& ao, const cxxopts::ParseResult& r) {
  if (r.count("emit-slurm"))
    throw UsageError(
        "a spec with tune: runs its seeds at values its sweep picks, which a "
        "Slurm job array fixed in advance cannot: run it with lmlab ablate");
  const std::vector<AblationRun> sweep = plan_tune_runs(spec, ao.out_dir);
  check_ablation_dir(spec, sweep, ao.out_dir);
  if (r.count("dry-run")) {
    std::cout << "ablate: " << spec.name << ": tuning sweep of " << spec.tune.key << " over "
              << spec.tune.values.size() << " values x " << spec.variants.size()
              << " variants on seed " << spec.tune.seed << ", then " << spec.seeds.size()
              << " seeds per variant at its pick (base " << spec.base << ")\n";
    for (const AblationRun& run : sweep)
      std::cout << "  " << run.dir << ": " << run_state_name(run_state(run)) << "\n";
    return 0;
  }
  if (r.count("report-only")) {
    TuneResult tune;
    const AblationSpec tuned = tuned_spec(spec, sweep, ao.out_dir, &tune);
    const std::vector<AblationRun> runs = plan_ablation(tuned, ao.out_dir);
    check_ablation_dir(tuned, runs, ao.out_dir);
    std::cout << "ablate: report in " << write_ablation_report(tuned, runs, ao.out_dir, true, &tune)
              << "\n";
    return 0;
  }
  ao.exe = own_binary();
  return run_tuned_ablation(spec, ao);
}

}  // namespace

int ablate_main(int argc, char** argv) {
  cxxopts::Options opts("lmlab ablate",
                        "Run an ablation: every variant x seed of a spec, then a report "
                        "with tables and plots.\nusage: lmlab ablate SPEC [--jobs N] [--out DIR]");
  AblateOptions ao;
  opts.add_options()("jobs", "runs at a time", cxxopts::value(ao.jobs)->default_value("1"))(
      "threads", "threads per run (default: cores / jobs)",
      cxxopts::value(ao.threads)->default_value("0"))(
      "out", "output directory (default: runs/ablations/<spec name>)", cxxopts::value(ao.out_dir))(
      "dry-run", "list the runs and their overrides; run nothing")(
      "report-only", "rebuild the report from the runs on disk; run nothing")(
      "emit-slurm",
      "write a Slurm job array (one task per run) and its report script into DIR; "
      "run nothing",
      cxxopts::value<std::string>())("quiet", "no progress output");
  cxxopts::ParseResult r;
  if (!parse(opts, argc, argv, r, 1)) return 0;
  if (ao.jobs < 1) throw UsageError("--jobs must be >= 1");
  if (ao.threads < 0) throw UsageError("--threads must be >= 0");
  ao.quiet = r.count("quiet") > 0;
  const AblationSpec spec = load_ablation_spec(r.unmatched()[0]);
  if (ao.out_dir.empty()) ao.out_dir = "runs/ablations/" + spec.name;
  // One spelling (absolute, normal) for the runs' dirs and the train.run_dir in their config.yaml,
  // which a re-run compares: "runs/x", "./runs/x/" and "$PWD/runs/x" are one output. Slurm tasks,
  // which may start in any directory, need it absolute too.
  ao.out_dir = normal_dir(ao.out_dir);
  if (spec.tune.active()) return ablate_tuned(spec, ao, r);
  const std::vector<AblationRun> runs = plan_ablation(spec, ao.out_dir);
  if (r.count("dry-run")) {
    check_ablation_dir(spec, runs, ao.out_dir);
    print_ablation_plan(spec, runs);
    return 0;
  }
  if (r.count("report-only")) {
    check_ablation_dir(spec, runs, ao.out_dir);
    if (!std::filesystem::exists(ao.out_dir + "/ablation.json"))
      throw Error("[ablate] " + ao.out_dir + " holds no runs of '" + spec.name + "' yet");
    std::cout << "ablate: report in " << write_ablation_report(spec, runs, ao.out_dir) << "\n";
    return 0;
  }
  ao.exe = own_binary();
  if (r.count("emit-slurm")) {
    const std::string dir = r["emit-slurm"].as<std::string>();
    const int n = emit_slurm(spec, runs, ao, dir);
    std::cout << "ablate: " << spec.name << ": " << n << " Slurm array tasks in " << dir
              << "/tasks\n  submit:  sbatch " << dir << "/ablation.sbatch\n  then:    bash " << dir
              << "/report.sh   (once every task has finished)\n";
    return 0;
  }
  return run_ablation(spec, runs, ao);
}

namespace {

// (name, config) of every variant `lmlab bench PATH` runs: a config's own, or a spec's variants
// (those --variant picked, when any).
std::vector<std::pair<std::string, TrainConfig>> bench_configs(
    const std::string& path, const std::vector<std::string>& picked,
    const std::vector<std::string>& sets) {
  std::vector<std::pair<std::string, TrainConfig>> todo;
  if (!is_ablation_spec(path)) {
    if (!picked.empty())
      throw UsageError("--variant needs an ablation spec; " + path + " is a config");
    todo.emplace_back(std::filesystem::path(path).stem().string(), load_config(path, sets));
    return todo;
  }
  const AblationSpec spec = load_ablation_spec(path);
  for (const std::string& p : picked) {
    bool found = false;
    for (const AblationVariant& v : spec.variants) found |= v.name == p;
    if (!found)
      throw UsageError("--variant " + p + ": " + path + " has no such variant (see --list)");
  }
  for (const AblationVariant& v : spec.variants) {
    if (!picked.empty() && std::find(picked.begin(), picked.end(), v.name) == picked.end())
      continue;
    std::vector<std::string> all = override_strings(spec, v);
    all.insert(all.end(), sets.begin(), sets.end());
    todo.emplace_back(v.name, load_config(spec.base, all));
  }
  return todo;
}

}  // namespace

int bench_main(int argc, char** argv) {
  cxxopts::Options opts(
      "lmlab bench",
      "Tokens/s, GFLOP/s and MFU of full training steps (forward, "
      "backward, clip, optimizer).\nusage: lmlab bench CONFIG|SPEC [--variant NAME]... "
      "[--steps N] [--threads N]\nA spec (configs/bench/*.yaml) runs every variant "
      "unless --variant picks some.");
  std::vector<std::string> sets, picked;
  BenchOptions bo;
  int64_t threads = -1;
  opts.add_options()("set", "override a config key (repeatable)", cxxopts::value(sets))(
      "variant", "run only this variant of a spec (repeatable)", cxxopts::value(picked))(
      "steps", "timed steps; the median is reported",
      cxxopts::value(bo.steps)->default_value("20"))("warmup", "untimed steps first",
                                                     cxxopts::value(bo.warmup)->default_value("3"))(
      "threads", "threads (default: train.threads of the config; 0: all cores)",
      cxxopts::value(threads))("peak-n", "size of the sgemm that measures the peak (0: skip)",
                               cxxopts::value(bo.peak_n)->default_value("2048"))(
      "json", "one JSON line per variant instead of the text report")(
      "list", "print the variant names and exit")(
      "resolved", "print the resolved config as JSON (tools/bench_torch.py reads it) and exit");
  cxxopts::ParseResult r;
  if (!parse(opts, argc, argv, r, 1)) return 0;
  if (bo.steps < 1) throw UsageError("--steps must be >= 1");
  if (bo.warmup < 0) throw UsageError("--warmup must be >= 0");
  if (bo.peak_n < 0) throw UsageError("--peak-n must be >= 0");
  const std::string path = r.unmatched()[0];
  std::vector<std::pair<std::string, TrainConfig>> todo = bench_configs(path, picked, sets);
  if (threads >= 0)
    for (auto& [name, cfg] : todo) cfg.train.threads = threads;
  if (r.count("list")) {
    for (const auto& [name, cfg] : todo) std::cout << name << "\n";
    return 0;
  }
  if (r.count("resolved")) {
    if (todo.size() != 1) throw UsageError("--resolved needs one variant (--variant NAME)");
    std::cout << bench_config_json(todo[0].second) << "\n";
    return 0;
  }
  for (const auto& [name, cfg] : todo) {
    const BenchResult res = run_bench(cfg, name, bo);
    std::cout << (r.count("json") ? bench_json(res) + "\n" : format_bench(res)) << std::flush;
  }
  return 0;
}

}  // namespace lmlab::train::cli
