#include "train/demo.h"
namespace lmlab {
int run_demo(const DemoOptions&) { return 0; }
}
