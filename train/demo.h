// `lmlab demo`: a small end-to-end job that exercises the whole core (tensors, ops, tape) until the
// trainer and the ablation runner land: a byte-level MLP language model (Bengio et al. 2003) on
// the default corpus, trained with SGD, writing metrics.csv and a loss-curve PNG.
#pragma once
#include <cstdint>
#include <string>

namespace lmlab {

struct DemoOptions {
  std::string corpus = "/usr/share/games/fortunes";  // a text file or a directory of them
  std::string out_dir = "runs/demo";
  int64_t steps = 400;
  int64_t batch = 64;
  int64_t context = 8;  // bytes of context per prediction
  double lr = 0.3;
  uint64_t seed = 1337;
  bool plot = true;
};

// Runs the demo; returns the process exit code. Throws lmlab::Error on bad input.
int run_demo(const DemoOptions& options);

}  // namespace lmlab
