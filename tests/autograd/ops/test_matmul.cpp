// Tests for matmul (ops/matmul.cpp): float64 gradchecks over 2-D, batched, broadcast, 2-D-weight,
// transposed-view and size-1 shapes; values by hand and against a naive triple loop; the strided
// BLAS paths against the contiguous path; what is saved for backward; and every error message.
#include <omp.h>

#include <cmath>
#include <vector>

#include "autograd/kernels/cuda_runtime.h"
#include "tests/test_util.h"

using namespace lmlab;

namespace {

Tensor mm(const Tensor& a, const Tensor& b) { return matmul(a, b); }
Tensor mm_of(const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }

// y (M, N) = a (M, K) @ b (K, N) by three loops in double, on row-major values.
std::vector<double> naive(const std::vector<double>& a, const std::vector<double>& b, int64_t M,
                          int64_t K, int64_t N) {
  std::vector<double> y(size_t(M * N), 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j)
      for (int64_t k = 0; k < K; ++k)
        y[size_t(i * N + j)] += a[size_t(i * K + k)] * b[size_t(k * N + j)];
  return y;
}

std::vector<double> values(const Tensor& t) { return t.to(DType::F64).to_vector<double>(); }

// Gradients of sum(w * matmul(a, b)) for a fixed random w, as (da, db).
std::pair<Tensor, Tensor> grads_of(const Tensor& a_leaf, const Tensor& b_leaf, const Tensor& a,
                                   const Tensor& b, const Tensor& w) {
  a_leaf.zero_grad();
  b_leaf.zero_grad();
  tape::backward(sum(mul(matmul(a, b), w)));
  return {a_leaf.grad(), b_leaf.grad()};
}

}  // namespace

TEST(Matmul, Gradcheck2D) {
  EXPECT_TRUE(test::Gradcheck(mm_of, {test::randn64({3, 4}, 1), test::randn64({4, 2}, 2)}));
  EXPECT_TRUE(test::Gradcheck(mm_of, {test::randn64({5, 3}, 3), test::randn64({3, 6}, 4)}));
}

TEST(Matmul, GradcheckBatched) {
  EXPECT_TRUE(test::Gradcheck(mm_of, {test::randn64({2, 3, 4}, 5), test::randn64({2, 4, 2}, 6)}));
  EXPECT_TRUE(
      test::Gradcheck(mm_of, {test::randn64({2, 2, 2, 3}, 7), test::randn64({2, 2, 3, 2}, 8)}));
}

TEST(Matmul, GradcheckBroadcastBatchDims) {
  Tensor a = test::randn64({2, 1, 3, 4}, 9), b = test::randn64({5, 4, 2}, 10);
  EXPECT_EQ(mm(a, b).shape(), (Shape{2, 5, 3, 2}));
  EXPECT_TRUE(test::Gradcheck(mm_of, {a, b}));
  // A 2-D a against a batched b broadcasts a over the batch.
  EXPECT_TRUE(test::Gradcheck(mm_of, {test::randn64({3, 4}, 11), test::randn64({3, 4, 2}, 12)}));
  EXPECT_TRUE(
      test::Gradcheck(mm_of, {test::randn64({1, 3, 2}, 13), test::randn64({2, 1, 2, 3}, 14)}));
}

TEST(Matmul, Gradcheck2DWeightAgainstBatchedInput) {
  // (B, T, C) @ (C, N): the one-GEMM path forward and for the weight gradient.
  EXPECT_TRUE(test::Gradcheck(mm_of, {test::randn64({2, 3, 4}, 15), test::randn64({4, 3}, 16)}));
  EXPECT_TRUE(test::Gradcheck(mm_of, {test::randn64({2, 2, 3, 4}, 17), test::randn64({4, 2}, 18)}));
  // A batched a whose rows do not fold into one matrix (a transposed view) takes the batched path.
  auto f = [](const std::vector<Tensor>& in) { return mm(transpose(in[0], -1, -2), in[1]); };
  EXPECT_TRUE(test::Gradcheck(f, {test::randn64({2, 4, 3}, 19), test::randn64({4, 2}, 20)}));
}

