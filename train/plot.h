// Plots through the Python tools (Debian's python3-matplotlib): the C++ side only builds the
// command line and reports what to run when matplotlib is missing.
#pragma once
#include <string>

namespace lmlab {

// Draws <run_dir>/metrics.csv into <run_dir>/loss.png with tools/plot_metrics.py. Returns the PNG
// path, or "" after printing the command to run by hand when the plot could not be drawn.
std::string plot_loss_curve(const std::string& metrics_csv, const std::string& png,
                            const std::string& title);

}  // namespace lmlab
