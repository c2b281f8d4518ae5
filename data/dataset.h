// TokenDataset: a token stream split into train (the first part) and validation (the LAST
// val_fraction of tokens, as nanoGPT), random training batches drawn from a counter-based
// generator, and evaluation windows that predict every validation token exactly once.
#pragma once
#include <cstdint>
#include <vector>

#include "autograd/random.h"
#include "autograd/tensor.h"

namespace lmlab::data {

// Inputs x and next-token targets y, both int32 (B, T) on the CPU.
struct Batch {
  Tensor x, y;
};

// One evaluation window over the validation split: x = val[start, start + length),
// y = val[start + 1, start + length + 1). `start` is relative to the validation split.
struct EvalWindow {
  int64_t start = 0;
  int64_t length = 0;
};

// Up to B evaluation windows of the same length stacked: x, y are int32 (count, length).
struct EvalBatch {
  Tensor x, y;
  int64_t count = 0;                                 // windows in this batch (rows)
  int64_t length = 0;                                // tokens per window (columns)
  int64_t tokens() const { return count * length; }  // predictions this batch scores
};

class TokenDataset {
 public:
  // Splits `tokens`: n_train = floor(n * (1 - val_fraction)), validation = the rest (the end).
  // Throws "[data] ..." unless 0 < val_fraction < 1 and both splits hold at least 1 token.
  explicit TokenDataset(std::vector<int32_t> tokens, double val_fraction = 0.1);

  int64_t size() const { return int64_t(tokens_.size()); }
  int64_t train_size() const { return n_train_; }
  int64_t val_size() const { return size() - n_train_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  const int32_t* train_data() const { return tokens_.data(); }
  const int32_t* val_data() const { return tokens_.data() + n_train_; }

  // Throws "[data] the train split has 50 tokens; block_size 64 needs at least 65" when either
  // split is shorter than T + 1 tokens, or when T <= 0. Call once up front to fail early.
  void check_block_size(int64_t T) const;

  // B random windows of T + 1 consecutive train tokens: x = w[0, T), y = w[1, T + 1).
  // Start b is floor(u_b * (n_train - T)) with u_b = uniform01(random_bits(seed, offset + b)),
  // after which the generator's offset advances by B: (seed, offset) alone fixes the batch.
  Batch sample_batch(int64_t B, int64_t T, Generator& gen) const;

  // Non-overlapping windows covering the validation split: window k starts at k*T and has
  // length T, except the last, which holds the remaining (val_size - 1) % T predictions when
  // that is nonzero. Every validation token but the first is a target exactly once.
  std::vector<EvalWindow> eval_windows(int64_t T) const;
  // eval_windows(T) grouped into batches of up to B windows of equal length, in order: the full
  // windows B at a time, then the short last window alone. Weight each batch's mean loss by
  // tokens() to get the mean over the whole split.
  int64_t eval_batch_count(int64_t B, int64_t T) const;
  EvalBatch eval_batch(int64_t B, int64_t T, int64_t index) const;

 private:
  std::vector<int32_t> tokens_;
  int64_t n_train_ = 0;
};

}  // namespace lmlab::data
