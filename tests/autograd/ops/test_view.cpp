// Tests for shape ops and copies (ops/view.cpp, ops/copy.cpp): which ones are views (shared
// storage), their values and gradchecks, concat/split, contiguous/clone, dtype conversion with
// gradients, and every error path.
#include <vector>

#include "tests/test_util.h"

using namespace lmlab;

namespace {

Tensor f64(const std::vector<double>& v, const Shape& s) { return Tensor::from_vector(v, s); }
std::vector<double> vec(const Tensor& t) { return t.to_vector<double>(); }
// 0, 1, ..., n - 1 as float64 in `shape`.
Tensor iota64(const Shape& shape) {
  return Tensor::arange(numel(shape), DType::F64).reshape(shape);
}

// Weights the output by a fixed random tensor so every element's gradient is distinct.
Tensor weighted(const Tensor& y, uint64_t seed) {
  Generator gen(seed);
  return mul(y, Tensor::randn(y.shape(), gen, DType::F64));
}

}  // namespace

TEST(ViewOps, ReshapeInfersMinusOneAndSharesStorage) {
  Tensor x = iota64({2, 3, 4});
  Tensor a = x.reshape({-1, 4});
  EXPECT_EQ(a.shape(), (Shape{6, 4}));
  EXPECT_EQ(x.reshape({4, -1}).shape(), (Shape{4, 6}));
  EXPECT_EQ(x.reshape({2, -1, 2}).shape(), (Shape{2, 6, 2}));
  EXPECT_EQ(x.reshape({-1}).shape(), (Shape{24}));
  EXPECT_TRUE(a.same_storage(x));
  EXPECT_EQ(vec(a), vec(x));
  EXPECT_EQ(f64({7}, {1, 1}).reshape({}).item(), 7.0);
  Tensor t = x.transpose(0, 2);  // (4, 3, 2), not contiguous: reshape copies in logical order
  Tensor r = t.reshape({24});
  EXPECT_FALSE(r.same_storage(x));
  EXPECT_EQ(r.at({1}), x.at({1, 0, 0}));
  EXPECT_EQ(r.at({2}), x.at({0, 1, 0}));
  EXPECT_TRUE(test::Gradcheck(
      [](const std::vector<Tensor>& in) {
        return weighted(reshape(in[0], {-1, 2}), 1);
      },
      {test::randn64({3, 4}, 1)}));
  EXPECT_TRUE(test::Gradcheck(
      [](const std::vector<Tensor>& in) {
        return weighted(reshape(in[0], {2, 6}), 2);
      },
      {test::randn64_transposed({4, 3}, 2)}));
}

