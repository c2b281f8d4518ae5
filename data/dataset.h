// TokenDataset: a token stream split into train (the first part) and validation (the LAST
// val_fraction of tokens, as nanoGPT), random training batches drawn from a counter-based
// generator, and evaluation windows that predict every validation token exactly once. The tokens
// are int32 in memory, or memory-mapped token files (data/token_file.h: nanoGPT's train.bin and
// val.bin, llm.c's .bin), read in place and converted to int32 batch by batch.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "autograd/random.h"
#include "autograd/tensor.h"
#include "data/token_file.h"

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

// floor(n * (1 - val_fraction)): the train split's size, as every constructor computes it.
// `lmlab prepare` splits with it, so a run from the prepared files draws exactly the batches a run
// from the corpus draws. Throws as the constructors do.
int64_t train_split_size(int64_t n, double val_fraction);

class TokenDataset {
 public:
  // Splits `tokens`: n_train = floor(n * (1 - val_fraction)), validation = the rest (the end).
  // Throws "[data] ..." unless 0 < val_fraction < 1 and both splits hold at least 1 token.
  explicit TokenDataset(std::vector<int32_t> tokens, double val_fraction = 0.1);
  // Prepared splits, memory-mapped (nanoGPT's train.bin and val.bin): train = every token of
  // `train`, val = every token of `val`. Batches and evaluation windows are exactly those of the
  // in-memory dataset over train ++ val with n_train = train.size(): same starts for the same
  // (seed, offset), same windows. Throws "[data] ..." when the two files' meta.json name
  // different vocabularies or tokenizers.
  TokenDataset(TokenFile train, TokenFile val);
  // One mapped file split as the in-memory constructor splits it (same n_train, same checks).
  TokenDataset(TokenFile tokens, double val_fraction);

  int64_t size() const { return n_train_ + n_val_; }
  int64_t train_size() const { return n_train_; }
  int64_t val_size() const { return n_val_; }
  // True when the tokens are mapped files rather than an int32 vector.
  bool mapped() const { return train_file_ != nullptr; }
  // In-memory datasets only; a mapped one throws "[data] tokens() needs an in-memory dataset;
  // this one is mapped from <file>" (use read_train / read_val).
  const std::vector<int32_t>& tokens() const { return in_memory("tokens()"); }
  const int32_t* train_data() const { return in_memory("train_data()").data(); }
  const int32_t* val_data() const { return in_memory("val_data()").data() + n_train_; }
  // The mapped files (nullptr in memory); the same file twice when one file is split.
  const TokenFile* train_file() const { return train_file_.get(); }
  const TokenFile* val_file() const { return val_file_.get(); }

  // Train (val) tokens [start, start + n) as int32 into `out`. A mapped id is converted here and
  // checked against its file's vocab_size ("[data] <file>: token 1234 (byte offset 3492) is
  // 70000, not below vocab_size 65536"); `start` is relative to the split.
  void read_train(int64_t start, int64_t n, int32_t* out) const;
  void read_val(int64_t start, int64_t n, int32_t* out) const;

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
  // A fixed subset of the validation split for cheap estimates: `windows` full windows of T
  // spread evenly over it (the first, the last full one and evenly between; every full window
  // when there are fewer), B at a time, in order. The same windows on every call.
  int64_t subset_batch_count(int64_t windows, int64_t B, int64_t T) const;
  EvalBatch subset_batch(int64_t windows, int64_t B, int64_t T, int64_t index) const;

 private:
  const std::vector<int32_t>& in_memory(const char* accessor) const;
  // Validation windows of `length` predictions at these starts, one row each.
  EvalBatch read_windows(const std::vector<int64_t>& starts, int64_t length) const;

  std::vector<int32_t> tokens_;                  // in memory (empty when mapped)
  std::shared_ptr<const TokenFile> train_file_;  // mapped (null in memory)
  std::shared_ptr<const TokenFile> val_file_;    // == train_file_ when one file is split
  int64_t val_begin_ = 0;                        // the val split's first id in val_file_
  int64_t n_train_ = 0;
  int64_t n_val_ = 0;
};

}  // namespace lmlab::data
