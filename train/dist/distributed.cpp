// Data parallelism: the MPI world, collectives and the bucketed gradient all-reduce (see
// distributed.h and docs/distributed.md). Without MPI in the build, or without a launcher, the
// world is one rank and every collective is the identity.
#include "train/dist/distributed.h"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <unordered_map>

#include "autograd/error.h"
#include "autograd/kernels/cuda_runtime.h"
#include "train/config/config.h"

#ifdef LMLAB_HAVE_MPI
#include <mpi.h>
#endif

namespace lmlab::train::dist {

namespace {

int g_rank = 0, g_size = 1, g_local_rank = 0, g_local_size = 1;
bool g_active = false;

int env_int(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : -1;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The watchdog (docs/distributed.md, "Faults"): a rank that waits in a collective for longer than
// LMLAB_DIST_TIMEOUT seconds (default 600; 0: never) prints why and exits, which makes the launcher
// end the job. A rank that died is the launcher's to notice; this catches the ones that hang.
std::atomic<double> g_busy_since{0};  // steady-clock seconds when the current wait began; 0: none
std::atomic<const char*> g_busy_what{""};
double g_timeout_s = 600;
std::thread g_watchdog;
std::atomic<bool> g_watchdog_stop{false};

// Marks the calling scope as a wait for the other ranks.
class Waiting {
 public:
  explicit Waiting(const char* what) {
    g_busy_what = what;
    g_busy_since = now_s();
  }
  ~Waiting() { g_busy_since = 0; }
  Waiting(const Waiting&) = delete;
  Waiting& operator=(const Waiting&) = delete;
};

void watchdog_loop() {
  while (!g_watchdog_stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const double since = g_busy_since;
    if (since <= 0 || now_s() - since <= g_timeout_s) continue;
    char msg[512];
    const int n = std::snprintf(
        msg, sizeof msg,
        "rank %d: lmlab train: error: [dist] waited more than %g s for the other ranks in %s: one "
        "of them is stuck or the network is down; ending the job (LMLAB_DIST_TIMEOUT; 0 "
        "disables)\n",
        g_rank, g_timeout_s, g_busy_what.load());
    if (n > 0) (void)!::write(2, msg, size_t(std::min<int>(n, int(sizeof msg) - 1)));
    std::_Exit(1);  // the launcher sees a failed rank and stops the others
  }
}

#ifdef LMLAB_HAVE_MPI
void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw Error(std::string("[dist] ") + what + " failed: " + std::string(msg, size_t(len)));
}
#endif

}  // namespace

bool launched_as_ranks() {
  // Open MPI's mpirun, MPICH/Hydra and Slurm (PMI-2), PMIx launchers (Open MPI 5, srun --mpi=pmix).
  return env_int("OMPI_COMM_WORLD_SIZE") > 0 || env_int("PMI_SIZE") > 0 ||
         std::getenv("PMIX_RANK") != nullptr;
}

bool mpi_built() {
#ifdef LMLAB_HAVE_MPI
  return true;
#else
  return false;
#endif
}

void init(int* argc, char*** argv) {
  if (!launched_as_ranks()) return;
  if (const char* v = std::getenv("LMLAB_DIST_TIMEOUT"); v && *v) {
    char* end = nullptr;
    const double t = std::strtod(v, &end);
    if (end == v || *end != '\0' || !(t >= 0))
      throw Error(std::string("[dist] LMLAB_DIST_TIMEOUT must be a number of seconds >= 0 (0: no "
                              "timeout), got '") +
                  v + "'");
    g_timeout_s = t;
  }
#ifdef LMLAB_HAVE_MPI
  // Open MPI's collectives allocate temporary buffers as large as the message on every call. glibc
  // serves those above its mmap threshold (at most 32 MiB) with fresh pages and returns them on
  // free, so every call page-faults them in again: ~12 us per 4 KiB page on these VMs, which made
  // one 64 MiB MPI_Allreduce take 200 ms instead of 16 ms (docs/PERFORMANCE.md). Keep freed memory
  // in the heap instead (lmlab's own tensors come from its block cache either way).
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, INT32_MAX);
  int provided = 0;
  check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
  MPI_Comm_rank(local, &g_local_rank);
  MPI_Comm_size(local, &g_local_size);
  MPI_Comm_free(&local);
  g_active = true;
  if (g_timeout_s > 0) g_watchdog = std::thread(watchdog_loop);
#else
  (void)argc, (void)argv;
  int n = env_int("OMPI_COMM_WORLD_SIZE");
  if (n < 0) n = env_int("PMI_SIZE");
  if (n > 1)
    throw Error("[dist] an MPI launcher started " + std::to_string(n) +
                " processes, but this lmlab was built without MPI, so each would train alone and "
                "overwrite the others' files; install Open MPI (libopenmpi-dev openmpi-bin, as "
                "scripts/setup.sh does) and rebuild, or run without mpirun");
#endif
}