TEST(ViewOps, ViewRefusesNonContiguousAndReshapeChecksSizes) {
  Tensor x = Tensor::zeros({3, 4});
  EXPECT_TRUE(x.view({4, 3}).same_storage(x));
  EXPECT_TRUE(test::ThrowsWith([&] { x.transpose(0, 1).view({12}); },
                               {"[view]", "(4, 3)", "not contiguous"}));
  EXPECT_TRUE(test::ThrowsWith([&] { reshape(x, {5}); }, {"[reshape]", "(3, 4)", "(5)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { reshape(x, {-1, 5}); }, {"[reshape]", "(3, 4)", "(-1, 5)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { reshape(x, {-1, -1}); }, {"[reshape]", "only one dim"}));
  EXPECT_TRUE(test::ThrowsWith([&] { reshape(x, {-2, -6}); }, {"[reshape]", "(-2, -6)"}));
}

TEST(ViewOps, TransposeAndPermuteAreViews) {
  Tensor x = iota64({2, 3, 4});
  Tensor t = x.transpose(0, 2);
  EXPECT_TRUE(t.same_storage(x));
  EXPECT_EQ(t.shape(), (Shape{4, 3, 2}));
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(t.at({3, 1, 0}), x.at({0, 1, 3}));
  EXPECT_EQ(x.transpose(-1, -2).shape(), (Shape{2, 4, 3}));
  Tensor p = permute(x, {1, 2, 0});
  EXPECT_TRUE(p.same_storage(x));
  EXPECT_EQ(p.shape(), (Shape{3, 4, 2}));
  EXPECT_EQ(p.at({2, 3, 1}), x.at({1, 2, 3}));
  EXPECT_EQ(vec(permute(p, {2, 0, 1})), vec(x));  // the inverse permutation
  EXPECT_EQ(vec(permute(x, {-3, -2, -1})), vec(x));
  uint64_t seed = 0;
  const std::vector<std::vector<int64_t>> perms = {{1, 2, 0}, {2, 1, 0}, {0, 2, 1}};
  for (const std::vector<int64_t>& dims : perms) {
    auto f = [&](const std::vector<Tensor>& in) { return weighted(permute(in[0], dims), 3); };
    EXPECT_TRUE(test::Gradcheck(f, {test::randn64({2, 3, 4}, ++seed)}));
    EXPECT_TRUE(test::Gradcheck(f, {test::randn64_transposed({2, 3, 4}, ++seed)}));
  }
  EXPECT_TRUE(test::Gradcheck(
      [](const std::vector<Tensor>& in) { return weighted(transpose(in[0], 0, 1), 4); },
      {test::randn64({3, 5}, 5)}));
}

TEST(ViewOps, PermuteAndTransposeErrors) {
  Tensor x = Tensor::zeros({2, 3, 4});
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        permute(x, {0, 0, 1});
      },
      {"[permute]", "repeated", "(2, 3, 4)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { permute(x, {0, 1}); }, {"[permute]", "2 dims", "(2, 3, 4)"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        permute(x, {0, 1, 3});
      },
      {"[permute]", "dim 3", "(2, 3, 4)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { transpose(x, 0, 3); }, {"[transpose]", "dim 3", "(2, 3, 4)"}));
}

TEST(ViewOps, NarrowAndSliceAreViews) {
  Tensor x = iota64({3, 5});
  Tensor n = x.narrow(1, 1, 3);
  EXPECT_TRUE(n.same_storage(x));
  EXPECT_EQ(n.shape(), (Shape{3, 3}));
  EXPECT_EQ(vec(n), (std::vector<double>{1, 2, 3, 6, 7, 8, 11, 12, 13}));
  EXPECT_EQ(vec(narrow(x, 0, -1, 1)), (std::vector<double>{10, 11, 12, 13, 14}));
  EXPECT_EQ(narrow(x, 1, 5, 0).shape(), (Shape{3, 0}));
  Tensor s = slice(x, -1, 3, 5);
  EXPECT_TRUE(s.same_storage(x));
  EXPECT_EQ(vec(s), (std::vector<double>{3, 4, 8, 9, 13, 14}));
  EXPECT_EQ(vec(slice(x, 0, 1, -1)), (std::vector<double>{5, 6, 7, 8, 9}));
  // narrow of a non-contiguous view: rows 1..2 of the (5, 3) transpose
  Tensor tn = x.transpose(0, 1).narrow(0, 1, 2);
  EXPECT_TRUE(tn.same_storage(x));
  EXPECT_EQ(vec(tn), (std::vector<double>{1, 6, 11, 2, 7, 12}));
  Tensor tc = x.transpose(0, 1).narrow(1, 2, 1);
  EXPECT_EQ(vec(tc), (std::vector<double>{10, 11, 12, 13, 14}));
  auto g1 = [](const std::vector<Tensor>& in) { return weighted(narrow(in[0], 1, 1, 2), 6); };
  auto g2 = [](const std::vector<Tensor>& in) { return weighted(slice(in[0], 0, 1, 4), 7); };
  EXPECT_TRUE(test::Gradcheck(g1, {test::randn64({3, 4}, 8)}));
  EXPECT_TRUE(test::Gradcheck(g1, {test::randn64_transposed({3, 4}, 9)}));
  EXPECT_TRUE(test::Gradcheck(g2, {test::randn64_transposed({5, 2}, 10)}));
}

TEST(ViewOps, NarrowAndSliceErrors) {
  Tensor x = Tensor::zeros({3, 4});
  EXPECT_TRUE(test::ThrowsWith([&] { narrow(x, 1, 2, 3); },
                               {"[narrow] range [2, 5) out of bounds for dim 1 of shape (3, 4)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { narrow(x, 0, -4, 1); }, {"[narrow]", "(3, 4)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { narrow(x, 0, 0, -1); }, {"[narrow]", "(3, 4)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { narrow(x, 2, 0, 1); }, {"[narrow]", "dim 2", "(3, 4)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { slice(x, 1, 3, 2); }, {"[slice]", "[3, 2)", "(3, 4)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { slice(x, 0, 0, 4); }, {"[slice]", "(3, 4)"}));
}

TEST(ViewOps, SqueezeAndUnsqueeze) {
  Tensor x = iota64({2, 3});
  EXPECT_EQ(unsqueeze(x, 0).shape(), (Shape{1, 2, 3}));
  EXPECT_EQ(unsqueeze(x, 2).shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(unsqueeze(x, -1).shape(), (Shape{2, 3, 1}));
  EXPECT_TRUE(unsqueeze(x, 1).same_storage(x));
  Tensor y = iota64({2, 1, 3});
  EXPECT_EQ(squeeze(y, 1).shape(), (Shape{2, 3}));
  EXPECT_EQ(squeeze(y, -2).shape(), (Shape{2, 3}));
  EXPECT_EQ(vec(squeeze(y, 1)), vec(y));
  EXPECT_TRUE(
      test::ThrowsWith([&] { squeeze(x, 0); }, {"[squeeze] dim 0 of shape (2, 3) is not 1"}));
  EXPECT_TRUE(test::ThrowsWith([&] { unsqueeze(x, 3); }, {"[unsqueeze]", "dim 3", "(2, 3)"}));
  EXPECT_TRUE(test::Gradcheck(
      [](const std::vector<Tensor>& in) { return weighted(squeeze(unsqueeze(in[0], 1), 0), 11); },
      {test::randn64({1, 4}, 12)}));
  EXPECT_TRUE(test::Gradcheck(
      [](const std::vector<Tensor>& in) { return weighted(unsqueeze(in[0], -1), 13); },
      {test::randn64_transposed({3, 4}, 14)}));
}

TEST(ViewOps, ConcatThreeInputsAlongTheMiddleDim) {
  Tensor a = iota64({2, 1, 3}), b = add(iota64({2, 2, 3}), 100.0),
         c = add(iota64({2, 3, 3}), 200.0);
  Tensor y = concat({a, b, c}, 1);
  ASSERT_EQ(y.shape(), (Shape{2, 6, 3}));
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t k = 0; k < 3; ++k) {
      EXPECT_EQ(y.at({i, 0, k}), a.at({i, 0, k}));
      for (int64_t j = 0; j < 2; ++j) EXPECT_EQ(y.at({i, 1 + j, k}), b.at({i, j, k}));
      for (int64_t j = 0; j < 3; ++j) EXPECT_EQ(y.at({i, 3 + j, k}), c.at({i, j, k}));
    }
  EXPECT_EQ(vec(concat({f64({1, 2}, {2}), f64({3}, {1})}, -1)), (std::vector<double>{1, 2, 3}));
  auto f = [](const std::vector<Tensor>& in) { return weighted(concat(in, 1), 15); };
  EXPECT_TRUE(test::Gradcheck(f, {test::randn64({2, 1, 3}, 16), test::randn64({2, 2, 3}, 17),
                                  test::randn64({2, 3, 3}, 18)}));
  // non-contiguous inputs, one input that needs no gradient, the same input twice
  Tensor t = test::randn64_transposed({3, 2}, 19);
  Tensor constant = test::randn64({3, 1}, 20).detach();
  auto g = [&](const std::vector<Tensor>& in) {
    return weighted(concat({in[0], constant, in[0]}, -1), 21);
  };
  EXPECT_TRUE(test::Gradcheck(g, {t}));
}

TEST(ViewOps, ConcatErrors) {
  Tensor a = Tensor::zeros({2, 1, 3});
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        concat({a, Tensor::zeros({2, 2, 4})}, 1);
      },
      {"[concat] tensor 1 has shape (2, 2, 4), tensor 0 has (2, 1, 3)",
       "all dims but 1 must match"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        concat({a, Tensor::zeros({2, 3})}, 0);
      },
      {"[concat]", "(2, 3)"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        concat({a, Tensor::zeros({2, 1, 3}, DType::F64)}, 1);
      },
      {"[concat]", "dtype mismatch"}));
  EXPECT_TRUE(test::ThrowsWith([&] { concat({a}, 3); }, {"[concat]", "dim 3", "(2, 1, 3)"}));
  EXPECT_TRUE(test::ThrowsWith([] { concat({}, 0); }, {"[concat]", "at least one"}));
}

TEST(ViewOps, SplitIntoSizes) {
  Tensor x = iota64({2, 5});
  std::vector<Tensor> parts = split(x, 2, 1);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].shape(), (Shape{2, 2}));
  EXPECT_EQ(parts[2].shape(), (Shape{2, 1}));  // the last piece is smaller
  EXPECT_EQ(vec(parts[1]), (std::vector<double>{2, 3, 7, 8}));
  for (const Tensor& p : parts) EXPECT_TRUE(p.same_storage(x));
  std::vector<Tensor> sized = split(x, std::vector<int64_t>{1, 3, 1}, -1);
  ASSERT_EQ(sized.size(), 3u);
  EXPECT_EQ(vec(sized[0]), (std::vector<double>{0, 5}));
  EXPECT_EQ(vec(sized[1]), (std::vector<double>{1, 2, 3, 6, 7, 8}));
  EXPECT_EQ(vec(sized[2]), (std::vector<double>{4, 9}));
  EXPECT_EQ(split(x, 5, 1).size(), 1u);
  EXPECT_EQ(split(x, 7, 1).size(), 1u);
  EXPECT_EQ(vec(concat(split(x, 2, 1), 1)), vec(x));
  auto f = [](const std::vector<Tensor>& in) {
    std::vector<Tensor> p = split(in[0], std::vector<int64_t>{1, 2, 1}, 1);
    return concat({mul(p[2], 3.0), exp(p[0]), p[1]}, 1);
  };
  EXPECT_TRUE(test::Gradcheck(f, {test::randn64({3, 4}, 22)}));
  EXPECT_TRUE(test::Gradcheck(f, {test::randn64_transposed({3, 4}, 23)}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        split(x, std::vector<int64_t>{2, 2}, 1);
      },
      {"[split] sizes add up to 4 but dim 1 of shape (2, 5) is 5"}));
  EXPECT_TRUE(test::ThrowsWith([&] { split(x, 0, 1); }, {"[split]", "positive"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        split(x, std::vector<int64_t>{6, -1}, 1);
      },
      {"[split]", "-1"}));
  EXPECT_TRUE(test::ThrowsWith([&] { split(x, 2, 2); }, {"[split]", "dim 2", "(2, 5)"}));
}

