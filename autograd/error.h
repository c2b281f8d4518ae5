// lmlab::Error: the one exception type the library throws for user-facing mistakes.
// Messages start with "[op]" and name the shapes, keys or files at fault.
#pragma once
#include <stdexcept>
#include <string>

namespace lmlab {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace lmlab
