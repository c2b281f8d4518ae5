// The CUDA op-kernel stubs: every cuda:: kernel entry point that has no .cu implementation yet
// throws "[op] ..." naming why. In a build without CUDA that is the whole backend; in a CUDA
// build, kernels arrive file by file (autograd/kernels/cuda/<family>.cu replaces the stub).
#pragma once
#include <string>

#include "autograd/error.h"

namespace lmlab::cuda {

[[noreturn]] inline void no_cuda(const char* op) {
#ifdef LMLAB_WITH_CUDA
  throw Error(std::string("[") + op + "] has no CUDA kernel yet in this build of lmlab");
#else
  throw Error(std::string("[") + op + "] lmlab was built without CUDA");
#endif
}

}  // namespace lmlab::cuda
