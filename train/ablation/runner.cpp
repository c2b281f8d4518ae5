// The ablation runner: plans are checked against the output directory, then each unfinished run
// is an `lmlab train ... --resume` child process (ablation/pool.h; stdout/stderr in
// <run>/train.log), up to `jobs` at a time, with a progress line and an ETA (ablation/progress.h).
// SIGINT/SIGTERM reach the children (they checkpoint) and the runner stops launching; re-running
// the command resumes.
#include "train/ablation/runner.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "autograd/error.h"
#include "data/atomic_write.h"
#include "data/read_file.h"
#include "train/ablation/pool.h"
#include "train/ablation/progress.h"
#include "train/ablation/report.h"
#include "train/common/signal_scope.h"

namespace lmlab::train {

namespace fs = std::filesystem;

namespace {

// The file's text, empty when it cannot be read (a run that has not written it yet).
std::string read_text(const std::string& path) { return data::read_whole_file(path).value_or(""); }

// A run's progress from the last data row of its metrics.csv (step + 1 and the elapsed seconds
// in its last column); step -1 when there is none yet.
RunProgress read_progress(const AblationRun& run) {
  RunProgress p;
  p.max_iters = run.config.train.max_iters;
  std::ifstream in(run.dir + "/metrics.csv", std::ios::binary | std::ios::ate);
  if (!in) return p;
  const std::streamoff size = in.tellg();
  in.seekg(std::max<std::streamoff>(0, size - 512));
  std::string chunk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!chunk.empty() && chunk.back() == '\n') chunk.pop_back();
  const std::string line =
      chunk.substr(chunk.rfind('\n') == std::string::npos ? 0 : chunk.rfind('\n') + 1);
  if (line.empty() || !std::isdigit(static_cast<unsigned char>(line[0]))) return p;
  try {
    const int64_t step = std::stoll(line.substr(0, line.find(','))) + 1;
    const double elapsed = std::stod(line.substr(line.rfind(',') + 1));
    p.step = step;
    p.elapsed = elapsed;
  } catch (const std::exception&) {
    // a row being written: no progress yet
  }
  return p;
}

std::string log_tail(const std::string& log, size_t lines) {
  std::istringstream in(read_text(log));
  std::vector<std::string> all;
  for (std::string l; std::getline(in, l);) all.push_back(l);
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i)
    out += "    " + all[i] + "\n";
  return out;
}

}  // namespace

RunState run_state(const AblationRun& run) {
  const std::string result = run.dir + "/result.json";
  if (fs::exists(result)) {
    try {
      const nlohmann::json j = nlohmann::json::parse(read_text(result));
      if (j.value("diverged", false)) return RunState::Diverged;
      if (j.value("steps", int64_t(-1)) >= run.config.train.max_iters) return RunState::Finished;
    } catch (const std::exception&) {
      // unreadable: run it again (the trainer rewrites it)
    }
  }
  if (fs::exists(run.dir + "/error.txt")) return RunState::Failed;
  return fs::exists(run.dir + "/ckpt.safetensors") ? RunState::Partial : RunState::Pending;
}

const char* run_state_name(RunState s) {
  switch (s) {
    case RunState::Pending: return "pending";
    case RunState::Partial: return "interrupted";
    case RunState::Finished: return "finished";
    case RunState::Diverged: return "diverged";
    case RunState::Failed: return "failed";
  }
  return "?";
}