TEST(Matmul, GradcheckTransposedViews) {
  // Transposes of leaves reach BLAS as Trans flags; gradients flow back through the views.
  auto f = [](const std::vector<Tensor>& in) {
    return mm(transpose(in[0], -1, -2), transpose(in[1], -1, -2));
  };
  EXPECT_TRUE(test::Gradcheck(f, {test::randn64({4, 3}, 21), test::randn64({2, 4}, 22)}));
  EXPECT_TRUE(test::Gradcheck(f, {test::randn64({2, 4, 3}, 23), test::randn64({2, 2, 4}, 24)}));
  // Leaves that are themselves strided views.
  EXPECT_TRUE(test::Gradcheck(
      mm_of, {test::randn64_transposed({3, 4}, 25), test::randn64_transposed({4, 2}, 26)}));
}

TEST(Matmul, GradcheckSizeOneDims) {
  // M = 1, N = 1, K = 1, and size-1 batch dims.
  EXPECT_TRUE(test::Gradcheck(mm_of, {test::randn64({1, 4}, 27), test::randn64({4, 3}, 28)}));
  EXPECT_TRUE(test::Gradcheck(mm_of, {test::randn64({3, 4}, 29), test::randn64({4, 1}, 30)}));
  EXPECT_TRUE(test::Gradcheck(mm_of, {test::randn64({3, 1}, 31), test::randn64({1, 2}, 32)}));
  EXPECT_TRUE(test::Gradcheck(mm_of, {test::randn64({2, 1, 1}, 33), test::randn64({1, 1, 3}, 34)}));
  // Transposed views of size-1 matrices have unusual strides that must still read right.
  auto f = [](const std::vector<Tensor>& in) {
    return mm(transpose(in[0], -1, -2), transpose(in[1], -1, -2));
  };
  EXPECT_TRUE(test::Gradcheck(f, {test::randn64({4, 1}, 35), test::randn64({1, 4}, 36)}));
  EXPECT_TRUE(test::Gradcheck(f, {test::randn64({1, 3}, 37), test::randn64({2, 1}, 38)}));
}

TEST(Matmul, ValuesByHand) {
  Tensor a = Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {2, 2});
  Tensor b = Tensor::from_vector(std::vector<double>{5, 6, 7, 8}, {2, 2});
  EXPECT_EQ(values(mm(a, b)), (std::vector<double>{19, 22, 43, 50}));
  // (2, 3) @ (3, 1)
  Tensor c = Tensor::from_vector(std::vector<double>{1, 0, -1, 2, 3, 4}, {2, 3});
  Tensor d = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3, 1});
  EXPECT_EQ(values(mm(c, d)), (std::vector<double>{-2, 20}));
  // Broadcast batch: (2, 1, 2) @ (2, 1) -> each batch row times the same column.
  Tensor e = Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 1, 2});
  Tensor w = Tensor::from_vector(std::vector<float>{10, 1}, {2, 1});
  Tensor y = mm(e, w);
  EXPECT_EQ(y.shape(), (Shape{2, 1, 1}));
  EXPECT_EQ(values(y), (std::vector<double>{12, 34}));
  // Inner dim 0: the empty sum is 0. Rows 0: an empty result.
  EXPECT_EQ(values(mm(Tensor::ones({2, 0}), Tensor::ones({0, 3}))), std::vector<double>(6, 0.0));
  EXPECT_EQ(mm(Tensor::ones({0, 2}), Tensor::ones({2, 3})).shape(), (Shape{0, 3}));
}

TEST(Matmul, GradientsByHand) {
  // d sum(a @ b) / da = 1 @ b^T: row sums of b, repeated; / db = a^T @ 1: column sums of a.
  Tensor a = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3}).requires_grad_();
  Tensor b = Tensor::from_vector(std::vector<double>{1, -1, 2, 0, 1, 1}, {3, 2}).requires_grad_();
  tape::backward(sum(mm(a, b)));
  EXPECT_EQ(values(a.grad()), (std::vector<double>{0, 2, 2, 0, 2, 2}));
  EXPECT_EQ(values(b.grad()), (std::vector<double>{5, 5, 7, 7, 9, 9}));
}

