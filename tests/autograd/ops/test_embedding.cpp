// embedding: float64 gradchecks (repeated ids, 2-D ids, strided weight and ids), the gathered
// rows, the scatter-add of repeated ids (bitwise deterministic on many threads), every error path.
#include <cmath>

#include "tests/test_util.h"

using namespace lmlab;

namespace {

Tensor ids_of(const std::vector<int32_t>& v, const Shape& shape) {
  return Tensor::from_vector(v, shape);
}

}  // namespace

TEST(Embedding, GradcheckRepeatedIds) {
  Tensor w = test::randn64({5, 3}, 1);
  Tensor ids = ids_of({1, 3, 1, 0, 1, 4}, {6});
  EXPECT_TRUE(
      test::Gradcheck([ids](const std::vector<Tensor>& x) { return embedding(x[0], ids); }, {w}));
}

TEST(Embedding, Gradcheck2dIds) {
  Tensor w = test::randn64({4, 2}, 2);
  Tensor ids = ids_of({3, 0, 3, 2, 2, 3}, {2, 3});
  EXPECT_TRUE(
      test::Gradcheck([ids](const std::vector<Tensor>& x) { return embedding(x[0], ids); }, {w}));
}

TEST(Embedding, GradcheckNonContiguousWeightAndIds) {
  Tensor w = test::randn64_transposed({6, 3}, 3);
  ASSERT_FALSE(w.is_contiguous());
  Tensor ids = ids_of({5, 0, 2, 5, 1, 5}, {3, 2}).transpose(0, 1);  // (2, 3), strided
  ASSERT_FALSE(ids.is_contiguous());
  EXPECT_TRUE(test::Gradcheck(
      [ids](const std::vector<Tensor>& x) { return sum(mul(embedding(x[0], ids), x[1])); },
      {w, test::randn64({2, 3, 3}, 4)}));
}

TEST(Embedding, PicksRows) {
  Tensor w = Tensor::arange(12).reshape({4, 3});  // row v holds 3v, 3v + 1, 3v + 2
  Tensor ids = ids_of({2, 0, 3, 2}, {2, 2});
  Tensor y = embedding(w, ids);
  ASSERT_EQ(y.shape(), (Shape{2, 2, 3}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{6, 7, 8, 0, 1, 2, 9, 10, 11, 6, 7, 8}));
  // Strided ids read in logical order: transpose of (2, 2) [[2, 0], [3, 2]] is [[2, 3], [0, 2]].
  Tensor yt = embedding(w, ids.transpose(0, 1));
  EXPECT_EQ(yt.to_vector<float>(), (std::vector<float>{6, 7, 8, 9, 10, 11, 0, 1, 2, 6, 7, 8}));
}

TEST(Embedding, ScalarIdGivesOneRow) {
  Tensor w = Tensor::arange(6).reshape({3, 2});
  Tensor y = embedding(w, ids_of({1}, {}));
  ASSERT_EQ(y.shape(), (Shape{2}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{2, 3}));
}

TEST(Embedding, BackwardSumsRepeatedIds) {
  Tensor w = Tensor::zeros({4, 2}, DType::F64).requires_grad_();
  Tensor ids = ids_of({2, 0, 2, 2}, {4});
  Tensor y = embedding(w, ids);
  Tensor dy = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8}, {4, 2});
  tape::backward(y, dy);
  ASSERT_TRUE(w.grad().defined());
  // row 2 = dy[0] + dy[2] + dy[3]; row 0 = dy[1]; rows 1 and 3 untouched
  EXPECT_EQ(w.grad().to_vector<double>(),
            (std::vector<double>{3, 4, 0, 0, 1 + 5 + 7, 2 + 6 + 8, 0, 0}));
}

// Enough rows and columns to run on several threads: the result must equal, bitwise, a plain
// sequential scatter-add in float32.
TEST(Embedding, BackwardIsDeterministicOnManyThreads) {
  const int64_t N = 4096, V = 7, C = 130;
  std::vector<int32_t> id(N);
  for (int64_t n = 0; n < N; ++n) id[size_t(n)] = int32_t((n * 5 + n / 3) % V);
  Generator gen(11);
  Tensor dy = Tensor::randn({N, C}, gen);
  Tensor w = Tensor::zeros({V, C}).requires_grad_();
  tape::backward(embedding(w, ids_of(id, {N})), dy);
  std::vector<float> ref(size_t(V * C), 0.f);
  const std::vector<float> d = dy.to_vector<float>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) ref[size_t(id[size_t(n)] * C + c)] += d[size_t(n * C + c)];
  EXPECT_EQ(w.grad().to_vector<float>(), ref);
}

TEST(Embedding, ErrorIdOutOfRange) {
  Tensor w = Tensor::zeros({65, 4});
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        embedding(w, ids_of({1, 2, 3, 70, 5}, {5}));
      },
      {"[embedding] token id 70 at position 3 is out of range for a "
       "vocabulary of 65"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        embedding(w, ids_of({0, -1}, {1, 2}));
      },
      {"[embedding]", "token id -1 at position 1", "65"}));
  EXPECT_TRUE(test::ThrowsWith([&] { embedding(w, ids_of({65}, {1})); },
                               {"[embedding]", "token id 65 at position 0", "65"}));
}

TEST(Embedding, ErrorWrongDtypes) {
  Tensor w = Tensor::zeros({5, 4});
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        embedding(w, Tensor::zeros({2, 3}));
      },
      {"[embedding]", "ids", "int32", "float32", "(2, 3)"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        embedding(Tensor::zeros({5, 4}, DType::I32), ids_of({0}, {1}));
      },
      {"[embedding]", "weight", "floating-point", "(5, 4)"}));
}

TEST(Embedding, ErrorWeightNot2d) {
  EXPECT_TRUE(test::ThrowsWith([&] { embedding(Tensor::zeros({5}), ids_of({0}, {1})); },
                               {"[embedding]", "2-D", "(5)"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        embedding(Tensor::zeros({2, 5, 4}), ids_of({0}, {1}));
      },
      {"[embedding]", "2-D", "(2, 5, 4)"}));
  EXPECT_TRUE(
      test::ThrowsWith([&] { embedding(Tensor(), ids_of({0}, {1})); }, {"[embedding]", "weight"}));
}