void check_ablation_dir(const AblationSpec& spec, const std::vector<AblationRun>& runs,
                        const std::string& out) {
  if (!fs::exists(out)) return;
  if (!fs::is_directory(out))
    throw Error("[ablate] --out " + out + " exists and is not a directory");
  const std::string meta = out + "/ablation.json";
  if (fs::exists(meta)) {
    std::string other;
    try {
      other = nlohmann::json::parse(read_text(meta)).value("name", std::string());
    } catch (const std::exception&) {
      throw Error("[ablate] " + meta + " is corrupt; delete it if " + out +
                  " holds this ablation's runs");
    }
    if (other != spec.name)
      throw Error("[ablate] " + out + " holds the runs of another ablation ('" + other + "', see " +
                  meta + "); choose another --out for '" + spec.name + "'");
  } else if (!fs::is_empty(out)) {
    throw Error("[ablate] " + out +
                " is not empty and holds no ablation.json: it is not an lmlab "
                "ablation's output; choose another --out (or an empty directory)");
  }
  for (const AblationRun& r : runs) {
    const std::string cfg_path = r.dir + "/config.yaml";
    if (!fs::exists(cfg_path)) continue;
    TrainConfig disk;
    try {
      disk = load_config(cfg_path);
    } catch (const Error& e) {
      throw Error("[ablate] " + cfg_path + " (a run of this ablation) cannot be read: " + e.what());
    }
    TrainConfig want = r.config;
    want.model.vocab_size = disk.model.vocab_size;  // the trainer fills it from the tokenizer
    want.train.threads = disk.train.threads;
    want.source = disk.source;
    // The same directory spelt another way (relative, "./", a trailing slash) is the same run.
    if (normal_dir(disk.train.run_dir) == normal_dir(want.train.run_dir))
      want.train.run_dir = disk.train.run_dir;
    const std::string a = to_yaml(disk), b = to_yaml(want);
    if (a != b) {
      const auto [on_disk, in_spec] = first_yaml_difference(a, b);
      throw Error("[ablate] run " + r.dir + " was made with a different config than " +
                  spec.source + " now gives variant '" + r.variant + "' seed " +
                  std::to_string(r.seed) + ": " + on_disk + " (on disk) vs " + in_spec +
                  " (spec); use another --out, or delete that run to redo it");
    }
  }
}

// The child's command line: the base config with the run's overrides, resumable.
std::vector<std::string> train_command(const AblationSpec& spec, const AblationRun& run,
                                       const std::string& exe) {
  std::vector<std::string> args{exe, "train", spec.base};
  for (const std::string& s : run.sets) args.insert(args.end(), {"--set", s});
  args.insert(args.end(), {"--resume", "--no-plot"});
  return args;
}

void prepare_ablation_dir(const AblationSpec& spec, const std::vector<AblationRun>& runs,
                          const std::string& out) {
  check_ablation_dir(spec, runs, out);
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) throw Error("[ablate] cannot create " + out + ": " + ec.message());
  nlohmann::json meta{{"name", spec.name}, {"spec", spec.source}, {"base", spec.base}};
  data::write_file_atomic(out + "/ablation.json", meta.dump(2) + "\n", "ablate");
  if (!spec.source.empty())
    data::write_file_atomic(out + "/spec.yaml", read_text(spec.source), "ablate");
}

namespace {

// One invocation of `lmlab ablate`: the runs left to do, the child pool, the counts and the
// output. run() starts runs up to --jobs, forwards a stop signal to the children once, records the
// children that exited and prints the progress line, until every run has ended (after a stop
// signal: until the running children have checkpointed and exited). finish() writes the report.
class AblationLoop {
 public:
  // `sweep`: the runs are a tuning sweep (spec.tune), not the variants' seeds.
  AblationLoop(const AblationSpec& spec, const std::vector<AblationRun>& runs,
               const AblateOptions& opt, bool sweep = false);
  void print_plan() const;
  void run();
  // Says how the runs ended when not all did; returns the exit code: 0 all finished or diverged,
  // 1 some failed, 130 interrupted.
  int end();

 private:
  static bool stopping() { return StopSignalScope::received() != 0; }
  AblationCounts counts() const { return {done_, diverged_, failed_, runs_.size()}; }
  void start_runs();
  void record(const ChildPool::Exited& child);
  std::string failure(const AblationRun& r, int code);
  void print_progress();