void finalize() {
#ifdef LMLAB_HAVE_MPI
  if (g_active) {
    g_watchdog_stop = true;
    if (g_watchdog.joinable()) g_watchdog.join();
    MPI_Finalize();
    g_active = false;
  }
#endif
}

void abort(int code) {
#ifdef LMLAB_HAVE_MPI
  g_watchdog_stop = true;
  if (g_watchdog.joinable()) g_watchdog.join();
  if (g_active) MPI_Abort(MPI_COMM_WORLD, code);
#else
  (void)code;
#endif
}

bool active() { return g_active; }
int rank() { return g_rank; }
int size() { return g_size; }
int local_rank() { return g_local_rank; }
int local_size() { return g_local_size; }

namespace {

// In place over all ranks (the sum, or the maximum); a no-op without an MPI world.
void allreduce_doubles(double* data, size_t n, bool max, const char* what) {
#ifdef LMLAB_HAVE_MPI
  if (!g_active) return;
  Waiting w(what);
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, data, int(n), MPI_DOUBLE, max ? MPI_MAX : MPI_SUM,
                          MPI_COMM_WORLD),
            "MPI_Allreduce");
#else
  (void)data, (void)n, (void)max, (void)what;
#endif
}

}  // namespace

void allreduce_sum(double* data, size_t n) {
  allreduce_doubles(data, n, false, "an all-reduce (sum)");
}
void allreduce_max(double* data, size_t n) {
  allreduce_doubles(data, n, true, "an all-reduce (max)");
}

std::vector<uint64_t> allgather(uint64_t value) {
  std::vector<uint64_t> all(size_t(g_size), value);
#ifdef LMLAB_HAVE_MPI
  if (g_active) {
    Waiting w("an all-gather");
    check_mpi(MPI_Allgather(&value, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD),
              "MPI_Allgather");
  }
#endif
  return all;
}

uint64_t fnv1a(const void* data, size_t n, uint64_t h) {
  // Word-wise (8 bytes per multiply), then the tail byte by byte: the weights of a large model or
  // a large corpus hash in well under a second.
  const auto* p = static_cast<const unsigned char*>(data);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * 0x100000001b3ULL;
  }
  for (; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

uint64_t tensors_hash(const std::vector<Tensor>& ts) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const Tensor& t : ts) {
    const Tensor c = (t.device() == Device::CPU ? t : t.to(Device::CPU)).contiguous();
    h = fnv1a(c.raw_data(), size_t(c.numel()) * dtype_size(c.dtype()), h);
  }
  return h;
}

std::string broadcast(const std::string& value, int root) {
#ifdef LMLAB_HAVE_MPI
  if (g_active) {
    Waiting w("a broadcast");
    uint64_t n = value.size();
    check_mpi(MPI_Bcast(&n, 1, MPI_UINT64_T, root, MPI_COMM_WORLD), "MPI_Bcast");
    std::string out = g_rank == root ? value : std::string(n, '\0');
    check_mpi(MPI_Bcast(out.data(), int(n), MPI_CHAR, root, MPI_COMM_WORLD), "MPI_Bcast");
    return out;
  }
#endif
  (void)root;
  return value;
}

