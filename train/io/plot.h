// Plots through the Python tools (Debian's python3-matplotlib): the C++ side only builds the
// command line and reports what to run when matplotlib is missing.
#pragma once
#include <string>
#include <vector>

namespace lmlab::train {

// Draws <run_dir>/metrics.csv into <run_dir>/loss.png with tools/plot_metrics.py. Returns the PNG
// path, or "" after printing the command to run by hand when the plot could not be drawn.
std::string plot_loss_curve(const std::string& metrics_csv, const std::string& png,
                            const std::string& title);

// Runs tools/<script> with `args` under /usr/bin/python3. Returns true on success; otherwise
// sets `command` to the command line a person can run once matplotlib is installed.
bool run_plot_tool(const std::string& script, const std::vector<std::string>& args,
                   std::string* command = nullptr);

}  // namespace lmlab::train
