// Byte-level BPE: the model's tables, tiktoken's merge loop, special tokens, decoding
// (GPT-2's pre-tokenization: data/bpe_pretokenize.cpp).
#include "data/bpe.h"

#include <omp.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <queue>
#include <unordered_map>

#include "autograd/error.h"
#include "data/bpe_model.h"
#include "data/utf8.h"

namespace lmlab::data {

void bpe_fail(const std::string& what) { throw Error("[bpe] " + what); }

const std::array<char32_t, 256>& byte_to_unicode() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      t[size_t(b)] = printable ? char32_t(b) : next++;
    }
    return t;
  }();
  return table;
}

// ---- the model's tables ----

void PairTable::reserve(size_t n) {
  size_t capacity = 16;
  while (capacity < 2 * n) capacity *= 2;
  keys_.assign(capacity, kEmpty);
  values_.assign(capacity, Merge{});
  mask_ = capacity - 1;
  size_ = 0;
}

void PairTable::insert(uint64_t key, Merge merge) {
  if (2 * (size_ + 1) > keys_.size()) {  // grow: rehash into twice the room
    std::vector<uint64_t> keys = std::move(keys_);
    std::vector<Merge> values = std::move(values_);
    reserve(std::max<size_t>(size_ + 1, keys.size()));
    for (size_t i = 0; i < keys.size(); ++i)
      if (keys[i] != kEmpty) insert(keys[i], values[i]);
  }
  size_t i = mix(key) & mask_;
  while (keys_[i] != kEmpty && keys_[i] != key) i = (i + 1) & mask_;
  if (keys_[i] == key) {
    if (merge.rank < values_[i].rank) values_[i] = merge;
    return;
  }
  keys_[i] = key;
  values_[i] = merge;
  ++size_;
}

uint64_t TokenTable::hash(std::string_view s) {
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ s.size();
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t chunk;
    std::memcpy(&chunk, s.data() + i, 8);
    h = (h ^ chunk) * 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 31;
  }
  uint64_t tail = 0;
  std::memcpy(&tail, s.data() + i, s.size() - i);
  h = (h ^ tail) * 0x94D049BB133111EBULL;
  return h ^ (h >> 29);
}

void TokenTable::build(const std::vector<std::string>* tokens, const std::vector<bool>& skip) {
  tokens_ = tokens;
  size_t capacity = 16;
  while (capacity < 2 * tokens->size()) capacity *= 2;
  slots_.assign(capacity, Slot{});
  mask_ = capacity - 1;
  for (size_t id = 0; id < tokens->size(); ++id) {
    if (skip[id] || find((*tokens)[id]) >= 0) continue;  // the caller reports duplicates
    const uint64_t h = hash((*tokens)[id]);
    size_t i = h & mask_;
    while (slots_[i].id >= 0) i = (i + 1) & mask_;
    slots_[i] = {uint32_t(h >> 32), int32_t(id)};
  }
}

