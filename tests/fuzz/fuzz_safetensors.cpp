// libFuzzer harness for the checkpoint reader: arbitrary bytes as a safetensors file
// (load_safetensors, then load_checkpoint's metadata checks). The reader takes a path, so each
// input is written to a scratch file first. Oracle: only lmlab::Error may escape; whatever loads
// writes back (save_safetensors) and reads again into the same tensors and metadata.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "autograd/error.h"
#include "data/tokenizer.h"
#include "train/io/checkpoint.h"
#include "train/io/safetensors.h"

namespace {

[[noreturn]] void bug(const std::string& what) {
  std::cerr << "fuzz_safetensors: " << what << "\n";
  std::abort();
}

// A scratch directory for this process (in memory when /dev/shm exists), removed at exit.
struct Scratch {
  std::string dir;
  Scratch() {
    const std::filesystem::path base =
        std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
    dir = (base / ("lmlab_fuzz_st_" + std::to_string(::getpid()))).string();
    std::filesystem::create_directories(dir);
  }
  ~Scratch() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

const Scratch& scratch() {
  static const Scratch s;
  return s;
}

// Whether two loaded files hold the same metadata and the same tensors, bit for bit.
bool same(const lmlab::train::SafeTensors& a, const lmlab::train::SafeTensors& b) {
  if (a.metadata != b.metadata || a.tensors.size() != b.tensors.size()) return false;
  for (const auto& [name, t] : a.tensors) {
    if (!b.contains(name)) return false;
    const lmlab::Tensor& u = b.tensors.at(name);
    if (t.dtype() != u.dtype() || t.shape() != u.shape()) return false;
    const size_t bytes = size_t(t.numel()) * lmlab::dtype_size(t.dtype());
    if (bytes && std::memcmp(t.raw_data(), u.raw_data(), bytes) != 0) return false;
  }
  return true;
}

}  // namespace

// One input: the bytes of a would-be checkpoint file.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = scratch().dir + "/in.safetensors";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  }
  lmlab::train::SafeTensors st;
  try {
    st = lmlab::train::load_safetensors(path);
  } catch (const lmlab::Error&) {
    return 0;
  }
  const std::string copy = scratch().dir + "/copy.safetensors";
  try {
    lmlab::train::save_safetensors(copy, st);
  } catch (const lmlab::Error& e) {
    bug(std::string("a file that loads does not save: ") + e.what());
  }
  if (!same(st, lmlab::train::load_safetensors(copy)))
    bug("save/load round trip changed the contents");
  try {
    const lmlab::train::Checkpoint c = lmlab::train::load_checkpoint(path);
    lmlab::data::Tokenizer::from_serialized(c.tokenizer);
  } catch (const lmlab::Error&) {
  }
  return 0;
}
