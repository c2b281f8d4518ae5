// The CLI's subcommands, one function each: parse options (cxxopts), run, return the exit code.
#pragma once
#include <cstddef>
#include <cxxopts.hpp>
#include <stdexcept>

namespace lmlab::train::cli {

// A command-line mistake (missing argument, bad option value): exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Parses argv with `opts` (adding -h/--help); prints the help and returns false for --help;
// throws UsageError unless exactly `positional` positional arguments remain.
bool parse(cxxopts::Options& opts, int argc, char** argv, cxxopts::ParseResult& out,
           size_t positional);

int train_main(int argc, char** argv);
int eval_main(int argc, char** argv);
int sample_main(int argc, char** argv);
int ablate_main(int argc, char** argv);
int bench_main(int argc, char** argv);
int options_main(int argc, char** argv);    // train/cli/options.cpp
int prepare_main(int argc, char** argv);    // train/cli/data_commands.cpp
int tokenizer_main(int argc, char** argv);  // train/cli/data_commands.cpp

}  // namespace lmlab::train::cli