namespace {

// "token 12 (\"ab\")" with the bytes shown as a JSON string would show them.
std::string show_token(const Bpe::Model& m, int32_t id) {
  std::string s = "token " + std::to_string(id) + " (\"";
  for (unsigned char c : m.tokens[size_t(id)]) {
    if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
      s.push_back(char(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", unsigned(c));
      s += buf;
    }
  }
  return s + "\")";
}

// The pair table: every split of every ranked token into two tokens (tiktoken's rule: a pair may
// merge when the concatenation of its bytes is a ranked token, whichever merge made that token).
void index_pairs(Bpe::Model& m) {
  size_t splits = 0;
  for (size_t id = 0; id < m.tokens.size(); ++id)
    if (m.rank[id] >= 0) splits += m.tokens[id].size() - 1;
  m.pairs.reserve(splits);
  for (size_t id = 0; id < m.tokens.size(); ++id) {
    if (m.rank[id] < 0) continue;
    const std::string_view t = m.tokens[id];
    for (size_t k = 1; k < t.size(); ++k) {
      const int32_t left = m.token_id.find(t.substr(0, k));
      const int32_t right = m.token_id.find(t.substr(k));
      if (left < 0 || right < 0) continue;
      m.pairs.insert(PairTable::key(left, right), {m.rank[id], int32_t(id)});
    }
  }
}

}  // namespace

namespace {

// The token table and the byte tokens; throws on an empty token, on two tokens with the same
// bytes (a special token's text included: tokenizer.json could not tell them apart) and on a byte
// without a token.
void index_tokens(Bpe::Model& m, const std::vector<bool>& special) {
  m.token_id.build(&m.tokens, special);
  m.byte_id.fill(-1);
  std::unordered_map<std::string_view, int32_t> special_seen;
  for (size_t id = 0; id < m.tokens.size(); ++id) {
    if (m.tokens[id].empty()) bpe_fail(m.source + ": token " + std::to_string(id) + " is empty");
    int32_t first = m.token_id.find(m.tokens[id]);
    if (special[id] && first < 0) first = special_seen.emplace(m.tokens[id], id).first->second;
    if (first != int32_t(id))
      bpe_fail(m.source + ": " + show_token(m, int32_t(id)) + " is also token " +
               std::to_string(first));
    if (m.tokens[id].size() == 1 && !special[id])
      m.byte_id[static_cast<unsigned char>(m.tokens[id][0])] = int32_t(id);
  }
  for (int b = 0; b < 256; ++b)
    if (m.byte_id[size_t(b)] < 0) {
      char buf[64];
      std::snprintf(buf, sizeof(buf), "no token for byte 0x%02x (U+%04X in tokenizer.json)", b,
                    unsigned(byte_to_unicode()[size_t(b)]));
      bpe_fail(m.source + ": the vocabulary is not byte level: " + buf);
    }
}

// rank[id]: the index of the first merge that makes token id.
void rank_merges(Bpe::Model& m, const std::vector<bool>& special) {
  const size_t V = m.tokens.size();
  m.rank.assign(V, -1);
  for (size_t r = 0; r < m.merges.size(); ++r) {
    const auto [l, rt] = m.merges[r];
    if (l < 0 || rt < 0 || size_t(l) >= V || size_t(rt) >= V || special[size_t(l)] ||
        special[size_t(rt)])
      bpe_fail(m.source + ": merge " + std::to_string(r) + " joins ids " + std::to_string(l) +
               " and " + std::to_string(rt) + ", not two ordinary tokens");
    const int32_t made = m.token_id.find(m.tokens[size_t(l)] + m.tokens[size_t(rt)]);
    if (made < 0)
      bpe_fail(m.source + ": merge " + std::to_string(r) + " of " + show_token(m, l) + " and " +
               show_token(m, rt) + " makes a token that is not in the vocabulary");
    if (m.rank[size_t(made)] < 0) m.rank[size_t(made)] = int32_t(r);
  }
}

}  // namespace

void Bpe::Model::build() {
  std::vector<bool> special(tokens.size(), false);
  for (int32_t s : specials) {
    if (s < 0 || size_t(s) >= tokens.size())
      bpe_fail(source + ": special token id " + std::to_string(s) + " is out of range [0, " +
               std::to_string(tokens.size()) + ")");
    special[size_t(s)] = true;
  }
  index_tokens(*this, special);
  rank_merges(*this, special);
  index_pairs(*this);
  special_texts.clear();
  for (int32_t s : specials) special_texts.emplace_back(tokens[size_t(s)], s);
  std::stable_sort(special_texts.begin(), special_texts.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

// ---- encoding ----

namespace {

constexpr size_t kShortPiece = 64;  // longer pieces merge with a heap instead of rescans

// tiktoken's loop for a short piece: rescan for the lowest-ranked pair (leftmost on ties), merge
// it, re-rank its two neighbours; O(n^2) in the piece, with everything on the stack.
void merge_short(const Bpe::Model& m, std::string_view piece, std::vector<int32_t>& out) {
  int32_t ids[kShortPiece];
  PairTable::Merge next[kShortPiece];
  size_t n = piece.size();
  for (size_t i = 0; i < n; ++i) ids[i] = m.byte_id[static_cast<unsigned char>(piece[i])];
  for (size_t i = 0; i + 1 < n; ++i) next[i] = m.pairs.find(PairTable::key(ids[i], ids[i + 1]));
  while (n > 1) {
    size_t best = n;
    int32_t best_rank = INT32_MAX;
    for (size_t i = 0; i + 1 < n; ++i)
      if (next[i].rank >= 0 && next[i].rank < best_rank) {
        best = i;
        best_rank = next[i].rank;
      }
    if (best == n) break;
    ids[best] = next[best].id;
    std::memmove(ids + best + 1, ids + best + 2, (n - best - 2) * sizeof(int32_t));
    if (best + 3 <= n)
      std::memmove(next + best + 1, next + best + 2, (n - best - 3) * sizeof(*next));
    --n;
    if (best > 0) next[best - 1] = m.pairs.find(PairTable::key(ids[best - 1], ids[best]));
    if (best + 1 < n) next[best] = m.pairs.find(PairTable::key(ids[best], ids[best + 1]));
  }
  out.insert(out.end(), ids, ids + n);
}

// The same merges for a long piece (a run of digits or spaces can be megabytes): symbols in a
// linked list over byte positions, candidate pairs in a min-heap by (rank, position), so the
// lowest rank wins and the leftmost among equal ranks, as in the rescan; stale entries skipped.
void merge_long(const Bpe::Model& m, std::string_view piece, std::vector<int32_t>& out) {
  const size_t n = piece.size(), none = SIZE_MAX;
  std::vector<int32_t> id(n);
  std::vector<size_t> prev(n), next(n);  // the symbols alive, as a list of their first bytes
  for (size_t i = 0; i < n; ++i) {
    id[i] = m.byte_id[static_cast<unsigned char>(piece[i])];
    prev[i] = i == 0 ? none : i - 1;
    next[i] = i + 1;
  }
  struct Candidate {
    int32_t rank, left, right;
    size_t pos;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto offer = [&](size_t pos) {
    if (pos == none || next[pos] >= n) return;
    const PairTable::Merge mg = m.pairs.find(PairTable::key(id[pos], id[next[pos]]));
    if (mg.rank >= 0) heap.push({mg.rank, id[pos], id[next[pos]], pos});
  };
  for (size_t i = 0; i + 1 < n; ++i) offer(i);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    const size_t q = next[c.pos];
    if (id[c.pos] != c.left || q >= n || id[q] != c.right) continue;  // stale
    id[c.pos] = m.pairs.find(PairTable::key(c.left, c.right)).id;
    id[q] = -1;  // merged away
    next[c.pos] = next[q];
    if (next[q] < n) prev[next[q]] = c.pos;
    offer(prev[c.pos]);
    offer(c.pos);
  }
  for (size_t i = 0; i < n; i = next[i]) out.push_back(id[i]);
}

}  // namespace

void Bpe::Model::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.size() == 1) {
    out.push_back(byte_id[static_cast<unsigned char>(piece[0])]);
    return;
  }
  const int32_t whole = token_id.find(piece);  // tiktoken's shortcut: a piece that is a token
  if (whole >= 0 && rank[size_t(whole)] >= 0) {
    out.push_back(whole);
    return;
  }
  if (piece.size() <= kShortPiece)
    merge_short(*this, piece, out);
  else
    merge_long(*this, piece, out);
}

void Bpe::Model::encode_ordinary(std::string_view text, std::vector<int32_t>& out) const {
  for (size_t i = 0; i < text.size();) {
    const size_t end = gpt2_piece_end(text, i);
    encode_piece(text.substr(i, end - i), out);
    i = end;
  }
}

std::vector<int32_t> Bpe::encode(std::string_view text, bool allow_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3);
  const Model& m = *model_;
  if (!allow_special || m.special_texts.empty()) {
    m.encode_ordinary(text, out);
    return out;
  }
  // The next occurrence of each special token (longest first, so a longer one wins a tie).
  std::vector<size_t> at;
  for (const auto& [s, id] : m.special_texts) at.push_back(text.find(s));
  for (size_t pos = 0;;) {
    size_t best = std::string_view::npos, which = 0;
    for (size_t k = 0; k < at.size(); ++k) {
      if (at[k] != std::string_view::npos && at[k] < pos)
        at[k] = text.find(m.special_texts[k].first, pos);
      if (at[k] < best) {
        best = at[k];
        which = k;
      }
    }
    m.encode_ordinary(text.substr(pos, best - pos), out);  // to the end when best is npos
    if (best == std::string_view::npos) return out;
    out.push_back(m.special_texts[which].second);
    pos = best + m.special_texts[which].first.size();
  }
}

