// lmlab's gradient all-reduce alone (dist::GradReducer::finish: pack into buckets, MPI_Iallreduce,
// wait, average back), for gradient sizes from 4 KiB to 256 MiB, under an MPI launcher:
//   mpirun --bind-to none -np 2 build/bench/allreduce_mpi [--max-mib 256] [--bucket-mib 8]
// Prints, on rank 0, the median time per call and the bus bandwidth 2 (N - 1) / N * bytes / time
// (the ring all-reduce convention of nccl-tests). docs/PERFORMANCE.md uses it for the cost model.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "autograd/ops.h"
#include "autograd/threads.h"
#include "train/dist/distributed.h"

using namespace lmlab;
using namespace lmlab::train;

int main(int argc, char** argv) {
  dist::init(&argc, &argv);
  double max_mib = 256, bucket_mib = 8;
  for (int i = 1; i + 1 < argc; ++i) {
    if (!std::strcmp(argv[i], "--max-mib"))
      max_mib = std::atof(argv[++i]);
    else if (!std::strcmp(argv[i], "--bucket-mib"))
      bucket_mib = std::atof(argv[++i]);
  }
  if (!dist::active()) {
    std::fprintf(stderr, "allreduce_mpi: run it under mpirun (e.g. mpirun -np 2 %s)\n", argv[0]);
    return 2;
  }
  set_num_threads(1);
  const int n = dist::size();
  if (dist::rank() == 0)
    std::printf(
        "# lmlab GradReducer::finish over %d ranks, bucket %.0f MiB, 1 thread per rank\n"
        "%12s %12s %12s %10s\n",
        n, bucket_mib, "bytes", "median_us", "min_us", "busbw_GB/s");
  for (double bytes = 4096; bytes <= max_mib * 1048576.0; bytes *= 4) {
    const int64_t count = int64_t(bytes / 4);
    Tensor p = Tensor::zeros({count}).requires_grad_();
    tape::backward(sum(p));  // gradient of ones
    dist::GradReducer reducer({p}, size_t(bucket_mib * 1048576.0));
    const int reps = bytes <= (1 << 20) ? 50 : bytes <= (16 << 20) ? 15 : 5;
    std::vector<double> t;
    for (int r = 0; r < reps + 2; ++r) {
      double start[1] = {0};
      dist::allreduce_max(start, 1);  // line the ranks up
      const auto t0 = std::chrono::steady_clock::now();
      reducer.finish();
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      double slowest[1] = {s};
      dist::allreduce_max(slowest, 1);
      if (r >= 2) t.push_back(slowest[0]);
    }
    std::sort(t.begin(), t.end());
    const double med = t[t.size() / 2];
    if (dist::rank() == 0)
      std::printf("%12.0f %12.1f %12.1f %10.2f\n", bytes, med * 1e6, t.front() * 1e6,
                  2.0 * (n - 1) / n * bytes / med / 1e9);
  }
  dist::finalize();
  return 0;
}