TEST(Matmul, Float32MatchesNaiveTripleLoop) {
  Generator gen(40);
  const int64_t M = 37, K = 53, N = 29;
  Tensor a = Tensor::randn({M, K}, gen), b = Tensor::randn({K, N}, gen);
  const std::vector<double> va = values(a), vb = values(b), got = values(mm(a, b));
  const std::vector<double> want = naive(va, vb, M, K, N);
  // Relative to the magnitude the dot product sums, sum_k |a_ik b_kj|.
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double scale = 0;
      for (int64_t k = 0; k < K; ++k)
        scale += std::abs(va[size_t(i * K + k)] * vb[size_t(k * N + j)]);
      ASSERT_LE(std::abs(got[size_t(i * N + j)] - want[size_t(i * N + j)]), 1e-5 * scale)
          << "at (" << i << ", " << j << ")";
    }
}

TEST(Matmul, BroadcastBatchMatchesPerBatchProducts) {
  Generator gen(41);
  Tensor a = Tensor::randn({3, 1, 5, 7}, gen), b = Tensor::randn({4, 7, 6}, gen);
  Tensor y = mm(a, b);
  ASSERT_EQ(y.shape(), (Shape{3, 4, 5, 6}));
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 4; ++j) {
      Tensor ai = a.narrow(0, i, 1).reshape({5, 7}), bj = b.narrow(0, j, 1).reshape({7, 6});
      Tensor yij = y.narrow(0, i, 1).narrow(1, j, 1).reshape({5, 6});
      const std::vector<double> want = naive(values(ai), values(bj), 5, 7, 6), got = values(yij);
      for (size_t e = 0; e < want.size(); ++e) EXPECT_NEAR(got[e], want[e], 1e-4);
    }
}

TEST(Matmul, TransposedViewsEqualContiguousPathExactly) {
  for (int64_t batch : {0, 2}) {
    const Shape sx = batch ? Shape{batch, 6, 5} : Shape{6, 5};
    const Shape sw = batch ? Shape{batch, 4, 6} : Shape{4, 6};
    Tensor x = test::randn64(sx, 42), w = test::randn64(sw, 43);
    Tensor a = transpose(x, -1, -2), b = transpose(w, -1, -2);  // (.., 5, 6) and (.., 6, 4)
    ASSERT_FALSE(a.is_contiguous());
    Tensor ac = contiguous_copy(a).detach().requires_grad_();
    Tensor bc = contiguous_copy(b).detach().requires_grad_();
    EXPECT_EQ(test::max_abs_diff(mm(a, b), mm(ac, bc)), 0.0);
    EXPECT_EQ(test::max_abs_diff(mm(a, bc), mm(ac, bc)), 0.0);
    EXPECT_EQ(test::max_abs_diff(mm(ac, b), mm(ac, bc)), 0.0);
    // The gradients through the views equal the contiguous ones, transposed back.
    Tensor wt = test::randn64(batch ? Shape{batch, 5, 4} : Shape{5, 4}, 44).detach();
    auto [dx, dw] = grads_of(x, w, a, b, wt);
    auto [dac, dbc] = grads_of(ac, bc, ac, bc, wt);
    EXPECT_EQ(test::max_abs_diff(transpose(dx, -1, -2), dac), 0.0);
    EXPECT_EQ(test::max_abs_diff(transpose(dw, -1, -2), dbc), 0.0);
  }
}