  const AblationSpec& spec_;
  const std::vector<AblationRun>& runs_;
  const AblateOptions& opt_;
  const bool sweep_;
  const int jobs_, threads_;
  const bool tty_;
  std::vector<size_t> todo_;  // indices of the runs to start, in order; todo_[next_] is next
  size_t next_ = 0;
  int done_ = 0, diverged_ = 0, failed_ = 0;
  std::vector<double> durations_;  // seconds per run finished in this invocation
  ChildPool pool_;
  bool forwarded_ = false;  // the stop signal has been sent to the children
  std::chrono::steady_clock::time_point last_print_ =
      std::chrono::steady_clock::now() - std::chrono::hours(1);
};

int threads_per_run(const AblateOptions& opt) {
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  return opt.threads > 0 ? opt.threads : std::max(1, cores / std::max(1, opt.jobs));
}

AblationLoop::AblationLoop(const AblationSpec& spec, const std::vector<AblationRun>& runs,
                           const AblateOptions& opt, bool sweep)
    : spec_(spec),
      runs_(runs),
      opt_(opt),
      sweep_(sweep),
      jobs_(std::max(1, opt.jobs)),
      threads_(threads_per_run(opt)),
      tty_(!opt.quiet && isatty(fileno(stdout))),
      pool_(jobs_) {
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunState s = run_state(runs[i]);
    if (s == RunState::Finished || s == RunState::Diverged) {
      ++done_;
      diverged_ += s == RunState::Diverged;
    } else {
      todo_.push_back(i);
    }
  }
}

void AblationLoop::print_plan() const {
  if (opt_.quiet) return;
  std::cout << "ablate: " << spec_.name << ": " << spec_.variants.size() << " variants x ";
  if (sweep_)
    std::cout << spec_.tune.values.size() << " values of " << spec_.tune.key
              << " (tuning sweep, seed " << spec_.tune.seed << ")";
  else
    std::cout << spec_.seeds.size() << " seeds";
  std::cout << " = " << runs_.size() << " runs in " << opt_.out_dir << "; " << done_
            << " already done, " << todo_.size() << " to run, " << jobs_ << " at a time, "
            << threads_ << " thread" << (threads_ > 1 ? "s" : "") << " each\n";
}

