// The CUDA runtime: the caching allocator's statistics (allocated, cached, peak, cudaMalloc
// count: none in a steady loop), host/device copies, the TF32 switch, float64 refusal, and the
// clear error when no GPU is there (that test runs on every machine without one).
#include "tests/cuda/cuda_test_util.h"
#include "tests/test_util.h"

namespace lmlab::test {
namespace {

class CudaRuntime : public CudaTest {};

TEST(CudaUnavailable, DeviceTensorsFailWithAClearError) {
  if (cuda::available()) GTEST_SKIP() << "a GPU is visible; this checks the no-GPU path";
  EXPECT_FALSE(cuda::unavailable_reason().empty());
  try {
    Tensor::zeros({2}, DType::F32, Device::CUDA);
    ADD_FAILURE() << "allocating on a missing GPU did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[cuda]"), std::string::npos) << e.what();
  }
  EXPECT_EQ(cuda::allocated_bytes(), 0u);
}

// cuBLAS is dlopen'ed on first use rather than linked (loading it cost every process of a CUDA
// build ~0.5 s): in a CUDA build it must load, GPU or not; without CUDA the call says why not.
TEST(CudaCublas, LoadsOnFirstUseWithoutAGpu) {
#ifdef LMLAB_WITH_CUDA
  const std::string path = cuda::cublas_library();
  EXPECT_NE(path.find("cublas"), std::string::npos) << path;
  EXPECT_EQ(cuda::cublas_library(), path);  // loaded once
#else
  EXPECT_THROW(cuda::cublas_library(), Error);
#endif
}

TEST_F(CudaRuntime, AllocatorReusesFreedBlocks) {
  cuda::release_cache();
  EXPECT_EQ(cuda::cached_bytes(), 0u);
  const size_t base = cuda::allocated_bytes();
  const size_t bytes = size_t(1) << 22;  // 4 MiB, exactly a size class
  {
    Tensor t = Tensor::empty({int64_t(bytes / 4)}, DType::F32, Device::CUDA);
    EXPECT_EQ(cuda::allocated_bytes(), base + bytes);
    EXPECT_GE(cuda::peak_bytes(), base + bytes);
  }
  EXPECT_EQ(cuda::allocated_bytes(), base);
  EXPECT_EQ(cuda::cached_bytes(), bytes);
  const size_t mallocs = cuda::malloc_count();
  {
    // a slightly smaller request falls in the same class and takes the cached block
    Tensor t = Tensor::empty({int64_t(bytes / 4) - 1000}, DType::F32, Device::CUDA);
    EXPECT_EQ(cuda::malloc_count(), mallocs);
    EXPECT_EQ(cuda::cached_bytes(), 0u);
  }
  cuda::reset_peak_bytes();
  EXPECT_EQ(cuda::peak_bytes(), cuda::allocated_bytes());
  cuda::release_cache();
  EXPECT_EQ(cuda::cached_bytes(), 0u);
}

TEST_F(CudaRuntime, SteadyTrainingLoopStopsCallingCudaMalloc) {
  const Tensor w1 = randn32({64, 256}, 1, 0.1).to(Device::CUDA).detach().requires_grad_();
  const Tensor w2 = randn32({256, 10}, 2, 0.1).to(Device::CUDA).detach().requires_grad_();
  const Tensor x = randn32({32, 64}, 3).to(Device::CUDA);
  const Tensor t = random_ids({32}, 10, 4).to(Device::CUDA);
  auto step = [&] {
    w1.zero_grad();
    w2.zero_grad();
    tape::backward(cross_entropy(matmul(gelu(matmul(x, w1)), w2), t));
  };
  for (int i = 0; i < 3; ++i) step();
  const size_t mallocs = cuda::malloc_count(), peak = cuda::peak_bytes();
  for (int i = 0; i < 10; ++i) step();
  EXPECT_EQ(cuda::malloc_count(), mallocs) << "a steady loop must reuse cached blocks";
  EXPECT_EQ(cuda::peak_bytes(), peak);
  EXPECT_GT(cuda::cached_bytes(), 0u);
}

