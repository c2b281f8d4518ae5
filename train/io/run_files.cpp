// Files of a run directory: the directory check on start, CSV rows kept on resume.
#include "train/io/run_files.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "autograd/error.h"

namespace lmlab::train {

namespace fs = std::filesystem;

void prepare_run_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw Error("[train] cannot create the run directory " + dir + ": " + ec.message());
  const std::string probe = dir + "/.write_test";
  std::ofstream out(probe);
  if (!out)
    throw Error("[train] the run directory " + dir + " is not writable: " + std::strerror(errno));
  out.close();
  fs::remove(probe, ec);
  // Temp files of a write that a kill -9 cut short (the file they were to replace is intact).
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    for (const char* ours :
         {"ckpt.safetensors.tmp", "config.yaml.tmp", "metrics.csv.tmp", "diagnostics.csv.tmp",
          "result.json.tmp", "diverged.json.tmp", "sample.txt.tmp"})
      if (name.rfind(ours, 0) == 0 && e.is_regular_file()) fs::remove(e.path(), ec);
  }
}

double rewind_csv(const std::string& path, int64_t keep_below, const std::string& header) {
  std::ifstream in(path);
  std::string line, kept = header + "\n";
  double elapsed = 0;
  if (in && std::getline(in, line)) {
    while (std::getline(in, line)) {
      std::istringstream row(line);
      std::string step_s;
      std::getline(row, step_s, ',');
      if (step_s.empty() || std::stoll(step_s) >= keep_below) continue;
      kept += line + "\n";
      elapsed = std::stod(line.substr(line.rfind(',') + 1));
    }
  }
  data::write_file_atomic(path, kept);
  return elapsed;
}

}  // namespace lmlab::train
