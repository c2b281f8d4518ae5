// The median (train/stats.h).
#include "train/common/stats.h"

#include <algorithm>

namespace lmlab::train {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  const size_t n = v.size(), mid = n / 2;
  std::nth_element(v.begin(), v.begin() + long(mid), v.end());
  if (n % 2) return v[mid];
  const double upper = v[mid];
  const double lower = *std::max_element(v.begin(), v.begin() + long(mid));  // below mid after nth
  return 0.5 * (lower + upper);
}

}  // namespace lmlab::train
