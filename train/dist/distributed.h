// Data parallelism across processes (docs/distributed.md): `mpirun -np N lmlab train CONFIG` runs
// N ranks that each compute the gradient of their slice of every global batch; GradReducer sums
// the gradients over the ranks (MPI_Allreduce on the CPU, ncclAllReduce on the GPU) in buckets
// started during the backward pass, and divides by N. Started without an MPI launcher, the world
// is one rank and nothing here communicates.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "autograd/tape.h"
#include "autograd/tensor.h"

namespace lmlab::train::dist {

// Whether the environment says an MPI launcher (mpirun, srun with PMI/PMIx) started this process
// as one of several ranks.
bool launched_as_ranks();
// Joins the MPI world when launched_as_ranks() (MPI_Init_thread, FUNNELED); otherwise does
// nothing. Throws lmlab::Error when launched as ranks by a build without MPI (each process would
// train alone and all would write the same files). Call once, before any other function here.
void init(int* argc, char*** argv);
// Leaves the MPI world (a no-op for one rank). Call before a normal exit.
void finalize();
// Ends every rank of the job at once (MPI_Abort), for an error on some ranks only; returns only
// when there is no MPI world. Call after printing the reason.
void abort(int code);

bool active();     // whether this process joined an MPI world (even one of size 1)
int rank();        // 0 .. size() - 1
int size();        // ranks in the job (1 without a launcher)
int local_rank();  // rank among this machine's ranks (GPU choice, threads)
int local_size();  // ranks on this machine
bool mpi_built();  // whether this lmlab was built with MPI

// Collectives over all ranks (identity for one rank). Every rank must call them in the same order.
void allreduce_sum(double* data, size_t n);
void allreduce_max(double* data, size_t n);
std::vector<uint64_t> allgather(uint64_t value);
// Rank `root`'s string on every rank.
std::string broadcast(const std::string& value, int root = 0);

// FNV-1a (over 8-byte words, then the tail bytes): the corpus and weight fingerprints compared
// across ranks.
uint64_t fnv1a(const void* data, size_t n, uint64_t h = 0xcbf29ce484222325ULL);
// Fingerprint of tensors' values (CPU or GPU), in order.
uint64_t tensors_hash(const std::vector<Tensor>& ts);

// Checks that every rank starts the same run: the same resolved config (YAML; a rank whose config
// differs names the first differing line), the same step, the same weights and the same corpus
// tokens. Throws on every rank: "[dist] rank 1 was started with a different config than rank 0".
void check_same_start(const std::string& run_dir, const std::string& config_yaml, int64_t step,
                      uint64_t weights_hash, uint64_t data_hash);

// Sums the gradients of `params` over all ranks and divides by size(), bucket by bucket.
// Buckets hold consecutive parameters taken in reverse order (the last layers' gradients are
// final first in a backward) up to bucket_bytes each. hook() reports gradients as they become
// final during the backward: a bucket is handed to the communication library as soon as all its
// gradients are final (buckets start in a fixed order, the same on every rank); finish() starts
// the rest, waits for all of them and writes the averages back. Parameters without a gradient on
// a step contribute zeros and keep no gradient. Summation is elementwise, so bucketing does not
// change results. With one rank every call is a no-op.
class GradReducer {
 public:
  GradReducer(std::vector<Tensor> params, size_t bucket_bytes);
  ~GradReducer();
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  // The hook for tape::backward on the last micro-batch of a step (empty for one rank).
  tape::LeafReadyHook hook();
  void finish();

  size_t bucket_count() const { return buckets_.size(); }
  double last_wait_s() const { return last_wait_s_; }  // time in finish() until the sums are in
  double last_comm_s() const { return last_comm_s_; }  // first bucket start to end of finish()

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_
    size_t numel = 0, pending = 0;
    bool started = false;
    Tensor flat;              // float32, params' gradients packed (on the parameters' device)
    void* request = nullptr;  // MPI_Request while in flight (CPU)
  };
  void on_ready(AutogradMeta& leaf);
  void start(Bucket& b, bool blocking);
  void start_ready_in_order();
  void progress();

  std::vector<Tensor> params_;
  std::unordered_map<const AutogradMeta*, size_t> index_;  // a parameter's grad slot -> its index
  std::vector<size_t> bucket_of_;                          // param index -> bucket
  std::vector<bool> ready_;
  std::vector<Bucket> buckets_;
  size_t next_ = 0;  // buckets start in index order
  bool gpu_ = false;
  void* nccl_comm_ = nullptr;
  double t_first_start_ = 0, last_wait_s_ = 0, last_comm_s_ = 0;
};

}  // namespace lmlab::train::dist