void check_same_start(const std::string& run_dir, const std::string& config_yaml, int64_t step,
                      uint64_t weights_hash, uint64_t data_hash) {
  if (!g_active) return;
  const std::string root_yaml = broadcast(config_yaml, 0);
  const std::vector<uint64_t> c = allgather(config_yaml == root_yaml ? 0 : 1),
                              s = allgather(uint64_t(step)), w = allgather(weights_hash),
                              d = allgather(data_hash);
  for (int r = 1; r < g_size; ++r) {
    const std::string who = "[dist] rank " + std::to_string(r) + " ";
    // The corpus first: another text also changes the vocabulary, hence the config and weights.
    if (d[size_t(r)] != d[0])
      throw Error(who +
                  "trains on a different corpus than rank 0 (the tokens of its data.corpus "
                  "differ): every rank must read the same text");
    if (c[size_t(r)] != 0) {
      // That rank names the first differing line and tells every rank (any of them may be the
      // one whose message the job's abort lets through).
      std::string detail;
      if (r == g_rank) {
        const auto [here, there] = first_yaml_difference(config_yaml, root_yaml);
        detail = "rank " + std::to_string(r) + " has " + here + ", rank 0 " + there;
      }
      detail = broadcast(detail, r);
      throw Error(who + "was started with a different config than rank 0 (" + detail +
                  "): every rank must get the same CONFIG and --set options");
    }
    if (s[size_t(r)] != s[0])
      throw Error(who + "would start at step " + std::to_string(s[size_t(r)]) +
                  ", rank 0 at step " + std::to_string(s[0]) +
                  ": every rank must read the same checkpoint (" + run_dir +
                  "/ckpt.safetensors on a file system all ranks share)");
    if (w[size_t(r)] != w[0])
      throw Error(who + "starts from different weights than rank 0 (in " + run_dir +
                  "): every rank must initialise from the same seed and checkpoint");
  }
}

// ---- GradReducer ------------------------------------------------------------------------------

GradReducer::GradReducer(std::vector<Tensor> params, size_t bucket_bytes) {
  if (!g_active) return;
  for (Tensor& p : params) {
    if (!p.requires_grad()) continue;
    if (p.dtype() != DType::F32)
      throw Error("[dist] data-parallel training needs float32 parameters, got one of shape " +
                  to_string(p.shape()) + " in another type");
    params_.push_back(p);
  }
  if (params_.empty()) return;
  gpu_ = params_[0].device() == Device::CUDA;
  for (const Tensor& p : params_) {
    if ((p.device() == Device::CUDA) != gpu_)
      throw Error("[dist] data-parallel training needs every parameter on one device");
    index_.emplace(p.impl_ptr()->meta.get(), index_.size());
  }
  bucket_of_.resize(params_.size());
  ready_.assign(params_.size(), false);
  const size_t limit = std::max<size_t>(bucket_bytes / sizeof(float), 1);
  for (size_t k = params_.size(); k-- > 0;) {
    if (buckets_.empty() || buckets_.back().numel >= limit) buckets_.emplace_back();
    Bucket& b = buckets_.back();
    b.params.push_back(k);
    b.numel += size_t(params_[k].numel());
    bucket_of_[k] = buckets_.size() - 1;
  }
  for (Bucket& b : buckets_) {
    b.pending = b.params.size();
    b.flat = Tensor::empty({int64_t(b.numel)}, DType::F32, params_[0].device());
  }
  if (gpu_) {
    // NCCL: rank 0 makes the communicator's id, MPI hands it to the others.
    std::vector<char> id(cuda::kNcclIdBytes);
    if (g_rank == 0) cuda::nccl_unique_id(id.data());
#ifdef LMLAB_HAVE_MPI
    Waiting w("the NCCL set-up");
    check_mpi(MPI_Bcast(id.data(), int(id.size()), MPI_CHAR, 0, MPI_COMM_WORLD), "MPI_Bcast");
#endif
    nccl_comm_ = cuda::nccl_comm_init(id.data(), g_size, g_rank);
  }
}

GradReducer::~GradReducer() {
  if (!nccl_comm_) return;
  // After an error between start() and finish() a sum may still be writing a bucket on the
  // communication stream: order the buckets' release (on the compute stream) after it.
  try {
    cuda::compute_wait_for_comm();
  } catch (const std::exception&) {  // a broken context: nothing left to order
  }
  cuda::nccl_comm_destroy(nccl_comm_);
}

tape::LeafReadyHook GradReducer::hook() {
  if (!g_active || params_.empty()) return {};
  return [this](AutogradMeta& leaf) { on_ready(leaf); };
}

void GradReducer::on_ready(AutogradMeta& leaf) {
  const auto it = index_.find(&leaf);
  if (it != index_.end() && !ready_[it->second]) {
    ready_[it->second] = true;
    if (--buckets_[bucket_of_[it->second]].pending == 0) start_ready_in_order();
  }
  progress();
}

