// Internal to data/bpe*.cpp: the immutable model behind a Bpe and its lookup tables.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "data/bpe.h"

namespace lmlab::data {

[[noreturn]] void bpe_fail(const std::string& what);

// GPT-2's bytes_to_unicode: byte -> the code point that stands for it in tokenizer.json's strings
// (printable Latin-1 bytes stand for themselves, the other 68 for U+0100..U+0143).
const std::array<char32_t, 256>& byte_to_unicode();

// An open-addressing hash table from a pair of ids to what the pair merges into.
class PairTable {
 public:
  struct Merge {
    int32_t rank = -1;  // -1: not found
    int32_t id = -1;
  };
  static uint64_t key(int32_t left, int32_t right) {
    return (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
  }
  void reserve(size_t n);
  // Keeps the lower rank when the pair is already there.
  void insert(uint64_t key, Merge merge);
  Merge find(uint64_t key) const {
    if (keys_.empty()) return {};
    for (size_t i = mix(key) & mask_;; i = (i + 1) & mask_) {
      if (keys_[i] == key) return values_[i];
      if (keys_[i] == kEmpty) return {};
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t(0);
  static uint64_t mix(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
  }
  std::vector<uint64_t> keys_;
  std::vector<Merge> values_;
  size_t mask_ = 0, size_ = 0;
};

// An open-addressing hash table from a token's bytes to its id, over a vector of token bytes
// that it does not own (the Model's): the hot lookup of encoding, one probe and one compare.
class TokenTable {
 public:
  void build(const std::vector<std::string>* tokens, const std::vector<bool>& skip);
  // The id of the token `bytes`, or -1.
  int32_t find(std::string_view bytes) const {
    if (slots_.empty()) return -1;
    const uint64_t h = hash(bytes);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.id < 0) return -1;
      if (s.tag == uint32_t(h >> 32) && (*tokens_)[size_t(s.id)] == bytes) return s.id;
    }
  }
  static uint64_t hash(std::string_view s);

 private:
  struct Slot {
    uint32_t tag = 0;  // the hash's high half, to skip most byte compares
    int32_t id = -1;   // -1: empty
  };
  const std::vector<std::string>* tokens_ = nullptr;
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

struct Bpe::Model {
  // What defines the tokenizer (compared by operator==, written by to_json).
  std::vector<std::string> tokens;                  // id -> bytes (a special token: its text)
  std::vector<std::pair<int32_t, int32_t>> merges;  // rank -> (left id, right id)
  std::vector<int32_t> specials;                    // ids of the special tokens, ascending
  std::string source;                               // for error messages

  // Derived by build().
  std::array<int32_t, 256> byte_id{};  // byte -> its one-byte token
  TokenTable token_id;        // bytes -> id, special tokens excluded (points into `tokens`)
  std::vector<int32_t> rank;  // id -> merge rank, -1 when unranked
  PairTable pairs;            // (left, right) -> (rank, id) for every split of every ranked token
  std::vector<std::pair<std::string_view, int32_t>> special_texts;  // longest first

  // Checks and indexes the fields above; throws "[bpe] <source>: ..." when the vocabulary lacks
  // a byte, holds a token twice, or a merge's result is not in it.
  void build();
  // Appends the ids of one pre-tokenized piece (non-empty) to `out`.
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;
  // Appends the ids of text without special tokens.
  void encode_ordinary(std::string_view text, std::vector<int32_t>& out) const;
};

}  // namespace lmlab::data
