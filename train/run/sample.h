// Text generation with a KV cache: the prompt is fed once, then one token per step.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "autograd/random.h"
#include "nn/transformer.h"

namespace lmlab::train {

struct SampleOptions {
  int64_t tokens = 200;      // new tokens to generate
  double temperature = 1.0;  // > 0; logits are divided by it
  int64_t top_k = 0;         // 0: no truncation; else sample among the k most likely
  uint64_t seed = 1337;
  // Called with each new id as it is drawn (lmlab sample streams the text): may be empty.
  std::function<void(int32_t)> on_token;
};

struct SampleResult {
  std::vector<int32_t> ids;  // the generated ids (without the prompt)
  double tokens_per_s = 0;
  int64_t kv_cache_bytes = 0;
};

// Continues `prompt` (at least one id) in eval mode. When the context (block_size) is full, the
// cache is rebuilt from the most recent block_size / 2 tokens and generation goes on.
SampleResult generate(nn::TransformerLM& model, const std::vector<int32_t>& prompt,
                      const SampleOptions& options);

}  // namespace lmlab::train
