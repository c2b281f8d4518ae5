// masked_fill and causal_mask: float64 gradchecks (broadcast and causal masks, strided inputs),
// exact values, the backward that zeroes filled positions, and every error path.
#include <cmath>
#include <limits>

#include "tests/test_util.h"

using namespace lmlab;

namespace {

Tensor mask_of(const std::vector<int32_t>& v, const Shape& shape) {
  return Tensor::from_vector(v, shape);
}

}  // namespace

TEST(CausalMask, ExactPattern) {
  Tensor m = causal_mask(4);
  EXPECT_EQ(m.dtype(), DType::I32);
  ASSERT_EQ(m.shape(), (Shape{4, 4}));
  EXPECT_EQ(m.to_vector<int32_t>(), (std::vector<int32_t>{0, 1, 1, 1,  //
                                                          0, 0, 1, 1,  //
                                                          0, 0, 0, 1,  //
                                                          0, 0, 0, 0}));
  EXPECT_EQ(causal_mask(1).to_vector<int32_t>(), (std::vector<int32_t>{0}));
  EXPECT_EQ(causal_mask(0).shape(), (Shape{0, 0}));
}

TEST(CausalMask, ErrorNegativeT) {
  EXPECT_TRUE(test::ThrowsWith([] { causal_mask(-2); }, {"[causal_mask]", "-2"}));
}

TEST(MaskedFill, GradcheckCausalMaskOverHeads) {
  Tensor x = test::randn64({2, 2, 3, 3}, 1);  // (B, H, T, T)
  Tensor mask = causal_mask(3);
  EXPECT_TRUE(test::Gradcheck(
      [mask](const std::vector<Tensor>& in) { return masked_fill(in[0], mask, -1e9); }, {x}));
}

TEST(MaskedFill, GradcheckBroadcastMasks) {
  Tensor x = test::randn64({2, 3, 4}, 2);
  Tensor row = mask_of({1, 0, 0, 1}, {4});
  Tensor col = mask_of({0, 1, 1}, {3, 1});
  Tensor batch = mask_of({1, 0}, {2, 1, 1});
  for (const Tensor& mask : {row, col, batch})
    EXPECT_TRUE(test::Gradcheck(
        [mask](const std::vector<Tensor>& in) { return masked_fill(in[0], mask, 2.5); }, {x}))
        << "mask shape " << to_string(mask.shape());
}

TEST(MaskedFill, GradcheckNonContiguous) {
  Tensor x = test::randn64_transposed({4, 3}, 3);
  ASSERT_FALSE(x.is_contiguous());
  Tensor mask = mask_of({1, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 1}, {3, 4}).transpose(0, 1);
  EXPECT_TRUE(test::Gradcheck(
      [mask](const std::vector<Tensor>& in) { return masked_fill(in[0], mask, 0.0); }, {x}));
}

TEST(MaskedFill, Values) {
  Tensor x = Tensor::arange(6).reshape({2, 3});
  EXPECT_EQ(masked_fill(x, mask_of({1, 0, 0, 0, 0, 1}, {2, 3}), -1).to_vector<float>(),
            (std::vector<float>{-1, 1, 2, 3, 4, -1}));
  EXPECT_EQ(masked_fill(x, mask_of({0, 7, 0}, {3}), 9).to_vector<float>(),  // any nonzero fills
            (std::vector<float>{0, 9, 2, 3, 9, 5}));
  EXPECT_EQ(masked_fill(x, mask_of({1, 0}, {2, 1}), 9).to_vector<float>(),
            (std::vector<float>{9, 9, 9, 3, 4, 5}));
  EXPECT_EQ(masked_fill(x, mask_of({1}, {}), 9).to_vector<float>(), (std::vector<float>(6, 9.f)));
  // Strided x and mask: x^T is [[0, 3], [1, 4], [2, 5]]; mask^T is [[1, 0], [0, 0], [1, 1]].
  Tensor mt = mask_of({1, 0, 1, 0, 0, 1}, {2, 3}).transpose(0, 1);
  EXPECT_EQ(masked_fill(x.transpose(0, 1), mt, -2).to_vector<float>(),
            (std::vector<float>{-2, 3, 1, 4, -2, -2}));
}

TEST(MaskedFill, NegativeInfinityFill) {
  const double inf = std::numeric_limits<double>::infinity();
  Tensor y = masked_fill(Tensor::ones({3, 3}), causal_mask(3), -inf);
  const std::vector<float> v = y.to_vector<float>();
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      if (j > i)
        EXPECT_TRUE(std::isinf(v[size_t(i * 3 + j)]) && v[size_t(i * 3 + j)] < 0);
      else
        EXPECT_EQ(v[size_t(i * 3 + j)], 1.f);
    }
}

TEST(MaskedFill, BackwardZeroesFilledPositions) {
  Tensor x = Tensor::zeros({2, 3}, DType::F64).requires_grad_();
  Tensor y = masked_fill(x, mask_of({0, 1, 0}, {3}), 5);
  tape::backward(y, Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3}));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{1, 0, 3, 4, 0, 6}));
}

TEST(MaskedFill, ErrorMaskNotInt32) {
  Tensor x = Tensor::zeros({4, 4});
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        masked_fill(x, Tensor::zeros({4, 4}), 0);
      },
      {"[masked_fill]", "mask", "int32", "float32", "(4, 4)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { masked_fill(x, Tensor(), 0); }, {"[masked_fill]", "mask"}));
}

TEST(MaskedFill, ErrorXNotFloat) {
  EXPECT_TRUE(test::ThrowsWith(
      [] {
        masked_fill(Tensor::zeros({2, 2}, DType::I32), causal_mask(2), 0);
      },
      {"[masked_fill]", "x", "floating-point", "(2, 2)"}));
}

TEST(MaskedFill, ErrorMaskNotBroadcastable) {
  Tensor x = Tensor::zeros({2, 3});
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        masked_fill(x, mask_of({0, 0, 0, 0}, {4}), 0);
      },
      {"[masked_fill]", "(4)", "(2, 3)"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        masked_fill(x, mask_of({0, 0, 0, 0, 0, 0}, {3, 2}), 0);
      },
      {"[masked_fill]", "(3, 2)", "(2, 3)"}));
  // A mask that would broadcast x to a bigger shape is refused: the output keeps x's shape.
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        masked_fill(x, Tensor::zeros({2, 2, 3}, DType::I32), 0);
      },
      {"[masked_fill]", "(2, 2, 3)", "(2, 3)"}));
}
