// The ablation runner: plans are checked against the output directory, then each unfinished run
// is an `lmlab train ... --resume` child process (stdout/stderr in <run>/train.log), up to
// `jobs` at a time, with a progress line and an ETA. SIGINT/SIGTERM reach the children (they
// checkpoint) and the runner stops launching; re-running the command resumes.
#include "train/ablation/runner.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "autograd/error.h"
#include "data/read_file.h"
#include "train/ablation/report.h"
#include "train/common/signal_scope.h"
#include "train/common/text.h"
#include "train/io/run_files.h"

namespace lmlab::train {

namespace fs = std::filesystem;

namespace {

// The file's text, empty when it cannot be read (a run that has not written it yet).
std::string read_text(const std::string& path) { return data::read_whole_file(path).value_or(""); }

// The last data row of a metrics.csv: {step completed, elapsed seconds}; {-1, 0} when none.
std::pair<int64_t, double> last_progress(const std::string& metrics) {
  std::ifstream in(metrics, std::ios::binary | std::ios::ate);
  if (!in) return {-1, 0.0};
  const std::streamoff size = in.tellg();
  in.seekg(std::max<std::streamoff>(0, size - 512));
  std::string chunk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!chunk.empty() && chunk.back() == '\n') chunk.pop_back();
  const std::string line =
      chunk.substr(chunk.rfind('\n') == std::string::npos ? 0 : chunk.rfind('\n') + 1);
  if (line.empty() || !std::isdigit(static_cast<unsigned char>(line[0]))) return {-1, 0.0};
  try {
    return {std::stoll(line.substr(0, line.find(','))) + 1,
            std::stod(line.substr(line.rfind(',') + 1))};
  } catch (const std::exception&) {
    return {-1, 0.0};
  }
}

// Starts one run as a child process; returns its pid.
pid_t spawn(const std::vector<std::string>& args, const std::string& log, int threads) {
  std::ofstream(log, std::ios::app) << "$ " << shell_quote(args) << "\n";
  const pid_t pid = fork();
  if (pid < 0) throw Error("[ablate] fork failed: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);  // the runner died: checkpoint and stop
    const int fd = open(log.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    const std::string t = std::to_string(threads);
    setenv("OMP_NUM_THREADS", t.c_str(), 1);
    setenv("OPENBLAS_NUM_THREADS", t.c_str(), 1);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    std::fprintf(stderr, "ablate: cannot execute %s: %s\n", argv[0], std::strerror(errno));
    _exit(127);
  }
  return pid;
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

// The child's command line: the base config with the spec's overrides, resumable.
std::vector<std::string> train_command(const AblationSpec& spec, const AblationRun& run,
                                       const std::string& exe) {
  std::vector<std::string> args{exe, "train", spec.base};
  for (const AblationVariant& v : spec.variants)
    if (v.name == run.variant)
      for (const std::string& s : override_strings(spec, v)) args.insert(args.end(), {"--set", s});
  args.insert(args.end(), {"--set", "train.seed=" + std::to_string(run.seed), "--set",
                           "train.run_dir=" + run.dir, "--resume", "--no-plot"});
  return args;
}

void prepare_ablation_dir(const AblationSpec& spec, const std::vector<AblationRun>& runs,
                          const std::string& out) {
  check_ablation_dir(spec, runs, out);
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) throw Error("[ablate] cannot create " + out + ": " + ec.message());
  nlohmann::json meta{{"name", spec.name}, {"spec", spec.source}, {"base", spec.base}};
  write_file_atomic(out + "/ablation.json", meta.dump(2) + "\n", "ablate");
  if (!spec.source.empty()) write_file_atomic(out + "/spec.yaml", read_text(spec.source), "ablate");
}

int run_ablation(const AblationSpec& spec, const std::vector<AblationRun>& runs,
                 const AblateOptions& opt) {
  const std::string out = opt.out_dir;
  prepare_ablation_dir(spec, runs, out);
  std::error_code ec;

  const int jobs = std::max(1, opt.jobs);
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = opt.threads > 0 ? opt.threads : std::max(1, cores / jobs);
  std::vector<size_t> todo;
  int done = 0, diverged = 0, failed = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunState s = run_state(runs[i]);
    if (s == RunState::Finished || s == RunState::Diverged) {
      ++done;
      diverged += s == RunState::Diverged;
    } else {
      todo.push_back(i);
    }
  }
  if (!opt.quiet)
    std::cout << "ablate: " << spec.name << ": " << spec.variants.size() << " variants x "
              << spec.seeds.size() << " seeds = " << runs.size() << " runs in " << out << "; "
              << done << " already done, " << todo.size() << " to run, " << jobs << " at a time, "
              << threads << " thread" << (threads > 1 ? "s" : "") << " each\n";

  struct Active {
    size_t run;
    pid_t pid;
    std::chrono::steady_clock::time_point start;
  };
  std::vector<Active> active;
  std::vector<double> durations;  // seconds per finished run (this invocation)
  // Ctrl-C is recorded (and forwarded to the children) until the runs are over; the previous
  // handlers come back then, or on an exception.
  std::optional<StopSignalScope> signals(std::in_place);
  auto stopping = [] { return StopSignalScope::received() != 0; };
  const bool tty = !opt.quiet && isatty(fileno(stdout));
  size_t next = 0;
  bool forwarded = false;
  auto last_print = std::chrono::steady_clock::now() - std::chrono::hours(1);
  // After a stop signal nothing new starts: the loop ends when the running children have exited.
  while ((next < todo.size() && !stopping()) || !active.empty()) {
    while (!stopping() && next < todo.size() && int(active.size()) < jobs) {
      const AblationRun& r = runs[todo[next++]];
      fs::create_directories(r.dir, ec);
      fs::remove(r.dir + "/error.txt", ec);
      active.push_back({size_t(&r - runs.data()),
                        spawn(train_command(spec, r, opt.exe), r.dir + "/train.log", threads),
                        std::chrono::steady_clock::now()});
    }
    if (stopping() && !forwarded) {
      for (const Active& a : active) kill(a.pid, SIGINT);  // each child checkpoints and exits 130
      forwarded = true;
    }
    for (size_t k = 0; k < active.size();) {
      int status = 0;
      const pid_t w = waitpid(active[k].pid, &status, WNOHANG);
      if (w == 0) {
        ++k;
        continue;
      }
      const AblationRun& r = runs[active[k].run];
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - active[k].start).count();
      const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      const RunState s = run_state(r);
      std::string what;
      if (s == RunState::Finished || s == RunState::Diverged) {
        ++done;
        durations.push_back(secs);
        nlohmann::json j = nlohmann::json::parse(read_text(r.dir + "/result.json"));
        if (s == RunState::Diverged) {
          ++diverged;
          what = "diverged at step " + std::to_string(j.value("diverged_step", int64_t(0)));
        } else {
          char buf[64];
          std::snprintf(buf, sizeof buf, "val %.4f", j.value("final_val_loss", 0.0));
          what = buf;
        }
      } else if (code == 130 || stopping()) {
        what = "interrupted (resumable)";
      } else {
        ++failed;
        write_file_atomic(
            r.dir + "/error.txt",
            "exit code " + std::to_string(code) + "\n" + log_tail(r.dir + "/train.log", 20),
            "ablate");
        what = "FAILED (exit " + std::to_string(code) + "); see " + r.dir + "/train.log:\n" +
               log_tail(r.dir + "/train.log", 5);
      }
      if (!opt.quiet) {
        if (tty) std::cout << "\r\033[K";
        std::cout << "ablate: [" << done << "/" << runs.size() << "] " << r.variant << "/seed"
                  << r.seed << ": " << what << " (" << format_duration(secs) << ")\n"
                  << std::flush;
      }
      active.erase(active.begin() + long(k));
    }
    const auto now = std::chrono::steady_clock::now();
    if (!opt.quiet && !active.empty() && now - last_print >= std::chrono::seconds(tty ? 1 : 30)) {
      last_print = now;
      // ETA: each running run's projected length from its progress, pending runs at the mean
      // length. A run's first steps include its start-up and the step-0 evaluation of the whole
      // validation split, so a projection from them is far too long (it said 28 minutes for a
      // 30-second run): until 5% of its steps are done, a run counts at the mean length of the
      // finished runs (or not at all before any has finished).
      double mean_done = 0;
      for (double d : durations) mean_done += d / double(durations.size());
      double remaining = 0, total_est = 0;
      int est_n = 0;
      std::string running;
      for (const Active& a : active) {
        const AblationRun& r = runs[a.run];
        const auto [step, elapsed] = last_progress(r.dir + "/metrics.csv");
        running += (running.empty() ? "" : ", ") + r.variant + "/seed" + std::to_string(r.seed) +
                   " " + std::to_string(std::max<int64_t>(step, 0)) + "/" +
                   std::to_string(r.config.train.max_iters);
        if (step > 0 && step >= std::max<int64_t>(10, r.config.train.max_iters / 20)) {
          const double per_step = elapsed / double(step);
          remaining += per_step * double(r.config.train.max_iters - step);
          total_est += per_step * double(r.config.train.max_iters);
          ++est_n;
        } else if (!durations.empty()) {
          remaining += std::max(0.0, mean_done - std::max(elapsed, 0.0));
        }
      }
      for (double d : durations) total_est += d, ++est_n;
      const size_t pending = todo.size() - next;
      if (est_n > 0) remaining += double(pending) * total_est / est_n;
      std::ostringstream line;
      line << "ablate: " << done << "/" << runs.size() << " done";
      if (diverged) line << " (" << diverged << " diverged)";
      if (failed) line << " (" << failed << " failed)";
      line << " | running " << running;
      if (est_n > 0) line << " | ETA " << format_duration(remaining / jobs);
      if (stopping()) line << " | stopping";
      if (tty)
        std::cout << "\r\033[K" << line.str().substr(0, 160) << std::flush;
      else
        std::cout << line.str() << "\n" << std::flush;
    }
    if (!active.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  signals.reset();
  if (tty) std::cout << "\r\033[K" << std::flush;
  const std::string report = write_ablation_report(spec, runs, out);
  if (!opt.quiet) std::cout << "ablate: report in " << report << "\n";
  if (stopping()) {
    std::cerr << "ablate: interrupted (signal " << StopSignalScope::received() << "): " << done
              << "/" << runs.size()
              << " runs done, the others checkpointed; run the same command again to resume\n";
    return 130;
  }
  if (failed) {
    std::cerr << "ablate: " << failed
              << " run(s) failed (see their train.log / error.txt); run the "
              << "same command again to retry them\n";
    return 1;
  }
  return 0;
}

}  // namespace lmlab::train
