// CUDA == CPU for the fused LayerNorm (with and without bias) and RMSNorm, forward and backward:
// C = 1, C of 10k+, one row, row counts that split unevenly into the weight-gradient chunks; and
// the fused GPU kernels against the composed twin on the GPU (fp32, 1e-5 relative).
#include "tests/cuda/cuda_test_util.h"

namespace lmlab::test {
namespace {

class CudaNorm : public CudaTest {};

constexpr double kTol = 1e-5;

const std::vector<Shape> kShapes = {{1, 1}, {4, 1}, {1, 768}, {3, 5, 7}, {300, 96}, {2, 12289},
                                    {8200, 4}};

TEST_F(CudaNorm, LayerNormMatchesCpu) {
  for (const Shape& s : kShapes) {
    const int64_t C = s.back();
    const Tensor x = randn32(s, 1, 2.0), w = randn32({C}, 2), b = randn32({C}, 3);
    EXPECT_TRUE(Parity([](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], in[2]); },
                       {x, w, b}, kTol, "layer_norm " + to_string(s)));
    EXPECT_TRUE(Parity([](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], Tensor()); },
                       {x, w}, kTol, "layer_norm without bias " + to_string(s)));
  }
}

TEST_F(CudaNorm, LayerNormOfShiftedRows) {
  // |mean| >> std: the shifted one-pass variance must not cancel
  const Tensor x = add(randn32({16, 64}, 4, 0.01), 1000.0).detach();
  EXPECT_TRUE(Parity([](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], in[2]); },
                     {x, randn32({64}, 5), randn32({64}, 6)}, 1e-4, "layer_norm of shifted rows"));
}

TEST_F(CudaNorm, RmsNormMatchesCpu) {
  for (const Shape& s : kShapes) {
    const Tensor x = randn32(s, 7, 2.0), w = randn32({s.back()}, 8);
    EXPECT_TRUE(Parity([](const std::vector<Tensor>& in) { return rms_norm(in[0], in[1]); }, {x, w},
                       kTol, "rms_norm " + to_string(s)));
  }
}

TEST_F(CudaNorm, NormOfTransposedInput) {
  EXPECT_TRUE(Parity(
      [](const std::vector<Tensor>& in) { return rms_norm(transpose(in[0], 0, 1), in[1]); },
      {randn32({33, 20}, 9), randn32({20}, 10)}, kTol, "rms_norm of a transpose"));
}

TEST_F(CudaNorm, FusedEqualsComposedOnGpu) {
  const Tensor x = randn32({37, 50}, 11).to(Device::CUDA), w = randn32({50}, 12).to(Device::CUDA),
               b = randn32({50}, 13).to(Device::CUDA);
  EXPECT_TRUE(Close(layer_norm(x, w, b), layer_norm_composed(x, w, b), 1e-5, "layer_norm"));
  EXPECT_TRUE(Close(rms_norm(x, w), rms_norm_composed(x, w), 1e-5, "rms_norm"));
}

}  // namespace
}  // namespace lmlab::test
