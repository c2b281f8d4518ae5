// The lmlab command-line interface. Each subcommand parses its own options with cxxopts; an
// lmlab::Error becomes one line on stderr and exit code 1, a usage error exit code 2.
#include <cxxopts.hpp>
#include <iostream>

#include "autograd/error.h"
#include "train/demo.h"

namespace {

const char* kUsage =
    "usage: lmlab <command> [options]\n"
    "\n"
    "commands:\n"
    "  demo      train a small byte-level MLP language model on the default corpus and plot its loss\n"
    "\n"
    "Run `lmlab <command> --help` for a command's options.\n";

int demo_main(int argc, char** argv) {
  cxxopts::Options opts("lmlab demo", "Train a byte-level MLP LM on the default corpus (smoke job)");
  lmlab::DemoOptions d;
  opts.add_options()
      ("corpus", "text file or directory of text files", cxxopts::value(d.corpus)->default_value(d.corpus))
      ("out", "output directory", cxxopts::value(d.out_dir)->default_value(d.out_dir))
      ("steps", "training steps", cxxopts::value(d.steps)->default_value(std::to_string(d.steps)))
      ("batch", "sequences per step", cxxopts::value(d.batch)->default_value(std::to_string(d.batch)))
      ("lr", "initial SGD learning rate", cxxopts::value(d.lr)->default_value("0.3"))
      ("seed", "random seed", cxxopts::value(d.seed)->default_value(std::to_string(d.seed)))
      ("no-plot", "skip the PNG plot")
      ("h,help", "show this help");
  auto r = opts.parse(argc, argv);
  if (r.count("help")) {
    std::cout << opts.help();
    return 0;
  }
  if (!r.unmatched().empty()) throw cxxopts::exceptions::exception("unexpected argument " + r.unmatched()[0]);
  if (d.steps <= 0 || d.batch <= 0 || d.lr <= 0)
    throw cxxopts::exceptions::exception("--steps, --batch and --lr must be positive");
  d.plot = r.count("no-plot") == 0;
  return lmlab::run_demo(d);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string cmd = argv[1];
  try {
    if (cmd == "-h" || cmd == "--help" || cmd == "help") {
      std::cout << kUsage;
      return 0;
    }
    if (cmd == "--version") {
      std::cout << "lmlab 0.1.0\n";
      return 0;
    }
    if (cmd == "demo") return demo_main(argc - 1, argv + 1);
    std::cerr << "lmlab: unknown command '" << cmd << "'\n" << kUsage;
    return 2;
  } catch (const cxxopts::exceptions::exception& e) {
    std::cerr << "lmlab " << cmd << ": " << e.what() << " (see lmlab " << cmd << " --help)\n";
    return 2;
  } catch (const lmlab::Error& e) {
    std::cerr << "lmlab " << cmd << ": error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "lmlab " << cmd << ": unexpected error: " << e.what() << "\n";
    return 1;
  }
}
