// Byte-level BPE training: GPT-2 pre-tokenization, piece counts, then merges of the most frequent
// pair with an incremental pair-count index (as Hugging Face tokenizers does): each merge touches
// only the pieces that hold the pair, and a lazy max-heap finds the next pair.
#include <algorithm>
#include <chrono>
#include <queue>
#include <unordered_map>

#include "autograd/error.h"
#include "data/bpe.h"
#include "data/bpe_model.h"

namespace lmlab::data {

namespace {

// A distinct piece of the corpus: its symbols (token ids) and how often it occurs.
struct Word {
  std::vector<int32_t> symbols;
  int64_t count = 0;
};

// The pieces of `corpus`, counted, in byte order (so training never depends on hash order).
// Occurrences of <|endoftext|> separate documents: they are cut out, and no piece spans one.
std::vector<Word> count_words(std::string_view corpus) {
  std::unordered_map<std::string_view, int64_t> counts;
  for (size_t pos = 0; pos < corpus.size();) {
    const size_t special = std::min(corpus.find(Bpe::kEndOfText, pos), corpus.size());
    const std::string_view doc = corpus.substr(pos, special - pos);
    for (size_t i = 0; i < doc.size();) {
      const size_t end = gpt2_piece_end(doc, i);
      ++counts[doc.substr(i, end - i)];
      i = end;
    }
    pos = special == corpus.size() ? special : special + Bpe::kEndOfText.size();
  }
  std::vector<std::pair<std::string_view, int64_t>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<Word> words(sorted.size());
  for (size_t w = 0; w < sorted.size(); ++w) {
    for (unsigned char b : sorted[w].first) words[w].symbols.push_back(b);
    words[w].count = sorted[w].second;
  }
  return words;
}

class Trainer {
 public:
  Trainer(std::vector<Word> words, int64_t target) : words_(std::move(words)), target_(target) {
    for (int b = 0; b < 256; ++b) add_token(std::string(1, char(b)));
    for (uint32_t w = 0; w < words_.size(); ++w) {
      const std::vector<int32_t>& s = words_[w].symbols;
      for (size_t i = 0; i + 1 < s.size(); ++i)
        add(PairTable::key(s[i], s[i + 1]), words_[w].count, w);
    }
    for (const auto& [key, count] : count_) heap_.push({count, key});
    grown_.clear();
  }

  // Merges the most frequent pair; false when none occurs min_frequency times or the vocabulary
  // is full.
  bool step(int64_t min_frequency) {
    while (int64_t(tokens_.size()) < target_ && !heap_.empty()) {
      const Entry top = heap_.top();
      heap_.pop();
      const int64_t now = count_of(top.key);
      if (now != top.count) {  // stale: the pair lost occurrences since it was pushed
        if (now > 0) heap_.push({now, top.key});
        continue;
      }
      if (now < min_frequency) return false;
      last_count_ = now;
      merge(int32_t(top.key >> 32), int32_t(top.key & 0xFFFFFFFF));
      return true;
    }
    return false;
  }

  int64_t tokens() const { return int64_t(tokens_.size()); }
  int64_t last_count() const { return last_count_; }
  const std::string& last_token() const { return tokens_[size_t(last_made_)]; }
  std::vector<std::string>& token_bytes() { return tokens_; }
  std::vector<std::pair<int32_t, int32_t>>& merges() { return merges_; }

 private:
  // Heap order: the larger count first, then the smaller (left bytes, right bytes).
  struct Entry {
    int64_t count;
    uint64_t key;
  };
  struct Lower {
    const std::vector<std::string>* tokens;
    bool operator()(const Entry& x, const Entry& y) const {
      if (x.count != y.count) return x.count < y.count;
      const std::string& xl = (*tokens)[x.key >> 32];
      const std::string& yl = (*tokens)[y.key >> 32];
      if (const int c = xl.compare(yl)) return c > 0;
      return (*tokens)[x.key & 0xFFFFFFFF].compare((*tokens)[y.key & 0xFFFFFFFF]) > 0;
    }
  };

  int32_t add_token(std::string bytes) {
    const int32_t id = int32_t(tokens_.size());
    token_id_.emplace(bytes, id);
    tokens_.push_back(std::move(bytes));
    return id;
  }
  int64_t count_of(uint64_t key) const {
    const auto it = count_.find(key);
    return it == count_.end() ? 0 : it->second;
  }
  // Changes the count of a pair; a word where the pair appears is recorded for later merges.
  void add(uint64_t key, int64_t delta, uint32_t word) {
    count_[key] += delta;
    if (delta <= 0) return;
    std::vector<uint32_t>& where = where_[key];
    if (where.empty() || where.back() != word) where.push_back(word);
    grown_.push_back(key);
  }

