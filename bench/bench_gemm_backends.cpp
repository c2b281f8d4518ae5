// GEMM backends on the model's shapes (Google Benchmark): C = op(A) op(B) in fp32, row-major,
// through OpenBLAS (cblas_sgemm), lmlab's entry point (lmlab::cpu::gemm, OpenBLAS in slabs),
// oneDNN (a dnnl::matmul primitive), libxsmm (JIT kernels) and BLIS (bli_sgemm), with 1 and 2
// threads. Shapes: the forward X W, dX = dY W^T (B transposed) and dW = X^T dY (A transposed) of
// every linear layer of the small (768 rows, d 128) and medium (2048 rows, d 256) bench models.
// Every backend's C is checked against OpenBLAS's before anything is timed (exit 1 on a mismatch).
// Built only where libdnnl-dev, libxsmm-dev and libblis-dev are installed (bench/CMakeLists.txt).
//
// Run (one line; after scripts/setup.sh and apt-get install libdnnl-dev libxsmm-dev libblis-dev):
//   OPENBLAS_CORETYPE=SkylakeX GOMP_SPINCOUNT=10000 build/bench/bench_gemm_backends
//   --benchmark_min_time=0.05 --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
// OPENBLAS_CORETYPE=SkylakeX: OpenBLAS's AVX-512 kernels (the others pick theirs themselves;
// Debian's OpenBLAS falls back to SSE3 on the Xeon); GOMP_SPINCOUNT=10000: how lmlab's OpenMP
// threads wait (all four libraries run on libgomp's pool). Add --benchmark_filter='small.qkv' (say)
// for one shape, or '/t1$' for one thread count. On an AVX-512 CPU the program sets BLIS_ARCH_TYPE
// to BLIS's skx kernels unless it is set (choose_blis_arch). BLIS_ARCH_DEBUG=1 prints BLIS's
// choice, ONEDNN_VERBOSE=1 oneDNN's. Rows:
// gemm/<model>.<layer>.<pass>/<M>x<N>x<K>/<backend>/t<threads>; the label says which oneDNN
// implementation ran and whether libxsmm transposed B first. onednn_create/... is the cost of
// creating the primitive: "cold" with oneDNN's primitive cache off, "cached" a cache hit.
//
// OpenBLAS's cblas.h comes before blis.h: blis.h carries BLIS's own cblas.h, under the same
// include guard, whose declarations would otherwise replace OpenBLAS's (openblas_* functions).
#include <cblas.h>
// (keep this order)
#include <benchmark/benchmark.h>
#include <blis.h>
#include <dlfcn.h>
#include <libxsmm.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "autograd/kernels/matmul.h"

