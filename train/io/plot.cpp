#include "train/io/plot.h"

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "train/common/text.h"

namespace lmlab::train {

// The tools/ folder of the source tree this binary was built from (a compile definition), or
// ./tools when run from a moved tree.
static std::string tools_dir() {
  const std::string built = std::string(LMLAB_SOURCE_DIR) + "/tools";
  return std::filesystem::exists(built + "/plot_metrics.py") ? built : "tools";
}

bool run_plot_tool(const std::string& script, const std::vector<std::string>& args,
                   std::string* command) {
  // Built by appending: GCC 12 warns falsely (-Wrestrict) on operator+ chains here.
  std::string cmd = "/usr/bin/python3 ";
  cmd.append(shell_quote(tools_dir() + "/" + script));
  for (const std::string& a : args) cmd.append(" ").append(shell_quote(a));
  std::string quiet = cmd;
  quiet.append(" >/dev/null 2>&1");
  const bool ok = std::system(quiet.c_str()) == 0;
  if (!ok && command) *command = cmd;
  return ok;
}

std::string plot_loss_curve(const std::string& metrics_csv, const std::string& png,
                            const std::string& title) {
  std::string cmd;
  if (run_plot_tool("plot_metrics.py", {metrics_csv, png, "--title", title}, &cmd)) return png;
  std::cerr << "plot: could not draw " << png << " (needs python3-matplotlib); run: " << cmd
            << "\n";
  return "";
}

}  // namespace lmlab::train
