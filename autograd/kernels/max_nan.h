// The NaN-propagating max of both backends (PyTorch's semantics): a NaN anywhere in a reduced slice
// makes the result NaN, and the gradient goes to the NaN elements. One definition for the CPU
// kernels and the CUDA ones (host and device), so the two cannot drift apart.
#pragma once
#include "autograd/kernels/host_device.h"

namespace lmlab::kernels {

// max(a, b), NaN if either is; symmetric in NaN-ness, so the lanes of a GPU shuffle reduction all
// end with the same value.
template <class T>
LMLAB_HOST_DEVICE inline T max_nan(T a, T b) {
  return (b > a || b != b) ? b : a;
}
// Whether x is a maximum of a slice whose max_nan is m: equal to it, or NaN when m is.
template <class T>
LMLAB_HOST_DEVICE inline bool is_max(T x, T m) {
  return x == m || (x != x && m != m);
}

}  // namespace lmlab::kernels