namespace {

bool is_ascii_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// Whether byte offset p lies strictly inside an occurrence of a special token.
bool inside_special(const Bpe::Model& m, std::string_view text, size_t p) {
  for (const auto& [s, id] : m.special_texts) {
    const size_t from = p >= s.size() ? p - s.size() + 1 : 0;
    const size_t hit = text.substr(from, 2 * s.size()).find(s);
    if (hit != std::string_view::npos && from + hit < p && from + hit + s.size() > p) return true;
  }
  return false;
}

bool is_ascii_graph(char c) { return static_cast<unsigned char>(c) < 0x80 && !is_ascii_space(c); }

// Chunk boundaries for encode_parallel: offsets c with text[c - 1] a '\n' between two non-space
// ASCII characters. That '\n' is a piece of its own, whether the text goes on after it or ends
// there (`\s+(?!\S)|\s+` looks ahead, so a longer whitespace run would split differently at a
// chunk's end), and a piece starts at c: pre-tokenizing each chunk alone gives the pieces of the
// whole text.
std::vector<size_t> chunk_starts(const Bpe::Model& m, std::string_view text, size_t chunks,
                                 bool allow_special) {
  std::vector<size_t> starts{0};
  const size_t step = text.size() / chunks;
  for (size_t k = 1; k < chunks; ++k) {
    size_t c = std::max(k * step, starts.back() + 2);
    for (; c < text.size(); ++c) {
      if (text[c - 1] != '\n' || !is_ascii_graph(text[c]) || !is_ascii_graph(text[c - 2])) continue;
      if (!allow_special || !inside_special(m, text, c)) break;
    }
    if (c >= text.size()) break;
    starts.push_back(c);
  }
  starts.push_back(text.size());
  return starts;
}

}  // namespace

