// CUDA == CPU for matmul through cuBLAS: awkward sizes, batch broadcasting, transposed views and
// the 2-D weight path, at fp32 (1e-5 relative) and with TF32 on (1e-3 relative).
// Each test runs on the GPU and CPU against CPU (cuda_test_util.h: DeviceParity).
#include "tests/cuda/cuda_test_util.h"

namespace lmlab::test {
namespace {

class MatmulParity : public DeviceParity {};

struct Case {
  Shape a, b;
  bool transpose_b;  // b is given as the transposed view of a (.., N, K) tensor
};

const std::vector<Case> kCases = {
    {{1, 1}, {1, 1}, false},      {{3, 5}, {5, 7}, false},          {{67, 129}, {129, 33}, false},
    {{4, 10, 3}, {3, 11}, false}, {{2, 3, 9, 4}, {3, 4, 5}, false}, {{1, 6, 7}, {5, 7, 2}, false},
    {{17, 64}, {31, 64}, true},   {{2, 5, 8}, {2, 3, 8}, true},     {{300, 1}, {1, 200}, false},
};

void run_cases(Device device, double tol, const std::string& mode) {
  for (const Case& c : kCases) {
    const std::string s = mode + " " + to_string(c.a) + " @ " + to_string(c.b);
    const Tensor a = randn32(c.a, 1), b = randn32(c.b, 2);
    if (c.transpose_b)
      EXPECT_TRUE(Parity(
          device,
          [](const std::vector<Tensor>& in) { return matmul(in[0], transpose(in[1], -1, -2)); },
          {a, b}, tol, s + "^T"));
    else
      EXPECT_TRUE(Parity(
          device, [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }, {a, b}, tol,
          s));
  }
  // a transposed left operand
  EXPECT_TRUE(Parity(
      device, [](const std::vector<Tensor>& in) { return matmul(transpose(in[0], 0, 1), in[1]); },
      {randn32({40, 25}, 3), randn32({40, 19}, 4)}, tol, mode + " a^T @ b"));
}

TEST_P(MatmulParity, Fp32MatchesCpu) {
  ASSERT_FALSE(cuda::tf32_enabled()) << "TF32 must be off by default";
  run_cases(device(), 1e-5, "fp32");
}

TEST_P(MatmulParity, Tf32MatchesCpuLoosely) {
  use_tf32();
  run_cases(device(), 1e-3, "tf32");
}

TEST_P(MatmulParity, LargeLinearLayer) {
  // (B, T, C) @ (C, 4C): the rows of the activation fold into one GEMM on both devices
  EXPECT_TRUE(Parity(
      device(), [](const std::vector<Tensor>& in) { return matmul(in[0], transpose(in[1], 0, 1)); },
      {randn32({4, 100, 96}, 5), randn32({384, 96}, 6, 0.02)}, 1e-5, "linear"));
}

INSTANTIATE_TEST_SUITE_P(Devices, MatmulParity, ::testing::Values(Device::CUDA, Device::CPU),
                         device_name);

}  // namespace
}  // namespace lmlab::test
