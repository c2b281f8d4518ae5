// The one median of lmlab (step times, tokens/s, all-reduce times): the middle value, or the mean
// of the two middle values for an even count; 0 for none.
#pragma once
#include <vector>

namespace lmlab::train {

double median(std::vector<double> v);

}  // namespace lmlab::train
