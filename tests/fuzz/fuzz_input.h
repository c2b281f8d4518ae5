// The input layout of the two-mode libFuzzer harnesses (fuzz_bpe, fuzz_tokenizer): the first byte
// picks the mode (even or odd), the rest is the payload that mode gets.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace lmlab::fuzz {

// Runs `even(payload)` or `odd(payload)` as data[0] is even or odd; an empty input does nothing.
// Returns 0, what LLVMFuzzerTestOneInput returns.
inline int run_by_mode(const uint8_t* data, size_t size, void (*even)(const std::string&),
                       void (*odd)(const std::string&)) {
  if (size == 0) return 0;
  const std::string payload(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0)
    even(payload);
  else
    odd(payload);
  return 0;
}

}  // namespace lmlab::fuzz
