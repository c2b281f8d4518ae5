// CUDA == CPU for the elementwise ops: every unary function and its derivative, and broadcasting
// binary arithmetic, on contiguous, transposed and broadcast inputs (fp32, 1e-5 relative).
// Each test runs on the GPU and CPU against CPU (cuda_test_util.h: DeviceParity).
#include "tests/cuda/cuda_test_util.h"

namespace lmlab::test {
namespace {

class ElementwiseParity : public DeviceParity {};

constexpr double kTol = 1e-5;

TEST_P(ElementwiseParity, UnaryOpsMatchCpu) {
  const std::vector<std::pair<std::string, std::function<Tensor(const Tensor&)>>> ops = {
      {"neg", [](const Tensor& x) { return neg(x); }},
      {"exp", [](const Tensor& x) { return exp(x); }},
      {"tanh", [](const Tensor& x) { return tanh(x); }},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }},
      {"relu", [](const Tensor& x) { return relu(x); }},
      {"gelu", [](const Tensor& x) { return gelu(x); }},
      {"silu", [](const Tensor& x) { return silu(x); }},
      {"add_scalar", [](const Tensor& x) { return add(x, 0.75); }},
      {"mul_scalar", [](const Tensor& x) { return mul(x, -1.5); }},
      {"rsub", [](const Tensor& x) { return rsub(x, 2.0); }},
  };
  // 1, a size that is no multiple of a block, and a large one that needs a grid-stride loop.
  for (const Shape& shape : std::vector<Shape>{{1}, {37, 3}, {1 << 21}})
    for (const auto& [name, op] : ops)
      EXPECT_TRUE(Parity(
          device(), [&, &op = op](const std::vector<Tensor>& in) { return op(in[0]); },
          {randn32(shape, 11)}, kTol, name + " " + to_string(shape)));
}

TEST_P(ElementwiseParity, PositiveDomainOpsMatchCpu) {
  const std::vector<std::pair<std::string, std::function<Tensor(const Tensor&)>>> ops = {
      {"log", [](const Tensor& x) { return log(x); }},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }},
      {"pow", [](const Tensor& x) { return pow(x, 2.5); }},
      {"rdiv", [](const Tensor& x) { return rdiv(x, 3.0); }},
  };
  for (const auto& [name, op] : ops)
    EXPECT_TRUE(Parity(
        device(), [&, &op = op](const std::vector<Tensor>& in) { return op(in[0]); },
        {rand32({129, 65}, 12, 0.5, 3.0)}, kTol, name));
}

TEST_P(ElementwiseParity, UnaryOnTransposedInput) {
  EXPECT_TRUE(Parity(
      device(), [](const std::vector<Tensor>& in) { return gelu(transpose(in[0], 0, 1)); },
      {randn32({33, 70}, 13)}, kTol, "gelu of a transpose"));
}

TEST_P(ElementwiseParity, BinaryOpsBroadcastMatchCpu) {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{5, 7}, {5, 7}},      {{4, 1, 6}, {3, 1}},
      {{1}, {300, 2}},       {{2, 3, 4, 5}, {5}},
      {{6, 1}, {1, 9}},      {{}, {3, 3}},
      {{1000, 17}, {1, 17}}, {{2, 1, 1, 1, 1, 1, 1, 1, 3}, {3}},
  };
  const std::vector<std::pair<std::string, Tensor (*)(const Tensor&, const Tensor&)>> ops = {
      {"add", add}, {"sub", sub}, {"mul", mul}, {"div", div}};
  for (const auto& [sa, sb] : shapes) {
    const Tensor a = randn32(sa, 21), b = rand32(sb, 22, 0.5, 2.0);  // b stays away from 0 for div
    for (const auto& [name, op] : ops)
      EXPECT_TRUE(Parity(
          device(), [op = op](const std::vector<Tensor>& in) { return op(in[0], in[1]); }, {a, b},
          kTol, name + " " + to_string(sa) + " and " + to_string(sb)));
  }
}

TEST_P(ElementwiseParity, BinaryOnStridedViews) {
  // a transposed (non-contiguous) (3, 4, 5) left operand against a narrowed (3, 4, 1) right one
  EXPECT_TRUE(Parity(
      device(),
      [](const std::vector<Tensor>& in) {
        return mul(transpose(in[0], 0, 2), narrow(in[1], 1, 2, 4));
      },
      {randn32({5, 4, 3}, 31), randn32({3, 9, 1}, 32)}, kTol, "mul of strided views"));
}

TEST_P(ElementwiseParity, FillAndCopyRoundTrip) {
  Tensor t = Tensor::full({3, 1001}, 2.5, DType::F32, device());
  EXPECT_TRUE(Same(t, Tensor::full({3, 1001}, 2.5)));
  Tensor ids = Tensor::full({17}, 7, DType::I32, device());
  EXPECT_TRUE(Same(ids, Tensor::full({17}, 7, DType::I32)));
  const Tensor x = randn32({6, 5, 4}, 41);
  Tensor dst = Tensor::zeros({4, 5, 6}, DType::F32, device());
  {
    NoGradGuard guard;
    dst.copy_(x.permute({2, 1, 0}).to(device()));
  }
  EXPECT_TRUE(Same(dst, x.permute({2, 1, 0}).contiguous()));
  EXPECT_TRUE(Same(x.to(device()).transpose(0, 2).contiguous(), x.transpose(0, 2).contiguous()));
}

INSTANTIATE_TEST_SUITE_P(Devices, ElementwiseParity, ::testing::Values(Device::CUDA, Device::CPU),
                         device_name);

}  // namespace
}  // namespace lmlab::test
