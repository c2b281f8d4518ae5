// Where the PyTorch reference fixtures live (tests/fixtures/torch, written by
// tools/torch_reference.py), for the CPU and the CUDA parity suites.
#pragma once
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

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

}  // namespace lmlab::test