std::vector<int32_t> Bpe::encode_parallel(std::string_view text, bool allow_special,
                                          int threads) const {
  if (threads <= 0) threads = omp_get_max_threads();
  constexpr size_t kMinChunk = size_t(1) << 16;
  const size_t chunks = std::min<size_t>(size_t(threads) * 8, text.size() / kMinChunk);
  if (threads == 1 || chunks < 2) return encode(text, allow_special);
  const std::vector<size_t> starts = chunk_starts(*model_, text, chunks, allow_special);
  std::vector<std::vector<int32_t>> parts(starts.size() - 1);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (size_t k = 0; k < parts.size(); ++k)
    parts[k] = encode(text.substr(starts[k], starts[k + 1] - starts[k]), allow_special);
  size_t total = 0;
  for (const auto& p : parts) total += p.size();
  std::vector<int32_t> out;
  out.reserve(total);
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// ---- decoding and accessors ----

std::string Bpe::decode_bytes(const std::vector<int32_t>& ids) const {
  const Model& m = *model_;
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    if (id < 0 || size_t(id) >= m.tokens.size())
      bpe_fail("id " + std::to_string(id) + " at position " + std::to_string(i) +
               " is out of range [0, " + std::to_string(m.tokens.size()) + ") of " + m.source);
    out += m.tokens[size_t(id)];
  }
  return out;
}

std::string Bpe::decode(const std::vector<int32_t>& ids) const {
  return utf8::replace_invalid(decode_bytes(ids));
}

int64_t Bpe::vocab_size() const { return int64_t(model_->tokens.size()); }

int64_t Bpe::merge_count() const { return int64_t(model_->merges.size()); }

int32_t Bpe::special_id(std::string_view text) const {
  for (const auto& [s, id] : model_->special_texts)
    if (s == text) return id;
  return -1;
}

bool Bpe::is_special(int32_t id) const {
  return std::binary_search(model_->specials.begin(), model_->specials.end(), id);
}

const std::string& Bpe::token_bytes(int32_t id) const {
  if (id < 0 || size_t(id) >= model_->tokens.size())
    bpe_fail("id " + std::to_string(id) + " is out of range [0, " +
             std::to_string(model_->tokens.size()) + ") of " + model_->source);
  return model_->tokens[size_t(id)];
}

const std::string& Bpe::source() const { return model_->source; }

bool Bpe::operator==(const Bpe& other) const {
  return model_->tokens == other.model_->tokens && model_->merges == other.model_->merges &&
         model_->specials == other.model_->specials;
}

}  // namespace lmlab::data
