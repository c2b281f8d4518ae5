// TokenDataset: the train/val split, seeded batch sampling and whole-split evaluation windows, over
// int32 tokens in memory or mapped token files.
#include "data/dataset.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "autograd/error.h"

namespace lmlab::data {

namespace {

[[noreturn]] void fail(const std::string& what) { throw Error("[data] " + what); }

void check_positive(int64_t v, const char* name) {
  if (v <= 0) fail(std::string(name) + " must be positive, got " + std::to_string(v));
}

void check_split(const char* split, int64_t n, int64_t T) {
  if (n < T + 1)
    fail(std::string("the ") + split + " split has " + std::to_string(n) + " tokens; block_size " +
         std::to_string(T) + " needs at least " + std::to_string(T + 1));
}

// n_train = floor(n * (1 - val_fraction)); `of` names a mapped file in the message ("" in memory).
int64_t split_point(int64_t n, double val_fraction, const std::string& of) {
  if (!(val_fraction > 0 && val_fraction < 1))
    fail("val_fraction must be in (0, 1), got " + std::to_string(val_fraction));
  const int64_t n_train = int64_t(std::floor(double(n) * (1 - val_fraction)));
  if (n_train < 1 || n_train >= n)
    fail("cannot split " + std::to_string(n) + " tokens" + of + " with val_fraction " +
         std::to_string(val_fraction) + ": the train split gets " + std::to_string(n_train) +
         " and the val split " + std::to_string(n - n_train) + " (each needs at least 1)");
  return n_train;
}

// Prepared train and val files must come from one vocabulary and tokenizer when both say.
void check_same_source(const TokenFile& train, const TokenFile& val) {
  if (!train.meta() || !val.meta()) return;
  const TokenMeta &a = *train.meta(), &b = *val.meta();
  if (a.vocab_size != b.vocab_size || a.tokenizer.checksum != b.tokenizer.checksum)
    fail(train.path() + " and " + val.path() + " were tokenized differently: vocab_size " +
         std::to_string(a.vocab_size) + " vs " + std::to_string(b.vocab_size) + ", tokenizer " +
         a.tokenizer.name + " (" + format_checksum(a.tokenizer.checksum) + ") vs " +
         b.tokenizer.name + " (" + format_checksum(b.tokenizer.checksum) + ")");
}

}  // namespace

int64_t train_split_size(int64_t n, double val_fraction) {
  return split_point(n, val_fraction, "");
}

TokenDataset::TokenDataset(std::vector<int32_t> tokens, double val_fraction)
    : tokens_(std::move(tokens)) {
  n_train_ = split_point(int64_t(tokens_.size()), val_fraction, "");
  n_val_ = int64_t(tokens_.size()) - n_train_;
}

TokenDataset::TokenDataset(TokenFile train, TokenFile val)
    : train_file_(std::make_shared<const TokenFile>(std::move(train))),
      val_file_(std::make_shared<const TokenFile>(std::move(val))),
      n_train_(train_file_->size()),
      n_val_(val_file_->size()) {
  if (n_train_ < 1 || n_val_ < 1) fail("a mapped split needs an open token file (moved from?)");
  check_same_source(*train_file_, *val_file_);
}

TokenDataset::TokenDataset(TokenFile tokens, double val_fraction)
    : train_file_(std::make_shared<const TokenFile>(std::move(tokens))), val_file_(train_file_) {
  n_train_ = split_point(train_file_->size(), val_fraction, " of " + train_file_->path());
  n_val_ = train_file_->size() - n_train_;
  val_begin_ = n_train_;
}

const std::vector<int32_t>& TokenDataset::in_memory(const char* accessor) const {
  if (mapped())
    fail(std::string(accessor) + " needs an in-memory dataset; this one is mapped from " +
         train_file_->path() + " (use read_train / read_val)");
  return tokens_;
}

void TokenDataset::read_train(int64_t start, int64_t n, int32_t* out) const {
  if (mapped())
    train_file_->read(start, n, out);
  else
    std::copy_n(tokens_.data() + start, n, out);
}

void TokenDataset::read_val(int64_t start, int64_t n, int32_t* out) const {
  if (mapped())
    val_file_->read(val_begin_ + start, n, out);
  else
    std::copy_n(tokens_.data() + n_train_ + start, n, out);
}

void TokenDataset::check_block_size(int64_t T) const {
  check_positive(T, "block_size");
  check_split("train", train_size(), T);
  check_split("val", val_size(), T);
}

Batch TokenDataset::sample_batch(int64_t B, int64_t T, Generator& gen) const {
  check_positive(B, "batch_size");
  check_positive(T, "block_size");
  check_split("train", train_size(), T);
  const int64_t range = train_size() - T;  // valid starts: [0, n_train - T - 1]
  const uint64_t first = gen.advance(uint64_t(B));
  Batch batch{Tensor::empty({B, T}, DType::I32), Tensor::empty({B, T}, DType::I32)};
  int32_t* x = batch.x.data<int32_t>();
  int32_t* y = batch.y.data<int32_t>();
  for (int64_t b = 0; b < B; ++b) {
    const double u = uniform01(random_bits(gen.seed(), first + uint64_t(b)));
    const int64_t start = std::min(int64_t(u * double(range)), range - 1);
    read_train(start, T, x + b * T);
    read_train(start + 1, T, y + b * T);
  }
  return batch;
}

std::vector<EvalWindow> TokenDataset::eval_windows(int64_t T) const {
  check_positive(T, "block_size");
  check_split("val", val_size(), T);
  const int64_t predictions = val_size() - 1;
  std::vector<EvalWindow> windows;
  for (int64_t start = 0; start < predictions; start += T)
    windows.push_back({start, std::min(T, predictions - start)});
  return windows;
}

int64_t TokenDataset::eval_batch_count(int64_t B, int64_t T) const {
  check_positive(B, "batch_size");
  check_positive(T, "block_size");
  check_split("val", val_size(), T);
  const int64_t full = (val_size() - 1) / T;
  const int64_t partial = (val_size() - 1) % T != 0 ? 1 : 0;
  return (full + B - 1) / B + partial;
}

EvalBatch TokenDataset::eval_batch(int64_t B, int64_t T, int64_t index) const {
  const int64_t count_all = eval_batch_count(B, T);
  if (index < 0 || index >= count_all)
    fail("eval batch " + std::to_string(index) + " is out of range [0, " +
         std::to_string(count_all) + ")");
  const int64_t predictions = val_size() - 1;
  const int64_t full = predictions / T;
  const int64_t full_batches = (full + B - 1) / B;
  if (index >= full_batches)  // the short last window
    return read_windows({full * T}, predictions % T);
  std::vector<int64_t> starts;
  for (int64_t w = index * B; w < std::min(full, (index + 1) * B); ++w) starts.push_back(w * T);
  return read_windows(starts, T);
}

int64_t TokenDataset::subset_batch_count(int64_t windows, int64_t B, int64_t T) const {
  check_positive(windows, "subset windows");
  check_positive(B, "batch_size");
  check_positive(T, "block_size");
  check_split("val", val_size(), T);
  const int64_t m = std::min(windows, (val_size() - 1) / T);
  return (m + B - 1) / B;
}

EvalBatch TokenDataset::subset_batch(int64_t windows, int64_t B, int64_t T, int64_t index) const {
  const int64_t count_all = subset_batch_count(windows, B, T);
  if (index < 0 || index >= count_all)
    fail("subset batch " + std::to_string(index) + " is out of range [0, " +
         std::to_string(count_all) + ")");
  const int64_t full = (val_size() - 1) / T, m = std::min(windows, full);
  std::vector<int64_t> starts;
  for (int64_t j = index * B; j < std::min(m, (index + 1) * B); ++j)
    starts.push_back((m == 1 ? 0 : j * (full - 1) / (m - 1)) * T);
  return read_windows(starts, T);
}

EvalBatch TokenDataset::read_windows(const std::vector<int64_t>& starts, int64_t length) const {
  EvalBatch batch;
  batch.count = int64_t(starts.size());
  batch.length = length;
  batch.x = Tensor::empty({batch.count, length}, DType::I32);
  batch.y = Tensor::empty({batch.count, length}, DType::I32);
  int32_t* x = batch.x.data<int32_t>();
  int32_t* y = batch.y.data<int32_t>();
  for (int64_t w = 0; w < batch.count; ++w) {
    read_val(starts[size_t(w)], length, x + w * length);
    read_val(starts[size_t(w)] + 1, length, y + w * length);
  }
  return batch;
}

}  // namespace lmlab::data
