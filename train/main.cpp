#include <iostream>
#include "train/demo.h"
int main() { return lmlab::run_demo({}); }
