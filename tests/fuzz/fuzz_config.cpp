// libFuzzer harness for the config parser: YAML text plus `--set` overrides (load_config_text).
// Input: the YAML text, then each override after a NUL byte ("yaml\0optim.lr=1\0model.bias=x").
// Oracle: it returns or throws lmlab::Error (anything else escapes and aborts), and whatever
// loads writes back through to_yaml into the same config (the round trip docs/config.md promises).
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "autograd/error.h"
#include "train/config/config.h"

namespace {

// Splits `data` at NUL bytes: the YAML text first, then the overrides.
std::vector<std::string> split_at_nul(const uint8_t* data, size_t size) {
  std::vector<std::string> parts(1);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0)
      parts.emplace_back();
    else
      parts.back().push_back(char(data[i]));
  }
  return parts;
}

}  // namespace

// One input: parse, and on success check the to_yaml round trip.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<std::string> parts = split_at_nul(data, size);
  const std::vector<std::string> overrides(parts.begin() + 1, parts.end());
  lmlab::train::TrainConfig cfg;
  try {
    cfg = lmlab::train::load_config_text(parts[0], "fuzz.yaml", overrides);
  } catch (const lmlab::Error&) {
    return 0;  // a clear error is the right answer to a wrong input
  }
  const std::string yaml = lmlab::train::to_yaml(cfg);
  lmlab::train::TrainConfig back;
  try {
    back = lmlab::train::load_config_text(yaml, "fuzz.yaml");  // the same source: to_yaml names it
  } catch (const lmlab::Error& e) {
    std::cerr << "to_yaml wrote a config that does not load back: " << e.what() << "\n" << yaml;
    std::abort();
  }
  if (lmlab::train::to_yaml(back) != yaml) {
    std::cerr << "to_yaml round trip changed the config:\n"
              << yaml << "---\n"
              << lmlab::train::to_yaml(back);
    std::abort();
  }
  return 0;
}