TEST(Matmul, StridedOperandsMatchContiguousPath) {
  Generator gen(45);
  Tensor b = Tensor::randn({4, 3}, gen, DType::F64);
  // A slice of the last dim (row stride 6 > K = 4): one GEMM with lda = 6.
  Tensor wide = Tensor::randn({2, 3, 6}, gen, DType::F64);
  Tensor sliced = wide.narrow(2, 1, 4);
  EXPECT_LT(test::max_abs_diff(mm(sliced, b), mm(contiguous_copy(sliced), b)), 1e-12);
  // A slice of a batch dim still folds into rows.
  Tensor tall = Tensor::randn({4, 3, 4}, gen, DType::F64);
  Tensor rows = tall.narrow(0, 1, 2);
  EXPECT_LT(test::max_abs_diff(mm(rows, b), mm(contiguous_copy(rows), b)), 1e-12);
  // Permuted batch dims do not fold: one GEMM per batch through the strides.
  Tensor perm = Tensor::randn({3, 2, 4}, gen, DType::F64).permute({1, 0, 2});
  EXPECT_LT(test::max_abs_diff(mm(perm, b), mm(contiguous_copy(perm), b)), 1e-12);
  // An operand with stride 0 in the matrix dims (a broadcast view) is copied first.
  Tensor row = Tensor::randn({1, 4}, gen, DType::F64);
  Tensor expanded = make_view(row, {3, 4}, {0, 1}, row.offset());
  EXPECT_LT(test::max_abs_diff(mm(expanded, b), mm(contiguous_copy(expanded), b)), 1e-12);
  EXPECT_TRUE(test::Gradcheck(mm_of, {test::randn64({3, 2, 4}, 46), test::randn64({4, 2}, 47)}));
}

TEST(Matmul, SavesAnOperandOnlyWhenTheOtherNeedsItsGradient) {
  // Only a needs a gradient, so a itself is not saved: changing it in place after the forward
  // leaves backward intact. b is saved, and changing it makes backward refuse.
  Tensor a = test::randn64({3, 4}, 48);
  Tensor b = test::randn64({4, 2}, 49).detach();
  Tensor y = sum(mm(a, b));
  {
    NoGradGuard no_grad;
    a.mul_(2.0);
  }
  tape::backward(y);
  // d sum(a @ b) / da_ik = sum_j b_kj, the same for every row i.
  const std::vector<double> vb = values(b), da = values(a.grad());
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t k = 0; k < 4; ++k)
      EXPECT_NEAR(da[size_t(i * 4 + k)], vb[size_t(k * 2)] + vb[size_t(k * 2 + 1)], 1e-12);
  EXPECT_FALSE(b.grad().defined());
  Tensor y2 = sum(mm(a, b));
  b.mul_(2.0);
  EXPECT_TRUE(test::ThrowsWith([&] { tape::backward(y2); }, {"[matmul]", "(4, 2)"}));
  tape::clear();
}

TEST(Matmul, ErrorMessagesNameTheOpAndBothShapes) {
  auto f32 = [](const Shape& s) { return Tensor::zeros(s); };
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        mm(f32({4, 3}), f32({5, 2}));
      },
      {"[matmul] inner dims differ", "a is (4, 3)", "b is (5, 2)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { mm(f32({3}), f32({3, 2})); }, {"[matmul]", "(3)", "(3, 2)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { mm(f32({4, 3}), f32({3})); }, {"[matmul]", "(4, 3)", "(3)"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        mm(f32({2, 3, 4}), f32({5, 4, 2}));
      },
      {"[matmul]", "broadcast", "(2, 3, 4)", "(5, 4, 2)"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        mm(f32({4, 3}), Tensor::zeros({3, 2}, DType::F64));
      },
      {"[matmul]", "float32", "float64", "(4, 3)", "(3, 2)"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        mm(Tensor::zeros({4, 3}, DType::I32), f32({3, 2}));
      },
      {"[matmul]", "int32", "(4, 3)", "(3, 2)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { mm(Tensor(), f32({3, 2})); }, {"[matmul]", "a"}));
  // 2^31 rows (a stride-0 view, nothing allocated) would overflow BLAS's 32-bit sizes.
  Tensor row = f32({1, 2});
  Tensor huge = make_view(row, {int64_t(1) << 31, 2}, {0, 1}, 0);
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        mm(huge, f32({2, 3}));
      },
      {"[matmul]", "2^31", "(2147483648, 2)", "(2, 3)"}));
}