namespace {

// One product: C (M, N) = op(A) (M, K) op(B) (K, N); A is stored (K, M) when ta, B (N, K) when tb.
struct Gemm {
  std::string name;
  int M, N, K;
  bool ta, tb;
  int lda() const { return ta ? M : K; }
  int ldb() const { return tb ? K : N; }
  double flops() const { return 2.0 * M * N * K; }
};

// The three GEMMs of every linear layer (in -> out) of the two bench models, X being rows x in.
std::vector<Gemm> model_gemms() {
  struct Layer {
    const char *model, *layer;
    int rows, in, out;
  };
  const Layer layers[] = {{"small", "qkv", 768, 128, 384},    {"small", "proj", 768, 128, 128},
                          {"small", "up", 768, 128, 512},     {"small", "down", 768, 512, 128},
                          {"small", "head", 768, 128, 96},    {"medium", "qkv", 2048, 256, 768},
                          {"medium", "proj", 2048, 256, 256}, {"medium", "up", 2048, 256, 1024},
                          {"medium", "down", 2048, 1024, 256}};
  std::vector<Gemm> out;
  for (const Layer& l : layers) {
    const std::string base = std::string(l.model) + "." + l.layer;
    out.push_back({base + ".fwd", l.rows, l.out, l.in, false, false});
    out.push_back({base + ".dX", l.rows, l.in, l.out, false, true});
    out.push_back({base + ".dW", l.in, l.out, l.rows, true, false});
  }
  return out;
}

struct Problem {
  Gemm g;
  std::vector<float> a, b, c;
  explicit Problem(const Gemm& gemm)
      : g(gemm), a(size_t(g.M) * g.K), b(size_t(g.K) * g.N), c(size_t(g.M) * g.N) {
    std::mt19937 gen(uint32_t(g.M * 31 + g.N * 7 + g.K));
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (float& v : a) v = u(gen);
    for (float& v : b) v = u(gen);
  }
};

enum class Backend { kOpenBLAS, kLmlab, kOneDNN, kLibxsmm, kBLIS };
const Backend kBackends[] = {Backend::kOpenBLAS, Backend::kLmlab, Backend::kOneDNN,
                             Backend::kLibxsmm, Backend::kBLIS};

const char* backend_name(Backend be) {
  switch (be) {
    case Backend::kOpenBLAS: return "openblas";
    case Backend::kLmlab: return "lmlab";
    case Backend::kOneDNN: return "onednn";
    case Backend::kLibxsmm: return "libxsmm";
    case Backend::kBLIS: return "blis";
  }
  return "?";
}

// Every library's thread count at once (oneDNN's OpenMP runtime follows omp_get_max_threads()).
void set_threads(int t) {
  omp_set_num_threads(t);
  openblas_set_num_threads(t);
  bli_thread_set_num_threads(t);
}

using Runner = std::function<void()>;

Runner openblas_runner(Problem& p) {
  return [&p] {
    const Gemm& g = p.g;
    cblas_sgemm(CblasRowMajor, g.ta ? CblasTrans : CblasNoTrans, g.tb ? CblasTrans : CblasNoTrans,
                g.M, g.N, g.K, 1.0f, p.a.data(), g.lda(), p.b.data(), g.ldb(), 0.0f, p.c.data(),
                g.N);
  };
}

Runner lmlab_runner(Problem& p) {
  return [&p] {
    const Gemm& g = p.g;
    lmlab::cpu::gemm<float>(g.ta, g.tb, g.M, g.N, g.K, 1.0f, p.a.data(), g.lda(), p.b.data(),
                            g.ldb(), 0.0f, p.c.data(), g.N);
  };
}

Runner blis_runner(Problem& p) {
  return [&p] {
    const Gemm& g = p.g;
    float one = 1.0f, zero = 0.0f;
    // Row-major through BLIS's general strides: row stride ld, column stride 1.
    bli_sgemm(g.ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, g.tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
              g.M, g.N, g.K, &one, p.a.data(), g.lda(), 1, p.b.data(), g.ldb(), 1, &zero,
              p.c.data(), g.N, 1);
  };
}

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// The matmul's memory descriptors with the row-major strides of op(A), op(B) and C.
struct OneDnnDescs {
  dnnl::memory::desc a, b, c;
  explicit OneDnnDescs(const Gemm& g) {
    using md = dnnl::memory::desc;
    using dims = dnnl::memory::dims;
    const auto f32 = dnnl::memory::data_type::f32;
    a = md(dims{g.M, g.K}, f32, g.ta ? dims{1, g.M} : dims{g.K, 1});
    b = md(dims{g.K, g.N}, f32, g.tb ? dims{1, g.K} : dims{g.N, 1});
    c = md(dims{g.M, g.N}, f32, dims{g.N, 1});
  }
};

dnnl::matmul::primitive_desc onednn_pd(const Gemm& g) {
  const OneDnnDescs d(g);
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(d.a, d.b, d.c), cpu_engine());
}

