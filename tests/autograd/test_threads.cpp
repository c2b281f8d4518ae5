// Thread and BLAS-kernel control: the OpenBLAS core-type suggestion that makes lmlab pick fast
// kernels on CPUs OpenBLAS does not recognise, and the thread-count setter.
#include <gtest/gtest.h>

#include "autograd/threads.h"

namespace lmlab {
namespace {

TEST(Threads, SuggestsAFastCoreOnlyForGenericFallbacks) {
  EXPECT_EQ(suggest_blas_core("Prescott", true, true), "SkylakeX");
  EXPECT_EQ(suggest_blas_core("Prescott", false, true), "Haswell");
  EXPECT_EQ(suggest_blas_core("Prescott", false, false), "");
  EXPECT_EQ(suggest_blas_core("Nehalem", true, true), "SkylakeX");
  EXPECT_EQ(suggest_blas_core("Generic", false, true), "Haswell");
  // Specific families are left alone, whatever the CPU flags say.
  EXPECT_EQ(suggest_blas_core("Haswell", true, true), "");
  EXPECT_EQ(suggest_blas_core("SkylakeX", true, true), "");
  EXPECT_EQ(suggest_blas_core("Cooperlake", true, true), "");
  EXPECT_EQ(suggest_blas_core("Zen", false, true), "");
}

TEST(Threads, CoreNameIsKnownAndThreadCountApplies) {
  EXPECT_FALSE(blas_core_name().empty());
  const int before = num_threads();
  set_num_threads(1);
  EXPECT_EQ(num_threads(), 1);
  set_num_threads(0);  // 0 leaves the setting alone
  EXPECT_EQ(num_threads(), 1);
  set_num_threads(before);
}

}  // namespace
}  // namespace lmlab
