// The PyTorch reference fixtures (tests/fixtures/torch, written by tools/torch_reference.py) for
// the CPU and the CUDA parity suites: where they live and the model config each one holds.
#pragma once
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "nn/options.h"
#include "train/io/safetensors.h"

namespace lmlab::test {

// $LMLAB_SOURCE_DIR, else the compiled-in source dir, else the first of ./, ../, ../../, ...
// holding tests/fixtures/torch.
inline std::filesystem::path torch_fixture_dir() {
  namespace fs = std::filesystem;
  const fs::path rel = "tests/fixtures/torch";
  if (const char* env = std::getenv("LMLAB_SOURCE_DIR")) return fs::path(env) / rel;
#ifdef LMLAB_SOURCE_DIR
  if (fs::is_directory(fs::path(LMLAB_SOURCE_DIR) / rel)) return fs::path(LMLAB_SOURCE_DIR) / rel;
#endif
  fs::path up = ".";
  for (int i = 0; i < 5; ++i, up /= "..")
    if (fs::is_directory(up / rel)) return up / rel;
  return rel;
}

// Every fixture file, sorted.
inline std::vector<std::string> torch_fixture_files() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(torch_fixture_dir(), ec))
    if (e.path().extension() == ".safetensors") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

// The fixture's ModelConfig: every metadata key that names a model option (nn/options.h) sets it;
// a model option the fixture lacks keeps the table's default (a fixture written before the option
// existed), so adding an option never breaks the committed fixtures. The other keys must be
// "fixture", "torch_version" or "adamw.*"; anything else is an error naming the file.
inline nn::ModelConfig fixture_config(const train::SafeTensors& st) {
  std::map<std::string, std::string> options;
  for (const auto& [key, value] : st.metadata)
    if (key != "fixture" && key != "torch_version" && key.rfind("adamw.", 0) != 0)
      options[key] = value;
  nn::ModelConfig c = nn::model_config_from_text(options, st.path, nn::model_defaults());
  if (c.n_kv_head == 0) c.n_kv_head = c.n_head;
  return c;
}

}  // namespace lmlab::test