// The primitive is created here, once, with the thread count already set (its blocking may
// depend on it); each call only executes it.
Runner onednn_runner(Problem& p, std::string* label) {
  struct State {
    dnnl::matmul prim;
    dnnl::stream stream;
    std::unordered_map<int, dnnl::memory> args;
  };
  const auto pd = onednn_pd(p.g);
  *label = pd.impl_info_str();
  const OneDnnDescs d(p.g);
  auto s = std::make_shared<State>(State{dnnl::matmul(pd), dnnl::stream(cpu_engine()), {}});
  s->args = {{DNNL_ARG_SRC, dnnl::memory(d.a, cpu_engine(), p.a.data())},
             {DNNL_ARG_WEIGHTS, dnnl::memory(d.b, cpu_engine(), p.b.data())},
             {DNNL_ARG_DST, dnnl::memory(d.c, cpu_engine(), p.c.data())}};
  return [s] {
    s->prim.execute(s->stream, s->args);
    s->stream.wait();
  };
}

// libxsmm is column-major: row-major C (M, N) is column-major C^T (N, M) = op(B)^T op(A)^T, so
// B is the kernel's first operand and A its second. Row-major B (K, N) is column-major B^T
// already; a transposed A becomes the kernel's TRANS_B, which libxsmm 1.17 JITs. Its TRANS_A (a
// transposed row-major B) it does not, so B is first transposed (libxsmm_otrans, timed). With 2
// threads, C is cut into 2 row slabs, one kernel call each (a JIT kernel runs on one thread).
Runner libxsmm_runner(Problem& p, int threads, std::string* label) {
  const Gemm& g = p.g;
  const int parts = threads > 1 && g.M % 2 == 0 ? 2 : 1, rows = g.M / parts;
  const libxsmm_blasint m = g.N, n = rows, k = g.K, lda = g.N, ldb = g.ta ? g.M : g.K, ldc = g.N;
  const int flags = g.ta ? LIBXSMM_GEMM_FLAG_TRANS_B : LIBXSMM_GEMM_FLAG_NONE;
  const float alpha = 1.0f, beta = 0.0f;
  const libxsmm_smmfunction kernel =
      libxsmm_smmdispatch(m, n, k, &lda, &ldb, &ldc, &alpha, &beta, &flags, nullptr);
  if (kernel == nullptr) throw std::runtime_error("libxsmm: no JIT kernel for " + g.name);
  *label = g.tb ? "jit+otrans" : "jit";
  auto bt = std::make_shared<std::vector<float>>(g.tb ? size_t(g.K) * g.N : 0);
  return [&p, kernel, bt, parts, rows] {
    const Gemm& g = p.g;
    const float* b = p.b.data();
    if (g.tb) {  // stored (N, K) = column-major K x N; out: column-major N x K = row-major (K, N)
      libxsmm_otrans(bt->data(), b, sizeof(float), g.K, g.N, g.K, g.N);
      b = bt->data();
    }
#pragma omp parallel for num_threads(parts) if (parts > 1)
    for (int s = 0; s < parts; ++s) {
      const float* a = g.ta ? p.a.data() + s * rows : p.a.data() + size_t(s) * rows * g.K;
      kernel(b, a, p.c.data() + size_t(s) * rows * g.N);
    }
  };
}

Runner make_runner(Backend be, Problem& p, int threads, std::string* label) {
  label->clear();
  switch (be) {
    case Backend::kOpenBLAS: return openblas_runner(p);
    case Backend::kLmlab: return lmlab_runner(p);
    case Backend::kOneDNN: return onednn_runner(p, label);
    case Backend::kLibxsmm: return libxsmm_runner(p, threads, label);
    case Backend::kBLIS: return blis_runner(p);
  }
  throw std::logic_error("unknown backend");
}