void GradReducer::start_ready_in_order() {
  while (next_ < buckets_.size() && buckets_[next_].pending == 0) start(buckets_[next_++], false);
}

void GradReducer::start(Bucket& b, bool blocking) {
  if (&b == &buckets_.front()) t_first_start_ = now_s();
  size_t off = 0;
  for (size_t k : b.params) {
    const Tensor& g = params_[k].grad();
    const size_t n = size_t(params_[k].numel());
    if (!g.defined()) {
      b.flat.narrow(0, int64_t(off), int64_t(n)).zero_();
    } else {
      const Tensor c = g.contiguous();
      if (gpu_)
        cuda::copy_device_to_device(b.flat.data<float>() + off, c.data<float>(), n * sizeof(float));
      else
        std::memcpy(b.flat.data<float>() + off, c.data<float>(), n * sizeof(float));
    }
    off += n;
  }
  b.started = true;
  if (gpu_) {  // on the communication stream, after the copies above
    cuda::comm_wait_for_compute();
    cuda::nccl_allreduce_sum(nccl_comm_, b.flat.data<float>(), b.numel);
    return;
  }
#ifdef LMLAB_HAVE_MPI
  if (blocking) {  // Open MPI's blocking algorithms are ~2x faster than libnbc's at 4-16 MiB
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, b.flat.data<float>(), int(b.numel), MPI_FLOAT, MPI_SUM,
                            MPI_COMM_WORLD),
              "MPI_Allreduce");
    return;
  }
  auto* req = new MPI_Request;
  check_mpi(MPI_Iallreduce(MPI_IN_PLACE, b.flat.data<float>(), int(b.numel), MPI_FLOAT, MPI_SUM,
                           MPI_COMM_WORLD, req),
            "MPI_Iallreduce");
  b.request = req;
#endif
}

void GradReducer::progress() {
#ifdef LMLAB_HAVE_MPI
  // Open MPI advances a non-blocking collective only inside MPI calls: poke the ones in flight.
  for (Bucket& b : buckets_) {
    if (!b.request) continue;
    int done = 0;
    MPI_Test(static_cast<MPI_Request*>(b.request), &done, MPI_STATUS_IGNORE);
  }
#endif
}

void GradReducer::finish() {
  if (!g_active || params_.empty()) return;
  // Gradients the hook did not report (a backward without it, or parameters the graph does not
  // reach) are final now: nothing is left to overlap with, so sum them at once.
  const double t_wait = now_s();
  Waiting w("the gradient all-reduce");
  while (next_ < buckets_.size()) start(buckets_[next_++], true);
#ifdef LMLAB_HAVE_MPI
  for (Bucket& b : buckets_) {
    if (!b.request) continue;
    auto* req = static_cast<MPI_Request*>(b.request);
    check_mpi(MPI_Wait(req, MPI_STATUS_IGNORE), "MPI_Wait");
    delete req;
    b.request = nullptr;
  }
#endif
  if (gpu_) cuda::compute_wait_for_comm();  // the sums are read on the compute stream below
  last_wait_s_ = now_s() - t_wait;
  const float inv = 1.0f / float(g_size);
  for (Bucket& b : buckets_) {
    if (gpu_) b.flat.mul_(double(inv));
    size_t off = 0;
    for (size_t k : b.params) {
      Tensor g = params_[k].grad();
      const size_t n = size_t(params_[k].numel());
      if (g.defined()) {
        if (!g.is_contiguous()) throw Error("[dist] a parameter's gradient is not contiguous");
        float* dst = g.data<float>();
        const float* src = b.flat.data<float>() + off;
        if (gpu_) {
          cuda::copy_device_to_device(dst, src, n * sizeof(float));
        } else {
#pragma omp parallel for schedule(static) if (n >= (1 << 16))
          for (int64_t i = 0; i < int64_t(n); ++i) dst[i] = src[i] * inv;
        }
      }
      off += n;
    }
    b.pending = b.params.size();
    b.started = false;
  }
  ready_.assign(params_.size(), false);
  next_ = 0;
  last_comm_s_ = now_s() - t_first_start_;
}

}  // namespace lmlab::train::dist
