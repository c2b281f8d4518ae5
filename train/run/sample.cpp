#include "train/run/sample.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace lmlab::train {

// Draws an id from softmax(logits / temperature), restricted to the top k when k > 0.
static int32_t draw(const float* logits, int64_t V, const SampleOptions& o, Generator& gen) {
  std::vector<double> p(V);
  double mx = -INFINITY;
  for (int64_t i = 0; i < V; ++i) mx = std::max(mx, double(logits[i]) / o.temperature);
  double threshold = -INFINITY;
  if (o.top_k > 0 && o.top_k < V) {
    std::vector<float> sorted(logits, logits + V);
    std::nth_element(sorted.begin(), sorted.begin() + (o.top_k - 1), sorted.end(),
                     std::greater<>());
    threshold = sorted[o.top_k - 1];
  }
  double total = 0;
  for (int64_t i = 0; i < V; ++i) {
    p[i] = logits[i] >= threshold ? std::exp(double(logits[i]) / o.temperature - mx) : 0.0;
    total += p[i];
  }
  double u = uniform01(random_bits(gen.seed(), gen.advance(1))) * total;
  for (int64_t i = 0; i < V; ++i) {
    u -= p[i];
    if (u < 0) return int32_t(i);
  }
  return int32_t(V - 1);
}

SampleResult generate(nn::TransformerLM& model, const std::vector<int32_t>& prompt,
                      const SampleOptions& o) {
  if (prompt.empty()) throw Error("[sample] the prompt is empty");
  if (!(o.temperature > 0))
    throw Error("[sample] temperature must be > 0, got " + std::to_string(o.temperature));
  if (o.top_k < 0) throw Error("[sample] top_k must be >= 0, got " + std::to_string(o.top_k));
  const int64_t block = model.config().block_size, V = model.config().vocab_size;
  const bool was_training = model.is_training();
  model.eval();
  Generator gen(o.seed);
  const Device dev = model.parameters().at(0).device();  // ids go where the model is
  std::vector<int32_t> history = prompt;
  nn::KVCache cache = model.make_cache(1);
  SampleResult r;
  r.kv_cache_bytes = cache.bytes();
  // Feeds the last n tokens of history into a fresh cache and returns their logits.
  auto refill = [&](int64_t n) {
    cache = model.make_cache(1);
    std::vector<int32_t> ctx(history.end() - n, history.end());
    return model.forward_cached(Tensor::from_vector(ctx, {1, n}).to(dev), cache);
  };
  const auto t0 = std::chrono::steady_clock::now();
  Tensor logits = refill(std::min<int64_t>(int64_t(history.size()), block));
  for (int64_t n = 0; n < o.tokens; ++n) {
    const Tensor last = logits.narrow(1, logits.size(1) - 1, 1).contiguous().to(Device::CPU);
    const int32_t id = draw(last.data<float>(), V, o, gen);
    r.ids.push_back(id);
    history.push_back(id);
    if (o.on_token) o.on_token(id);
    if (n + 1 == o.tokens) break;
    if (cache.length >= block)
      logits = refill(std::max<int64_t>(1, block / 2));
    else
      logits = model.forward_cached(Tensor::from_vector(std::vector<int32_t>{id}, {1, 1}).to(dev),
                                    cache);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.tokens_per_s = double(r.ids.size()) / std::max(s, 1e-9);
  if (was_training) model.train();
  return r;
}

}  // namespace lmlab::train