void AblationLoop::run() {
  // Ctrl-C is recorded (and forwarded to the children) until the runs are over; the previous
  // handlers come back then, or on an exception (the pool then stops its children).
  const StopSignalScope signals;
  // After a stop signal nothing new starts: the loop ends when the running children have exited.
  while ((next_ < todo_.size() && !stopping()) || !pool_.empty()) {
    start_runs();
    if (stopping() && !forwarded_) {
      pool_.signal_all(SIGINT);  // each child checkpoints and exits 130
      forwarded_ = true;
    }
    for (const ChildPool::Exited& child : pool_.reap()) record(child);
    print_progress();
    if (!pool_.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

void AblationLoop::start_runs() {
  std::error_code ec;
  while (!stopping() && next_ < todo_.size() && !pool_.full()) {
    const size_t i = todo_[next_++];
    const AblationRun& r = runs_[i];
    fs::create_directories(r.dir, ec);
    fs::remove(r.dir + "/error.txt", ec);
    pool_.start(i, train_command(spec_, r, opt_.exe), r.dir + "/train.log", threads_);
  }
}

// Counts a child that exited and prints how its run ended.
void AblationLoop::record(const ChildPool::Exited& child) {
  const AblationRun& r = runs_[child.id];
  const RunState s = run_state(r);
  std::string what;
  if (s == RunState::Finished || s == RunState::Diverged) {
    ++done_;
    durations_.push_back(child.seconds);
    const nlohmann::json j = nlohmann::json::parse(read_text(r.dir + "/result.json"));
    if (s == RunState::Diverged) {
      ++diverged_;
      what = "diverged at step " + std::to_string(j.value("diverged_step", int64_t(0)));
    } else {
      char buf[64];
      std::snprintf(buf, sizeof buf, "val %.4f", j.value("final_val_loss", 0.0));
      what = buf;
    }
  } else if (child.code == 130 || stopping()) {
    what = "interrupted (resumable)";
  } else {
    what = failure(r, child.code);
  }
  if (opt_.quiet) return;
  if (tty_) std::cout << "\r\033[K";
  const std::string label = r.variant + (sweep_ ? "/tune=" + r.tune_value : "");
  std::cout << run_ended_line(counts(), label, r.seed, what, child.seconds) << std::flush;
}

// A run that failed: counted, its error.txt written (the exit code and the log's tail).
std::string AblationLoop::failure(const AblationRun& r, int code) {
  ++failed_;
  const std::string log = r.dir + "/train.log";
  data::write_file_atomic(r.dir + "/error.txt",
                          "exit code " + std::to_string(code) + "\n" + log_tail(log, 20), "ablate");
  return "FAILED (exit " + std::to_string(code) + "); see " + log + ":\n" + log_tail(log, 5);
}

// The progress line, every second on a terminal (rewritten in place), every 30 s otherwise.
void AblationLoop::print_progress() {
  const auto now = std::chrono::steady_clock::now();
  if (opt_.quiet || pool_.empty() || now - last_print_ < std::chrono::seconds(tty_ ? 1 : 30))
    return;
  last_print_ = now;
  std::vector<RunProgress> running;
  std::vector<std::string> labels;
  for (const ChildPool::Child& c : pool_.running()) {
    const AblationRun& r = runs_[c.id];
    running.push_back(read_progress(r));
    labels.push_back(
        running_label(r.variant + (sweep_ ? "/tune=" + r.tune_value : ""), r.seed, running.back()));
  }
  const std::optional<double> eta = ablation_eta(durations_, running, todo_.size() - next_, jobs_);
  const std::string line = progress_line(counts(), labels, eta, stopping());
  if (tty_)
    std::cout << "\r\033[K" << line.substr(0, 160) << std::flush;
  else
    std::cout << line << "\n" << std::flush;
}

int AblationLoop::end() {
  if (tty_) std::cout << "\r\033[K" << std::flush;
  if (stopping()) {
    std::cerr << "ablate: interrupted (signal " << StopSignalScope::received() << "): " << done_
              << "/" << runs_.size()
              << " runs done, the others checkpointed; run the same command again to resume\n";
    return 130;
  }
  if (failed_) {
    std::cerr << "ablate: " << failed_
              << " run(s) failed (see their train.log / error.txt); run the "
              << "same command again to retry them\n";
    return 1;
  }
  return 0;
}

}  // namespace

int run_ablation(const AblationSpec& spec, const std::vector<AblationRun>& runs,
                 const AblateOptions& opt, const TuneResult* tune) {
  prepare_ablation_dir(spec, runs, opt.out_dir);
  AblationLoop ablation(spec, runs, opt);
  ablation.print_plan();
  ablation.run();
  const int code = ablation.end();
  const std::string report = write_ablation_report(spec, runs, opt.out_dir, true, tune);
  if (!opt.quiet) std::cout << "ablate: report in " << report << "\n";
  return code;
}

AblationSpec tuned_spec(const AblationSpec& spec, const std::vector<AblationRun>& sweep,
                        const std::string& out_dir, TuneResult* tune) {
  *tune = read_tune_result(spec, sweep, out_dir);
  if (!tune->complete())
    throw Error("[ablate] the tuning sweep of '" + spec.name + "' in " + out_dir +
                " has not finished: run `lmlab ablate " + spec.source + "` to finish it");
  return with_tuned_values(spec, tuned_values(*tune));
}

int run_tuned_ablation(const AblationSpec& spec, const AblateOptions& opt) {
  const std::vector<AblationRun> sweep = plan_tune_runs(spec, opt.out_dir);
  prepare_ablation_dir(spec, sweep, opt.out_dir);
  AblationLoop tuning(spec, sweep, opt, true);
  tuning.print_plan();
  tuning.run();
  if (const int code = tuning.end(); code != 0) return code;  // failed or interrupted: re-run
  TuneResult tune;
  const AblationSpec tuned = tuned_spec(spec, sweep, opt.out_dir, &tune);
  if (!opt.quiet) {
    std::cout << "ablate: tuned " << spec.tune.key << ":";
    for (const TunedVariant& v : tune.variants) std::cout << " " << v.variant << " " << v.picked;
    std::cout << "\n";
  }
  return run_ablation(tuned, plan_ablation(tuned, opt.out_dir), opt, &tune);
}

}  // namespace lmlab::train