TEST(Matmul, DeviceMismatchNamesBothShapes) {
  if (!cuda::available()) GTEST_SKIP() << cuda::unavailable_reason();
  Tensor a = Tensor::zeros({4, 3}), b = Tensor::zeros({3, 2}, DType::F32, Device::CUDA);
  EXPECT_TRUE(
      test::ThrowsWith([&] { mm(a, b); }, {"[matmul] device mismatch", "(4, 3)", "(3, 2)"}));
}

TEST(Matmul, CopiesForBlasAreNotGraphNodes) {
  // x (3, 4, 2) permuted to (2, 3, 4) has matrix strides (8, 2): no BLAS flag reads that, so
  // matmul copies it internally; the tape still gets exactly one node, and gradients are right.
  Tensor x = test::randn64({3, 4, 2}, 50), b = test::randn64({4, 2}, 51);
  Tensor a = permute(x, {2, 0, 1});
  const size_t before = tape::size();
  Tensor y = mm(a, b);
  EXPECT_EQ(tape::size(), before + 1);
  EXPECT_TRUE(y.requires_grad());
  tape::clear();
  auto f = [](const std::vector<Tensor>& in) { return mm(permute(in[0], {2, 0, 1}), in[1]); };
  EXPECT_TRUE(test::Gradcheck(f, {x, b}));
}

// Products large enough that the CPU GEMM splits C into one slab per thread (rows when C is
// taller, columns when wider; kernels/cpu/matmul.cpp), and narrow ones with a long K that it
// hands to OpenBLAS whole (40 x 32 x 700: with Haswell kernels OpenBLAS's own threading changed
// their results with the thread count): values and both gradients are bitwise the same for 1, 2
// and 3 threads, and match the naive product.
TEST(Matmul, BitwiseIdenticalAcrossThreadCounts) {
  const int saved = omp_get_max_threads();
  struct Case {
    int64_t M, K, N;
    bool ta, tb;  // a stored (K, M) / b stored (N, K) and used through a transposed view
  };
  for (const Case& c : {Case{200, 64, 96, false, false}, Case{72, 128, 300, false, true},
                        Case{300, 40, 260, true, false}, Case{33, 700, 129, true, true},
                        Case{40, 700, 32, false, false}, Case{16, 700, 32, false, true}}) {
    std::vector<std::vector<float>> first;
    for (int threads : {1, 2, 3}) {
      omp_set_num_threads(threads);
      Generator gen(5);
      Tensor a_leaf = Tensor::randn(c.ta ? Shape{c.K, c.M} : Shape{c.M, c.K}, gen).requires_grad_();
      Tensor b_leaf = Tensor::randn(c.tb ? Shape{c.N, c.K} : Shape{c.K, c.N}, gen).requires_grad_();
      Tensor a = c.ta ? transpose(a_leaf, 0, 1) : a_leaf;
      Tensor b = c.tb ? transpose(b_leaf, 0, 1) : b_leaf;
      Tensor y = matmul(a, b);
      tape::backward(y, Tensor::randn(y.shape(), gen));
      std::vector<std::vector<float>> got = {y.to_vector<float>(), a_leaf.grad().to_vector<float>(),
                                             b_leaf.grad().to_vector<float>()};
      if (first.empty()) {
        first = got;
        const std::vector<double> want =
            naive(values(a.contiguous()), values(b.contiguous()), c.M, c.K, c.N);
        for (size_t i = 0; i < want.size(); ++i)
          ASSERT_NEAR(got[0][i], want[i], 1e-4 * (1 + std::fabs(want[i]))) << c.M << "x" << c.N;
      }
      for (size_t i = 0; i < got.size(); ++i)
        EXPECT_EQ(got[i], first[i])
            << c.M << "x" << c.K << "x" << c.N << ", " << threads << " threads";
    }
  }
  omp_set_num_threads(saved);
}