// max |c - ref| / max |ref|; NaN (an element never written) counts as infinitely wrong.
double max_rel_err(const std::vector<float>& c, const std::vector<float>& ref) {
  double diff = 0.0, scale = 0.0;
  for (size_t i = 0; i < c.size(); ++i) {
    const double d = std::fabs(double(c[i]) - double(ref[i]));
    diff = std::isnan(d) ? std::numeric_limits<double>::infinity() : std::max(diff, d);
    scale = std::max(scale, std::fabs(double(ref[i])));
  }
  return diff / std::max(scale, 1e-30);
}

// Every backend against OpenBLAS on every shape, with 1 and 2 threads, C pre-filled with NaN.
// Prints the worst error per backend; false on any error above the tolerance.
bool verify_all(const std::vector<Gemm>& gemms) {
  constexpr double kTol = 1e-4;
  std::unordered_map<int, double> worst;
  bool ok = true;
  for (const Gemm& g : gemms) {
    for (int t : {1, 2}) {
      set_threads(t);
      Problem p(g);
      std::string label;
      openblas_runner(p)();
      const std::vector<float> ref = p.c;
      for (Backend be : kBackends) {
        std::fill(p.c.begin(), p.c.end(), std::numeric_limits<float>::quiet_NaN());
        make_runner(be, p, t, &label)();
        const double err = max_rel_err(p.c, ref);
        worst[int(be)] = std::max(worst[int(be)], err);
        if (!(err <= kTol)) {
          std::fprintf(stderr, "MISMATCH %s on %s (%dx%dx%d), %d threads: max rel err %.3g\n",
                       backend_name(be), g.name.c_str(), g.M, g.N, g.K, t, err);
          ok = false;
        }
      }
    }
  }
  for (Backend be : kBackends)
    std::fprintf(stderr, "verified %-8s against OpenBLAS: worst max rel err %.2e\n",
                 backend_name(be), worst[int(be)]);
  return ok;
}

void set_gflops(benchmark::State& state, double flops) {
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
}

void bm_gemm(benchmark::State& state, const Gemm& g, Backend be, int threads) {
  set_threads(threads);
  Problem p(g);
  std::string label;
  const Runner run = make_runner(be, p, threads, &label);
  run();  // warm-up: JIT code, packing buffers, the thread pool
  for (auto _ : state) {
    run();
    benchmark::ClobberMemory();
  }
  state.SetLabel(label);
  set_gflops(state, g.flops());
}

// Creating the primitive descriptor and the primitive (JIT code generation included): "cold"
// with the primitive cache off, "cached" as a cache hit (what a per-call creation would pay).
void bm_onednn_create(benchmark::State& state, const Gemm& g, int threads, bool cached) {
  set_threads(threads);
  const int capacity = dnnl::get_primitive_cache_capacity();
  if (!cached) dnnl::set_primitive_cache_capacity(0);
  dnnl::matmul warm(onednn_pd(g));
  for (auto _ : state) {
    dnnl::matmul prim(onednn_pd(g));
    benchmark::DoNotOptimize(prim.get());
  }
  dnnl::set_primitive_cache_capacity(capacity);
}

// The shared library a symbol resolved to: cblas_sgemm and sgemm_ (libxsmm's fallback) must be
// OpenBLAS's, not the ones libblis also exports.
std::string symbol_library(const char* symbol) {
  Dl_info info{};
  void* addr = dlsym(RTLD_DEFAULT, symbol);
  if (addr == nullptr || dladdr(addr, &info) == 0 || info.dli_fname == nullptr) return "?";
  return info.dli_fname;
}

// BLIS 0.9.0 knows no AMD CPU after Zen 3: on the EPYC (family 26) it runs its generic reference
// kernels, ~5x slower. Its skx kernels need AVX-512 F/DQ/BW/VL only, so unless the user chose an
// arch (BLIS_ARCH_TYPE, an arch_t number), pick them on any such CPU. BLIS reads the variable in
// bli_init; querying the arch before bli_init with it set aborts ("uninitialized context in gks").
std::string choose_blis_arch() {
  if (std::getenv("BLIS_ARCH_TYPE") != nullptr) return "BLIS_ARCH_TYPE from the environment";
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512dq") ||
      !__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512vl"))
    return "detected";
  setenv("BLIS_ARCH_TYPE", std::to_string(int(BLIS_ARCH_SKX)).c_str(), 0);
  return "BLIS_ARCH_TYPE=" + std::to_string(int(BLIS_ARCH_SKX)) + " set by this program";
}