TEST(ViewOps, ContiguousCopiesOnlyWhenNeeded) {
  Tensor x = test::randn64({3, 4}, 24);
  tape::clear();
  Tensor same = x.contiguous();
  EXPECT_EQ(same.impl_ptr(), x.impl_ptr());
  EXPECT_EQ(tape::size(), 0u);
  Tensor t = x.transpose(0, 1);
  Tensor c = t.contiguous();
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_FALSE(c.same_storage(x));
  EXPECT_EQ(vec(c), vec(t));
  EXPECT_EQ(c.at({3, 1}), x.at({1, 3}));
  Tensor cl = clone(x);
  EXPECT_FALSE(cl.same_storage(x));
  EXPECT_EQ(vec(cl), vec(x));
  tape::clear();
  EXPECT_TRUE(test::Gradcheck(
      [](const std::vector<Tensor>& in) { return weighted(in[0].contiguous(), 25); },
      {test::randn64_transposed({3, 4}, 26)}));
  EXPECT_TRUE(
      test::Gradcheck([](const std::vector<Tensor>& in) { return weighted(in[0].clone(), 27); },
                      {test::randn64_transposed({3, 4}, 28)}));
}

TEST(ViewOps, DtypeConversionCarriesGradients) {
  Tensor x64 = f64({1.5, -2.25, 3}, {3}).requires_grad_();
  Tensor x32 = x64.to(DType::F32);
  EXPECT_EQ(x32.dtype(), DType::F32);
  EXPECT_EQ(x32.to_vector<float>(), (std::vector<float>{1.5f, -2.25f, 3.f}));
  tape::backward(sum(mul(x32, 2.0)));  // float32 graph, float64 leaf
  ASSERT_EQ(x64.grad().dtype(), DType::F64);
  EXPECT_EQ(vec(x64.grad()), (std::vector<double>{2, 2, 2}));

  Tensor y32 = Tensor::from_vector(std::vector<float>{1, 2}, {2}).requires_grad_();
  tape::backward(sum(mul(y32.to(DType::F64), f64({3, 4}, {2}))));
  ASSERT_EQ(y32.grad().dtype(), DType::F32);
  EXPECT_EQ(y32.grad().to_vector<float>(), (std::vector<float>{3, 4}));

  Tensor t = test::randn64_transposed({3, 2}, 29);  // non-contiguous source keeps its layout
  tape::clear();
  Tensor t32 = t.to(DType::F32);
  EXPECT_EQ(tape::size(), 1u);  // one to_dtype node, no clone node for the strided source
  EXPECT_EQ(t32.at({2, 1}), double(float(t.at({2, 1}))));
  EXPECT_EQ(t32.at({0, 1}), double(float(t.at({0, 1}))));
  tape::backward(sum(t32));
  EXPECT_EQ(vec(t.grad()), (std::vector<double>(6, 1.0)));
  EXPECT_EQ(x64.to(DType::F64).impl_ptr(), x64.impl_ptr());
  EXPECT_EQ(f64({1.7, -2.7}, {2}).to(DType::I32).to_vector<int32_t>(),
            (std::vector<int32_t>{1, -2}));
  Tensor ids = Tensor::from_vector(std::vector<int32_t>{3, -1}, {2});
  EXPECT_EQ(ids.to(DType::F32).to_vector<float>(), (std::vector<float>{3, -1}));
  EXPECT_FALSE(x64.to(DType::I32).requires_grad());
}
