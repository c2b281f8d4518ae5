#pragma once
#include <string>
namespace lmlab {
struct DemoOptions { std::string corpus; std::string out_dir; int steps = 300; };
int run_demo(const DemoOptions& options);
}