bool add_context(const std::string& blis_arch) {
  const std::string cblas = symbol_library("cblas_sgemm"), f77 = symbol_library("sgemm_");
  benchmark::AddCustomContext("openblas_corename", openblas_get_corename());
  benchmark::AddCustomContext("cblas_sgemm_from", cblas);
  benchmark::AddCustomContext("sgemm_from", f77);
  benchmark::AddCustomContext("blis", std::string(bli_info_get_version_str()) + " arch " +
                                          bli_arch_string(bli_arch_query_id()) + " (" + blis_arch +
                                          ")");
  benchmark::AddCustomContext(
      "libxsmm", std::string(LIBXSMM_VERSION) + " target " + libxsmm_get_target_arch());
  const dnnl_version_t* v = dnnl_version();
  benchmark::AddCustomContext("onednn", std::to_string(v->major) + "." + std::to_string(v->minor) +
                                            "." + std::to_string(v->patch) + " cpu_runtime " +
                                            (v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "?"));
  if (cblas.find("openblas") == std::string::npos || f77.find("openblas") == std::string::npos) {
    std::fprintf(stderr, "cblas_sgemm from %s, sgemm_ from %s: not OpenBLAS (link order?)\n",
                 cblas.c_str(), f77.c_str());
    return false;
  }
  // oneDNN, libxsmm and BLIS pick AVX-512 kernels themselves; OpenBLAS may not (a generic core,
  // or an OPENBLAS_CORETYPE left in the environment), which would make the comparison unfair.
  const std::string core = openblas_get_corename();
  const bool avx512_core = core == "SkylakeX" || core == "Cooperlake" || core == "SapphireRapids";
  if (__builtin_cpu_supports("avx512f") && !avx512_core)
    std::fprintf(stderr,
                 "warning: OpenBLAS runs its %s kernels on an AVX-512 CPU: rerun with "
                 "OPENBLAS_CORETYPE=SkylakeX\n",
                 core.c_str());
  return true;
}

benchmark::internal::Benchmark* timed(benchmark::internal::Benchmark* b) {
  return b->UseRealTime()->ComputeStatistics(
      "min", [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); });
}

void register_all(const std::vector<Gemm>& gemms) {
  for (const Gemm& g : gemms) {
    const std::string shape =
        "/" + std::to_string(g.M) + "x" + std::to_string(g.N) + "x" + std::to_string(g.K) + "/";
    for (int t : {1, 2}) {
      const std::string tn = "/t" + std::to_string(t);
      for (Backend be : kBackends) {
        const std::string name = "gemm/" + g.name + shape + backend_name(be) + tn;
        timed(benchmark::RegisterBenchmark(name.c_str(), bm_gemm, g, be, t));
      }
      for (bool cached : {false, true}) {
        const std::string name =
            "onednn_create/" + g.name + shape + (cached ? "cached" : "cold") + tn;
        timed(benchmark::RegisterBenchmark(name.c_str(), bm_onednn_create, g, t, cached));
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const std::string blis_arch = choose_blis_arch();
  bli_init();
  libxsmm_init();
  if (!add_context(blis_arch)) return 1;
  const std::vector<Gemm> gemms = model_gemms();
  if (!verify_all(gemms)) {
    std::fprintf(stderr, "a backend disagrees with OpenBLAS: no timings\n");
    return 1;
  }
  register_all(gemms);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  libxsmm_finalize();
  bli_finalize();
  return 0;
}
