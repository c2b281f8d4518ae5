// LMLAB_HOST_DEVICE marks a function that the CPU kernels and the CUDA kernels (host and device)
// share: __host__ __device__ under nvcc, nothing for the host compiler.
#pragma once

#ifdef __CUDACC__
#define LMLAB_HOST_DEVICE __host__ __device__
#else
#define LMLAB_HOST_DEVICE
#endif
