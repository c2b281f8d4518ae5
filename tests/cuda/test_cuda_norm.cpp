// CUDA == CPU for the fused LayerNorm (with and without bias) and RMSNorm, forward and backward:
// C = 1, C of 10k+, one row, row counts that split unevenly into the weight-gradient chunks, rows
// on both sides of the one-warp-per-row limit (1024) and row counts not a multiple of the 8 rows a
// block holds; QK-norm's per-head rows of a transposed (B, H, T, HS) view; and
// the fused GPU kernels against the composed twin on the GPU (fp32, 1e-5 relative).
// Each test runs on the GPU and CPU against CPU (cuda_test_util.h: DeviceParity).
#include "tests/cuda/cuda_test_util.h"

namespace lmlab::test {
namespace {

class NormParity : public DeviceParity {};

constexpr double kTol = 1e-5;

const std::vector<Shape> kShapes = {{1, 1},     {4, 1},     {1, 768},  {3, 5, 7},
                                    {300, 96},  {2, 12289}, {8200, 4}, {2, 4, 9, 24},
                                    {1001, 64}, {13, 1024}, {5, 1025}, {9, 128}};

TEST_P(NormParity, LayerNormMatchesCpu) {
  for (const Shape& s : kShapes) {
    const int64_t C = s.back();
    const Tensor x = randn32(s, 1, 2.0), w = randn32({C}, 2), b = randn32({C}, 3);
    EXPECT_TRUE(Parity(
        device(), [](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], in[2]); },
        {x, w, b}, kTol, "layer_norm " + to_string(s)));
    EXPECT_TRUE(Parity(
        device(), [](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], Tensor()); },
        {x, w}, kTol, "layer_norm without bias " + to_string(s)));
  }
}

TEST_P(NormParity, LayerNormOfShiftedRows) {
  // |mean| >> std: the shifted one-pass variance must not cancel
  const Tensor x = add(randn32({16, 64}, 4, 0.01), 1000.0).detach();
  EXPECT_TRUE(Parity(
      device(), [](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], in[2]); },
      {x, randn32({64}, 5), randn32({64}, 6)}, 1e-4, "layer_norm of shifted rows"));
}

TEST_P(NormParity, RmsNormMatchesCpu) {
  for (const Shape& s : kShapes) {
    const Tensor x = randn32(s, 7, 2.0), w = randn32({s.back()}, 8);
    EXPECT_TRUE(Parity(
        device(), [](const std::vector<Tensor>& in) { return rms_norm(in[0], in[1]); }, {x, w},
        kTol, "rms_norm " + to_string(s)));
  }
}

TEST_P(NormParity, NormOfTransposedInput) {
  EXPECT_TRUE(Parity(
      device(),
      [](const std::vector<Tensor>& in) { return rms_norm(transpose(in[0], 0, 1), in[1]); },
      {randn32({20, 33}, 9), randn32({20}, 10)}, kTol, "rms_norm of a transpose"));
}

// QK-norm's input: each head's rows of q viewed as (B, H, T, HS), a transpose of the projection.
TEST_P(NormParity, RmsNormOfHeads) {
  const int64_t B = 3, T = 17, H = 4, HS = 24;
  EXPECT_TRUE(Parity(
      device(),
      [&](const std::vector<Tensor>& in) {
        return rms_norm(transpose(reshape(in[0], {B, T, H, HS}), 1, 2), in[1]);
      },
      {randn32({B, T, H * HS}, 14, 2.0), randn32({HS}, 15)}, kTol, "rms_norm of heads"));
}

TEST_P(NormParity, FusedEqualsComposed) {
  const Tensor x = randn32({37, 50}, 11).to(device()), w = randn32({50}, 12).to(device()),
               b = randn32({50}, 13).to(device());
  EXPECT_TRUE(Close(layer_norm(x, w, b), layer_norm_composed(x, w, b), 1e-5, "layer_norm"));
  EXPECT_TRUE(Close(rms_norm(x, w), rms_norm_composed(x, w), 1e-5, "rms_norm"));
}

INSTANTIATE_TEST_SUITE_P(Devices, NormParity, ::testing::Values(Device::CUDA, Device::CPU),
                         device_name);

}  // namespace
}  // namespace lmlab::test
