// Tensor: factories, views and storage sharing, element access, printing, the generator.
#include <omp.h>

#include <sstream>

#include "tests/test_util.h"

using namespace lmlab;

TEST(Tensor, FactoriesHaveShapeDtypeAndValues) {
  Tensor z = Tensor::zeros({2, 3});
  EXPECT_EQ(z.shape(), (Shape{2, 3}));
  EXPECT_EQ(z.dtype(), DType::F32);
  EXPECT_EQ(z.device(), Device::CPU);
  EXPECT_EQ(z.numel(), 6);
  EXPECT_TRUE(z.is_contiguous());
  EXPECT_EQ(z.at({1, 2}), 0.0);
  EXPECT_EQ(Tensor::ones({4}, DType::F64).at({3}), 1.0);
  EXPECT_EQ(Tensor::full({2, 2}, 7, DType::I32).at({1, 0}), 7.0);
  Tensor r = Tensor::arange(5, DType::I32);
  EXPECT_EQ(r.to_vector<int32_t>(), (std::vector<int32_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(Tensor::arange(1, 2, 0.25, DType::F64).to_vector<double>(),
            (std::vector<double>{1, 1.25, 1.5, 1.75}));
  Tensor s = Tensor::full({}, 3.5);  // a 0-d scalar
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(s.item(), 3.5);
}

TEST(Tensor, AnyRankAndEmptyShapes) {
  Tensor t = Tensor::zeros({1, 2, 1, 3, 1, 2});
  EXPECT_EQ(t.dim(), 6);
  EXPECT_EQ(t.numel(), 12);
  EXPECT_EQ(t.strides(), (Strides{12, 6, 6, 2, 2, 1}));
  Tensor e = Tensor::zeros({0, 4});
  EXPECT_EQ(e.numel(), 0);
  EXPECT_EQ(e.to_vector<float>().size(), 0u);
}

TEST(Tensor, FromVectorRoundTripsAndChecksCount) {
  Tensor t = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(t.at({0, 2}), 3.0);
  EXPECT_EQ(t.at({1, -1}), 6.0);  // negative index counts from the end
  EXPECT_TRUE(test::ThrowsWith(
      [] {
        Tensor::from_vector(std::vector<float>{1, 2}, {3});
      },
      {"[from_vector]", "(3)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { (void)t.at({2, 0}); }, {"[at]", "(2, 3)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { (void)t.at({0}); }, {"[at]", "(2, 3)"}));
  EXPECT_TRUE(test::ThrowsWith([&] { (void)t.data<double>(); }, {"[data]", "float32"}));
}

TEST(Tensor, ReshapeOfContiguousIsAViewWithoutCopy) {
  Tensor t = Tensor::arange(12);
  Tensor v = t.reshape({3, -1});
  EXPECT_EQ(v.shape(), (Shape{3, 4}));
  EXPECT_TRUE(v.same_storage(t));
  v.set({1, 1}, 100);
  EXPECT_EQ(t.at({5}), 100.0);  // writes through the shared storage
  Tensor w = t.view({2, 2, 3});
  EXPECT_TRUE(w.same_storage(t));
}

TEST(Tensor, TransposeIsStridedAndContiguousCopiesOnlyThen) {
  Tensor t = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor tt = t.transpose(0, 1);
  EXPECT_EQ(tt.shape(), (Shape{3, 2}));
  EXPECT_FALSE(tt.is_contiguous());
  EXPECT_TRUE(tt.same_storage(t));
  EXPECT_EQ(tt.at({2, 1}), 6.0);
  Tensor c = tt.contiguous();
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_FALSE(c.same_storage(t));
  EXPECT_EQ(c.to_vector<float>(), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  EXPECT_TRUE(t.contiguous().same_storage(t));  // already contiguous: no copy
  // reshape of a non-contiguous tensor copies; view refuses.
  EXPECT_FALSE(tt.reshape({6}).same_storage(t));
  EXPECT_TRUE(test::ThrowsWith([&] { tt.view({6}); }, {"[view]", "(3, 2)", "reshape"}));
}

TEST(Tensor, NarrowIsAView) {
  Tensor t = Tensor::arange(10, DType::F64).reshape({2, 5});
  Tensor n = t.narrow(1, 1, 3);
  EXPECT_EQ(n.shape(), (Shape{2, 3}));
  EXPECT_TRUE(n.same_storage(t));
  EXPECT_EQ(n.to_vector<double>(), (std::vector<double>{1, 2, 3, 6, 7, 8}));
}

TEST(Tensor, DtypeConversion) {
  Tensor t = Tensor::from_vector(std::vector<float>{1.5f, -2.25f}, {2});
  Tensor d = t.to(DType::F64);
  EXPECT_EQ(d.dtype(), DType::F64);
  EXPECT_EQ(d.to_vector<double>(), (std::vector<double>{1.5, -2.25}));
  EXPECT_EQ(t.to(DType::I32).to_vector<int32_t>(), (std::vector<int32_t>{1, -2}));
}

TEST(Tensor, RandnIsSeededAndThreadCountIndependent) {
  Generator g1(42), g2(42), g3(43);
  Tensor a = Tensor::randn({1000, 100}, g1);
  Tensor b = Tensor::randn({1000, 100}, g2);
  Tensor c = Tensor::randn({1000, 100}, g3);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
  EXPECT_NE(a.to_vector<float>(), c.to_vector<float>());
  // The generator advances: a second draw differs from the first.
  EXPECT_NE(Tensor::randn({1000, 100}, g1).to_vector<float>(), a.to_vector<float>());
  // Same values with one thread as with two (element i depends only on the counter).
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  Generator g4(42);
  Tensor d = Tensor::randn({1000, 100}, g4);
  omp_set_num_threads(2);
  Generator g5(42);
  Tensor e = Tensor::randn({1000, 100}, g5);
  omp_set_num_threads(saved);
  EXPECT_EQ(d.to_vector<float>(), a.to_vector<float>());
  EXPECT_EQ(e.to_vector<float>(), a.to_vector<float>());
}

TEST(Tensor, RandnAndRandHaveTheRightMoments) {
  Generator g(7);
  std::vector<double> n = Tensor::randn({200000}, g, DType::F64, 1.0, 2.0).to_vector<double>();
  double m = 0, v = 0;
  for (double x : n) m += x;
  m /= double(n.size());
  for (double x : n) v += (x - m) * (x - m);
  v /= double(n.size());
  EXPECT_NEAR(m, 1.0, 0.02);
  EXPECT_NEAR(v, 4.0, 0.05);
  std::vector<float> u = Tensor::rand({100000}, g, DType::F32, -1, 3).to_vector<float>();
  double mu = 0;
  for (float x : u) {
    ASSERT_GE(x, -1.0f);
    ASSERT_LT(x, 3.0f);
    mu += x;
  }
  EXPECT_NEAR(mu / double(u.size()), 1.0, 0.02);
}

TEST(Tensor, PrintingShowsValuesShapeAndDtype) {
  Tensor t = Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  std::ostringstream os;
  os << t;
  EXPECT_EQ(os.str(), "tensor([[1, 2], [3, 4]], shape=(2, 2), dtype=float32)");
  EXPECT_NE(Tensor::zeros({1000}).to_string().find("..."), std::string::npos);
  EXPECT_EQ(Tensor().to_string(), "tensor(undefined)");
}

TEST(Tensor, InPlaceUpdatesBumpTheVersion) {
  Tensor t = Tensor::zeros({3});
  const uint64_t v0 = t.version();
  t.fill_(2);
  EXPECT_GT(t.version(), v0);
  t.add_(Tensor::ones({3}), 0.5);
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{2.5f, 2.5f, 2.5f}));
  t.mul_(2);
  EXPECT_EQ(t.at({1}), 5.0);
  Tensor m = Tensor::zeros({2, 3});
  m.copy_(Tensor::from_vector(std::vector<float>{1, 2, 3}, {3}));  // broadcast copy
  EXPECT_EQ(m.to_vector<float>(), (std::vector<float>{1, 2, 3, 1, 2, 3}));
  EXPECT_TRUE(test::ThrowsWith([&] { m.copy_(Tensor::zeros({4})); }, {"[copy_]", "(4)", "(2, 3)"}));
  EXPECT_TRUE(
      test::ThrowsWith([&] { m.copy_(Tensor::zeros({3}, DType::F64)); }, {"[copy_]", "dtype"}));
}

TEST(Tensor, NegativeShapeAndBadArangeAreErrors) {
  EXPECT_TRUE(test::ThrowsWith([] { Tensor::zeros({2, -1}); }, {"[empty]", "(2, -1)"}));
  EXPECT_TRUE(test::ThrowsWith([] { Tensor::arange(0, 1, 0); }, {"[arange]"}));
  EXPECT_TRUE(test::ThrowsWith([] { Tensor().shape(); }, {"undefined"}));
}

// Refused before any GPU is touched, so the same message with or without one.
TEST(Tensor, Float64IsRefusedOnTheGpuWithOrWithoutOne) {
  const Tensor x = Tensor::zeros({2}, DType::F64);
  EXPECT_TRUE(test::ThrowsWith([&] { x.to(Device::CUDA); },
                               {"[to]", "float64", "CPU-only", ".to(DType::F32)"}));
  EXPECT_TRUE(test::ThrowsWith([] { Tensor::zeros({2}, DType::F64, Device::CUDA); },
                               {"[empty]", "float64"}));
}

TEST(Tensor, CudaWithoutAGpuIsAClearError) {
  if (cuda_available_for_tests()) GTEST_SKIP() << "a GPU is visible; covered by the CUDA suite";
  EXPECT_TRUE(test::ThrowsWith([] { Tensor::zeros({2}, DType::F32, Device::CUDA); }, {"[cuda]"}));
}
