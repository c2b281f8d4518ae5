// libFuzzer harness for ablation specs (parse_ablation_spec): arbitrary YAML text.
// Oracle: it returns or throws lmlab::Error (anything else escapes and aborts); a spec that parses
// has at least one variant and one seed, unique variant names usable as directory names, and a
// baseline among them.
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>

#include "autograd/error.h"
#include "train/ablation/spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  lmlab::train::AblationSpec spec;
  try {
    spec = lmlab::train::parse_ablation_spec(text, "fuzz/spec.yaml");
  } catch (const lmlab::Error&) {
    return 0;  // a clear error is the right answer to a wrong spec
  }
  if (spec.variants.empty() || spec.seeds.empty()) std::abort();
  std::set<std::string> names;
  for (const lmlab::train::AblationVariant& v : spec.variants) {
    if (v.name.empty() || v.name.find('/') != std::string::npos || v.name[0] == '.') std::abort();
    if (!names.insert(v.name).second) std::abort();
  }
  if (!names.count(spec.baseline)) std::abort();
  return 0;
}
