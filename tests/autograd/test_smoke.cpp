#include "tests/test_util.h"
using namespace lmlab;
TEST(Smoke, AddMulBackward) {
  Tensor a = test::randn64({3, 4}, 1), b = test::randn64({4}, 2);
  EXPECT_TRUE(test::Gradcheck([](const std::vector<Tensor>& x) { return sum(mul(add(x[0], x[1]), x[0])); }, {a, b}));
}