TEST_F(CudaRuntime, CopiesRoundTrip) {
  const Tensor x = randn32({3, 4, 1025}, 5);
  const Tensor g = x.to(Device::CUDA);
  EXPECT_EQ(g.device(), Device::CUDA);
  EXPECT_TRUE(Same(g, x));
  EXPECT_TRUE(Same(g.clone(), x));  // device to device
  EXPECT_TRUE(Same(g.narrow(2, 7, 300).contiguous(), x.narrow(2, 7, 300).contiguous()));
  EXPECT_TRUE(Same(x.transpose(0, 2).to(Device::CUDA), x.transpose(0, 2).contiguous()));
  const Tensor ids = Tensor::from_vector(std::vector<int32_t>{3, -1, 7}, {3});
  EXPECT_TRUE(Same(ids.to(Device::CUDA), ids));
  Tensor s = Tensor::zeros({2, 2}, DType::F32, Device::CUDA);
  s.set({1, 0}, 4.5);
  EXPECT_EQ(s.at({1, 0}), 4.5);
  EXPECT_EQ(sum(s).item(), 4.5);
}

TEST_F(CudaRuntime, GradientsFlowAcrossDevices) {
  const Tensor x = randn32({5, 3}, 6).requires_grad_();
  tape::backward(sum(mul(x.to(Device::CUDA), 2.0)));
  ASSERT_TRUE(x.grad().defined());
  EXPECT_EQ(x.grad().device(), Device::CPU);
  EXPECT_TRUE(Same(x.grad(), Tensor::full({5, 3}, 2.0)));
}

TEST_F(CudaRuntime, Tf32IsOffByDefaultAndSwitches) {
  EXPECT_FALSE(cuda::tf32_enabled());
  cuda::set_tf32(true);
  EXPECT_TRUE(cuda::tf32_enabled());
  cuda::set_tf32(false);
  EXPECT_FALSE(cuda::tf32_enabled());
}

// The kernel profile names what ran, counts the calls, and adds up to about the elapsed time.
TEST_F(CudaRuntime, ProfileSumsGpuTimeByKernel) {
  const Tensor a = randn32({512, 512}, 7).to(Device::CUDA);
  cuda::synchronize();
  cuda::profile_start();
  Tensor y;
  for (int i = 0; i < 3; ++i) y = softmax(matmul(a, a), -1);
  const float first = y.to(Device::CPU).to_vector<float>()[0];
  const std::vector<cuda::ProfileRow> rows = cuda::profile_stop();
  EXPECT_TRUE(std::isfinite(first));
  auto find = [&](const std::string& name) -> const cuda::ProfileRow* {
    for (const cuda::ProfileRow& r : rows)
      if (r.name == name) return &r;
    return nullptr;
  };
  const cuda::ProfileRow* gemm = find("cublasGemmStridedBatchedEx");
  const cuda::ProfileRow* soft = find("softmax_forward_kernel");
  ASSERT_NE(gemm, nullptr);
  ASSERT_NE(soft, nullptr);
  EXPECT_EQ(gemm->calls, 3);
  EXPECT_EQ(soft->calls, 3);
  EXPECT_NE(find("memcpy device to host"), nullptr);
  for (size_t i = 1; i < rows.size(); ++i) EXPECT_GE(rows[i - 1].ms, rows[i].ms);  // sorted
  for (const cuda::ProfileRow& r : rows) EXPECT_GE(r.ms, 0.0) << r.name;
  EXPECT_GT(gemm->ms, 0.0);
  // Off again: later work records nothing, and a second stop returns no rows.
  y = matmul(a, a);
  EXPECT_TRUE(cuda::profile_stop().empty());
}

TEST_F(CudaRuntime, Float64IsRefusedOnTheGpu) {
  const Tensor x = Tensor::zeros({2}, DType::F64);
  EXPECT_TRUE(ThrowsWith([&] { x.to(Device::CUDA); }, {"[to]", "float64", "CPU-only"}));
  EXPECT_TRUE(
      ThrowsWith([] { Tensor::zeros({2}, DType::F64, Device::CUDA); }, {"[empty]", "float64"}));
  EXPECT_EQ(x.to(Device::CPU).dtype(), DType::F64);  // float64 on the CPU stays usable
}

}  // namespace
}  // namespace lmlab::test
