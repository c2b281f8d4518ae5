// Shapes, strides and broadcasting. A Shape is a plain vector of sizes, row-major.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lmlab {

using Shape = std::vector<int64_t>;
using Strides = std::vector<int64_t>;

// "(4, 3)"; "()" for a scalar. Used in every shape error message.
std::string to_string(const Shape& shape);
int64_t numel(const Shape& shape);
// Row-major (C-contiguous) strides for a shape.
Strides contiguous_strides(const Shape& shape);
// Wraps a possibly negative dim into [0, ndim); throws "[op] dim d out of range for shape (..)".
int64_t normalize_dim(int64_t dim, int64_t ndim, const char* op, const Shape& shape);
// NumPy broadcasting of two shapes; throws "[op] shapes (..) and (..) cannot be broadcast".
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Strides that read a tensor of `shape`/`strides` as if it had `target` shape (0 on broadcast
// dims).
Strides broadcast_strides(const Shape& shape, const Strides& strides, const Shape& target);

}  // namespace lmlab
