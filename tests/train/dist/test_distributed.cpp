// train/dist/distributed.h in one process (no launcher): a world of one rank whose collectives are
// the identity, a GradReducer that leaves gradients alone, the fingerprints compared across ranks
// (evaluation split "across ranks": tests/train/run/test_evaluate.cpp). tests/dist/ runs the real
// thing under mpirun.
#include <cstdlib>

#include "tests/test_util.h"
#include "tests/train/cli_util.h"
#include "train/dist/distributed.h"

namespace lmlab::train {
namespace {

TEST(Distributed, WithoutALauncherTheWorldIsOneRank) {
  EXPECT_FALSE(dist::launched_as_ranks());
  EXPECT_FALSE(dist::active());
  EXPECT_EQ(dist::rank(), 0);
  EXPECT_EQ(dist::size(), 1);
  EXPECT_EQ(dist::local_size(), 1);
  double v[2] = {1.5, -2};
  dist::allreduce_sum(v, 2);
  EXPECT_EQ(v[0], 1.5);
  EXPECT_EQ(v[1], -2);
  EXPECT_EQ(dist::allgather(7), std::vector<uint64_t>{7});
  EXPECT_NO_THROW(dist::check_same_start("runs/x", "a: 1\n", 2, 3, 4));
  EXPECT_EQ(dist::broadcast("text"), "text");
}

TEST(Distributed, LauncherEnvironmentIsRecognised) {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
    setenv(var, "2", 1);
    EXPECT_TRUE(dist::launched_as_ranks()) << var;
    unsetenv(var);
  }
  EXPECT_FALSE(dist::launched_as_ranks());
}

TEST(Distributed, ABadTimeoutIsRefusedBeforeJoining) {
  setenv("OMPI_COMM_WORLD_SIZE", "1", 1);
  setenv("LMLAB_DIST_TIMEOUT", "ten", 1);
  int argc = 0;
  char** argv = nullptr;
  EXPECT_TRUE(test::ThrowsWith([&] { dist::init(&argc, &argv); },
                               {"LMLAB_DIST_TIMEOUT must be a number of seconds", "'ten'"}));
  unsetenv("LMLAB_DIST_TIMEOUT");
  unsetenv("OMPI_COMM_WORLD_SIZE");
  EXPECT_FALSE(dist::active());
}

TEST(Distributed, VersionSaysWhetherMpiIsBuilt) {
  test::TempDir io("version");
  const test::RunResult r = test::run_lmlab({"--version"}, io.str());
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find(dist::mpi_built() ? "MPI data parallelism built"
                                         : "MPI data parallelism not built"),
            std::string::npos)
      << r.out;
}

TEST(Distributed, OneRankReducerLeavesGradientsAlone) {
  Tensor w = Tensor::from_vector(std::vector<float>{1, 2, 3}, {3}).requires_grad_();
  tape::backward(sum(mul(w, w)));
  dist::GradReducer reducer({w}, 1 << 20);
  EXPECT_FALSE(bool(reducer.hook()));
  reducer.finish();
  EXPECT_EQ(w.grad().to_vector<float>(), (std::vector<float>{2, 4, 6}));
  EXPECT_EQ(reducer.bucket_count(), 0u);
}

TEST(Distributed, FingerprintsSeeEveryValueAndTheOrder) {
  const Tensor a = Tensor::from_vector(std::vector<float>{1, 2, 3}, {3});
  const Tensor b = Tensor::from_vector(std::vector<float>{1, 2, 3.0000002f}, {3});
  EXPECT_EQ(dist::tensors_hash({a, b}), dist::tensors_hash({a.clone(), b.clone()}));
  EXPECT_NE(dist::tensors_hash({a}), dist::tensors_hash({b}));  // one ulp in the last element
  EXPECT_NE(dist::tensors_hash({a, b}), dist::tensors_hash({b, a}));
  EXPECT_NE(dist::fnv1a("abc", 3), dist::fnv1a("abd", 3));
  EXPECT_EQ(dist::fnv1a("", 0), 0xcbf29ce484222325ULL);
}

}  // namespace
}  // namespace lmlab::train
