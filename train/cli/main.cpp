// The lmlab command-line interface. Each subcommand parses its own options with cxxopts; an
// lmlab::Error becomes one line on stderr and exit code 1, a usage error exit code 2; a diverged
// run exits 3 and an interrupted one 130.
#include <unistd.h>

#include <cstdlib>
#include <cxxopts.hpp>
#include <iostream>
#include <new>

#include "autograd/error.h"
#include "autograd/threads.h"
#include "train/cli/commands.h"
#include "train/dist/distributed.h"

namespace {

const char* kUsage =
    "usage: lmlab <command> [options]\n"
    "\n"
    "commands:\n"
    "  train CONFIG   train a model from a YAML config (--set k=v, --resume, --run-dir DIR)\n"
    "  eval CKPT      validation loss of a checkpoint on the whole validation split\n"
    "  sample CKPT    generate text from a checkpoint with a KV cache\n"
    "  ablate SPEC    run every variant x seed of an ablation spec, then write its report\n"
    "  bench CONFIG   tokens/s, GFLOP/s and MFU of training steps (configs/bench/*.yaml)\n"
    "  options        every model option: type, default, range, meaning (--json, --markdown)\n"
    "  prepare CONFIG tokenize a config's corpus once into train.bin / val.bin (data.format bin)\n"
    "  tokenizer train CORPUS --vocab-size N --out FILE   learn a byte-level BPE (tokenizer.json)\n"
    "\n"
    "Run `lmlab <command> --help` for a command's options.\n";

}  // namespace

namespace {
int run(int argc, char** argv);
bool g_error =
    false;  // run() ended in an error (not a diverged or interrupted run: all ranks agree on those)
}  // namespace

// Under an MPI launcher every rank runs main: join the world first, leave it at the end. An error
// on some ranks only would leave the others waiting in a collective, so any error ends the whole
// job (MPI_Abort) after its message, which names the rank.
int main(int argc, char** argv) {
  const int rc = run(argc, argv);
  if (g_error && lmlab::train::dist::size() > 1) lmlab::train::dist::abort(rc);
  lmlab::train::dist::finalize();
  return rc;
}

namespace {
// Marks the run as failed and returns the message prefix naming the rank ("rank 1: ") under MPI.
std::string failed() {
  g_error = true;
  return lmlab::train::dist::size() > 1
             ? "rank " + std::to_string(lmlab::train::dist::rank()) + ": "
             : "";
}

// OpenMP threads that spin while waiting made 2-thread runs 4-15x slower on shared machines
// (docs/recipe.md), and threads that sleep at once pay a futex wake-up for each of the thousands
// of parallel regions in a step (~12% of a small model's step, docs/PERFORMANCE.md). So spin
// briefly (GOMP_SPINCOUNT=10000, a few microseconds), then sleep. OpenBLAS falls back to generic
// (Prescott) kernels on CPUs it does not know, ~5x slower: pick the matching family
// (OPENBLAS_CORETYPE; the core in use is printed by `lmlab train` and kept in result.json).
// libgomp and OpenBLAS read these when they load, so set them and re-exec once; values the user
// set are respected. Returns only when no re-exec was needed or it failed (then run as we are).
void reexec_with_tuned_environment(char** argv) {
  bool reexec = false;
  if (!std::getenv("OMP_WAIT_POLICY") && !std::getenv("GOMP_SPINCOUNT")) {
    setenv("GOMP_SPINCOUNT", "10000", 1);
    reexec = true;
  }
  if (!std::getenv("OPENBLAS_CORETYPE")) {
    const std::string core = lmlab::suggest_blas_core();
    if (!core.empty()) {
      setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
      reexec = true;
    }
  }
  if (reexec) execv("/proc/self/exe", argv);
}

void print_version() {
#ifdef LMLAB_WITH_CUDA
  const bool cuda = true;
#else
  const bool cuda = false;
#endif
  std::cout << "lmlab 0.1.0 (CUDA backend " << (cuda ? "built" : "not built")
            << ", MPI data parallelism "
            << (lmlab::train::dist::mpi_built() ? "built" : "not built") << ")\n";
}

// The command's exit code; an unknown command prints the usage (2).
int dispatch(const std::string& cmd, int argc, char** argv) {
  namespace cli = lmlab::train::cli;
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    std::cout << kUsage;
    return 0;
  }
  if (cmd == "--version") {
    print_version();
    return 0;
  }
  if (cmd == "train") return cli::train_main(argc - 1, argv + 1);
  if (cmd == "eval") return cli::eval_main(argc - 1, argv + 1);
  if (cmd == "sample") return cli::sample_main(argc - 1, argv + 1);
  if (cmd == "ablate") return cli::ablate_main(argc - 1, argv + 1);
  if (cmd == "bench") return cli::bench_main(argc - 1, argv + 1);
  if (cmd == "options") return cli::options_main(argc - 1, argv + 1);
  if (cmd == "prepare") return cli::prepare_main(argc - 1, argv + 1);
  if (cmd == "tokenizer") return cli::tokenizer_main(argc - 1, argv + 1);
  std::cerr << "lmlab: unknown command '" << cmd << "'\n" << kUsage;
  return 2;
}

int run(int argc, char** argv) {
  reexec_with_tuned_environment(argv);
  if (argc < 2) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string cmd = argv[1];
  try {
    lmlab::train::dist::init(&argc, &argv);
    if (lmlab::train::dist::active() && cmd != "train")
      throw lmlab::Error("[dist] only `lmlab train` runs as data-parallel ranks; run `lmlab " +
                         cmd + "` without mpirun (docs/distributed.md)");
    return dispatch(cmd, argc, argv);
  } catch (const cxxopts::exceptions::exception& e) {
    std::cerr << "lmlab " << cmd << ": " << e.what() << " (see lmlab " << cmd << " --help)\n";
    return 2;
  } catch (const lmlab::train::cli::UsageError& e) {
    std::cerr << "lmlab " << cmd << ": " << e.what() << " (see lmlab " << cmd << " --help)\n";
    return 2;
  } catch (const lmlab::Error& e) {
    std::cerr << failed() + "lmlab " + cmd + ": error: " + e.what() + "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << failed() << "lmlab " << cmd
              << ": error: out of memory (the model, batch or corpus is too "
                 "large for this machine; check model.n_embd / n_layer and train.batch_size)\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << failed() + "lmlab " + cmd + ": unexpected error: " + e.what() + "\n";
    return 1;
  }
}

}  // namespace