  void merge(int32_t a, int32_t b) {
    const std::string bytes = tokens_[size_t(a)] + tokens_[size_t(b)];
    const auto known = token_id_.find(bytes);
    int32_t made = 0;
    if (known != token_id_.end()) {  // another pair already made these bytes: no new token, and
      made = known->second;          // encoding merges this pair by that token's rank anyway
    } else {
      made = add_token(bytes);
      merges_.emplace_back(a, b);
      last_made_ = made;
    }
    const uint64_t key = PairTable::key(a, b);
    std::vector<uint32_t> words = std::move(where_[key]);
    where_.erase(key);
    std::sort(words.begin(), words.end());
    words.erase(std::unique(words.begin(), words.end()), words.end());
    grown_.clear();
    for (uint32_t w : words) merge_word(w, a, b, made);
    count_.erase(key);
    std::sort(grown_.begin(), grown_.end());
    grown_.erase(std::unique(grown_.begin(), grown_.end()), grown_.end());
    for (uint64_t k : grown_)
      if (const int64_t c = count_of(k); c > 0) heap_.push({c, k});
  }

  // Replaces each (a, b) in word w, left to right, by `made`, updating the neighbours' pairs.
  void merge_word(uint32_t w, int32_t a, int32_t b, int32_t made) {
    std::vector<int32_t>& s = words_[w].symbols;
    const int64_t c = words_[w].count;
    std::vector<int32_t> out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
      if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
        if (!out.empty()) {
          add(PairTable::key(out.back(), a), -c, w);
          add(PairTable::key(out.back(), made), c, w);
        }
        if (i + 2 < s.size()) {
          add(PairTable::key(b, s[i + 2]), -c, w);
          add(PairTable::key(made, s[i + 2]), c, w);
        }
        out.push_back(made);
        i += 2;
      } else {
        out.push_back(s[i++]);
      }
    }
    s = std::move(out);
  }

  std::vector<Word> words_;
  int64_t target_;
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t> token_id_;
  std::vector<std::pair<int32_t, int32_t>> merges_;
  std::unordered_map<uint64_t, int64_t> count_;                // pair -> occurrences
  std::unordered_map<uint64_t, std::vector<uint32_t>> where_;  // pair -> words (maybe stale)
  std::vector<uint64_t> grown_;                                // pairs that gained in a merge
  std::priority_queue<Entry, std::vector<Entry>, Lower> heap_{Lower{&tokens_}};
  int64_t last_count_ = 0;
  int32_t last_made_ = 0;
};

}  // namespace

Bpe Bpe::train(std::string_view corpus, int64_t vocab_size, const BpeTrainOptions& options) {
  if (vocab_size < 257)
    bpe_fail("vocab_size must be at least 257 (256 bytes and <|endoftext|>), got " +
             std::to_string(vocab_size));
  if (options.min_frequency < 1)
    bpe_fail("min_frequency must be at least 1, got " + std::to_string(options.min_frequency));
  const auto start = std::chrono::steady_clock::now();
  const int64_t target = vocab_size - 1;
  const int64_t every =
      options.progress_every > 0 ? options.progress_every : std::max<int64_t>(1, target / 100);
  Trainer trainer(count_words(corpus), target);
  auto report = [&] {
    if (!options.progress) return;
    BpeTrainProgress p;
    p.tokens = trainer.tokens();
    p.target = target;
    p.pair_count = trainer.last_count();
    p.last_token = trainer.last_token();
    p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    options.progress(p);
  };
  int64_t reported = trainer.tokens();
  while (trainer.step(options.min_frequency))
    if (trainer.tokens() - reported >= every) {
      report();
      reported = trainer.tokens();
    }
  report();
  auto m = std::make_shared<Model>();
  m->tokens = std::move(trainer.token_bytes());
  m->merges = std::move(trainer.merges());
  m->specials = {int32_t(m->tokens.size())};
  m->tokens.emplace_back(kEndOfText);
  m->source = "a tokenizer trained to " + std::to_string(vocab_size) + " tokens";
  m->build();
  return Bpe(std::move(m));
}

}  // namespace lmlab::data
