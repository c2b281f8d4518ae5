// The CLI's subcommands, one function each: parse options (cxxopts), run, return the exit code.
#pragma once
#include <stdexcept>

namespace lmlab::train::cli {

// A command-line mistake (missing argument, bad option value): exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int train_main(int argc, char** argv);
int eval_main(int argc, char** argv);
int sample_main(int argc, char** argv);
int ablate_main(int argc, char** argv);
int bench_main(int argc, char** argv);
int options_main(int argc, char** argv);  // train/cli/options.cpp

}  // namespace lmlab::train::cli
