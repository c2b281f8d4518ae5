#include "train/plot.h"

#include <cstdlib>
#include <filesystem>
#include <iostream>

namespace lmlab {

// The tools/ folder of the source tree this binary was built from (a compile definition), or
// ./tools when run from a moved tree.
static std::string tools_dir() {
  const std::string built = std::string(LMLAB_SOURCE_DIR) + "/tools";
  return std::filesystem::exists(built + "/plot_metrics.py") ? built : "tools";
}

std::string plot_loss_curve(const std::string& metrics_csv, const std::string& png,
                            const std::string& title) {
  const std::string cmd = "/usr/bin/python3 '" + tools_dir() + "/plot_metrics.py' '" + metrics_csv +
                          "' '" + png + "' --title '" + title + "'";
  if (std::system((cmd + " 2>/dev/null").c_str()) == 0) return png;
  std::cerr << "plot: could not draw " << png << " (needs python3-matplotlib); run: " << cmd << "\n";
  return "";
}

}  // namespace lmlab
