// Character- and byte-level tokenizers: a dense code point -> id table, strict UTF-8, JSON form.
#include "data/tokenizer.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "autograd/error.h"
#include "data/utf8.h"

namespace lmlab::data {

namespace {

[[noreturn]] void fail(const std::string& what) { throw Error("[tokenizer] " + what); }

// The character at text[i]; throws naming `what` on malformed UTF-8.
utf8::Char decode_or_fail(const std::string& text, size_t i, const char* what) {
  const utf8::Char c = utf8::decode_at(text, i);
  if (c.problem)
    fail(std::string(what) + " is not UTF-8 text: " +
         utf8::describe({i, static_cast<unsigned char>(text[i]), c.problem}));
  return c;
}

// Decodes all of `text` into code points; throws on malformed UTF-8.
std::vector<char32_t> code_points(const std::string& text, const char* what) {
  std::vector<char32_t> out;
  for (size_t i = 0; i < text.size();) {
    const utf8::Char c = decode_or_fail(text, i, what);
    out.push_back(c.code_point);
    i += size_t(c.length);
  }
  return out;
}

// A printable rendering of a character for messages: itself, or an escape for control codes.
std::string show(char32_t cp) {
  if (cp == '\n') return "\\n";
  if (cp == '\t') return "\\t";
  if (cp < 0x20 || cp == 0x7F) return "\\x" + utf8::code_point_name(cp).substr(4);
  std::string s;
  utf8::append(s, cp);
  return s;
}

}  // namespace

Tokenizer Tokenizer::chars(const std::string& text) {
  // One pass marking each code point seen (a bit table up to the largest one, at most 1.1 M
  // bits), then the marks in order: linear time and no memory per character, so a 100 MB corpus
  // costs no 400 MB copy and no sort.
  if (text.empty()) fail("cannot build a character vocabulary from an empty text");
  std::vector<bool> seen(128, false);
  for (size_t i = 0; i < text.size();) {
    const utf8::Char c = decode_or_fail(text, i, "the text");
    if (c.code_point >= seen.size()) seen.resize(size_t(c.code_point) + 1, false);
    seen[c.code_point] = true;
    i += size_t(c.length);
  }
  std::vector<char32_t> cps;
  for (size_t cp = 0; cp < seen.size(); ++cp)
    if (seen[cp]) cps.push_back(char32_t(cp));
  Tokenizer t;
  t.kind_ = "char";
  t.vocab_ = std::move(cps);
  t.build_index();
  return t;
}

Tokenizer Tokenizer::bytes() {
  Tokenizer t;
  t.kind_ = "byte";
  return t;
}

Tokenizer Tokenizer::from_bpe(Bpe model) {
  Tokenizer t;
  t.kind_ = "bpe";
  t.bpe_ = std::move(model);
  return t;
}

Tokenizer Tokenizer::make(const std::string& kind, const std::string& text) {
  if (kind == "char") return chars(text);
  if (kind == "byte") return bytes();
  fail("unknown tokenizer kind \"" + kind + "\" (expected char or byte)");
}

void Tokenizer::build_index() {
  index_.assign(size_t(vocab_.back()) + 1, -1);
  for (size_t id = 0; id < vocab_.size(); ++id) index_[vocab_[id]] = int32_t(id);
}

int64_t Tokenizer::vocab_size() const {
  if (bpe_) return bpe_->vocab_size();
  return kind_ == "byte" ? 256 : int64_t(vocab_.size());
}

std::vector<int32_t> Tokenizer::encode(const std::string& text) const {
  if (bpe_) return bpe_->encode_parallel(text);
  std::vector<int32_t> ids;
  if (kind_ == "byte") {
    ids.reserve(text.size());
    for (char c : text) ids.push_back(static_cast<unsigned char>(c));
    return ids;
  }
  ids.reserve(text.size());
  size_t character = 0;
  for (size_t i = 0; i < text.size(); ++character) {
    const utf8::Char c = utf8::decode_at(text, i);
    if (c.problem)
      fail("the text to encode is not UTF-8 text: " +
           utf8::describe({i, static_cast<unsigned char>(text[i]), c.problem}));
    const int32_t id = c.code_point < index_.size() ? index_[c.code_point] : -1;
    if (id < 0)
      fail("character '" + show(c.code_point) + "' (" + utf8::code_point_name(c.code_point) +
           ") at byte offset " + std::to_string(i) + " (character " + std::to_string(character) +
           ") is not in the vocabulary of " + std::to_string(vocab_.size()) + " characters");
    ids.push_back(id);
    i += size_t(c.length);
  }
  return ids;
}

std::vector<int32_t> Tokenizer::encode_corpus(const Corpus& corpus) const {
  const int32_t eot = bpe_ ? bpe_->special_id(Bpe::kEndOfText) : -1;
  if (eot < 0 || corpus.starts.size() < 2) return encode(corpus.text);
  std::vector<int32_t> ids;
  for (size_t f = 0; f < corpus.starts.size(); ++f) {
    const size_t end = f + 1 < corpus.starts.size() ? corpus.starts[f + 1] : corpus.text.size();
    if (f > 0) ids.push_back(eot);
    const std::vector<int32_t> doc = bpe_->encode_parallel(
        std::string_view(corpus.text).substr(corpus.starts[f], end - corpus.starts[f]));
    ids.insert(ids.end(), doc.begin(), doc.end());
  }
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  if (bpe_) return bpe_->decode(ids);
  return decode_bytes(ids);
}

int64_t Tokenizer::text_bytes(int32_t id) const {
  if (id < 0 || id >= vocab_size())
    fail("id " + std::to_string(id) + " is out of range [0, " + std::to_string(vocab_size()) +
         ") of the " + kind_ + " vocabulary");
  if (bpe_) return bpe_->is_special(id) ? 0 : int64_t(bpe_->token_bytes(id).size());
  if (kind_ == "byte") return 1;
  const char32_t cp = vocab_[size_t(id)];
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

std::string Tokenizer::decode_bytes(const std::vector<int32_t>& ids) const {
  if (bpe_) return bpe_->decode_bytes(ids);
  const int64_t V = vocab_size();
  std::string out;
  out.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    if (id < 0 || id >= V)
      fail("id " + std::to_string(id) + " at position " + std::to_string(i) +
           " is out of range [0, " + std::to_string(V) + ") of the " + kind_ + " vocabulary");
    if (kind_ == "byte")
      out.push_back(static_cast<char>(id));
    else
      utf8::append(out, vocab_[size_t(id)]);
  }
  return out;
}

std::string Tokenizer::vocab_string() const {
  std::string s;
  for (char32_t cp : vocab_) utf8::append(s, cp);
  return s;
}

std::string Tokenizer::serialize() const {
  nlohmann::ordered_json j;
  j["kind"] = kind_;
  j["vocab_size"] = vocab_size();
  if (kind_ == "char") j["vocab"] = vocab_string();
  if (bpe_) j["tokenizer_json"] = bpe_->to_json();
  return j.dump();
}

Tokenizer Tokenizer::from_serialized(const std::string& serialized) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(serialized);
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("corrupt serialized tokenizer (not JSON): ") + e.what());
  }
  if (!j.is_object() || !j.contains("kind") || !j["kind"].is_string() ||
      !j.contains("vocab_size") || !j["vocab_size"].is_number_integer())
    fail("corrupt serialized tokenizer: expected {\"kind\": ..., \"vocab_size\": ...}, got " +
         j.dump().substr(0, 200));
  const std::string kind = j["kind"].get<std::string>();
  const int64_t size = j["vocab_size"].get<int64_t>();
  Tokenizer t;
  if (kind == "byte") {
    t = bytes();
  } else if (kind == "char") {
    if (!j.contains("vocab") || !j["vocab"].is_string())
      fail("corrupt serialized tokenizer: a char tokenizer needs a \"vocab\" string");
    t.kind_ = "char";
    t.vocab_ = code_points(j["vocab"].get<std::string>(), "the serialized vocabulary");
    if (t.vocab_.empty()) fail("corrupt serialized tokenizer: the vocabulary is empty");
    for (size_t i = 1; i < t.vocab_.size(); ++i)
      if (t.vocab_[i - 1] >= t.vocab_[i])
        fail("corrupt serialized tokenizer: the vocabulary is not sorted and unique at character " +
             std::to_string(i));
    t.build_index();
  } else if (kind == "bpe") {
    if (!j.contains("tokenizer_json") || !j["tokenizer_json"].is_string())
      fail("corrupt serialized tokenizer: a bpe tokenizer needs a \"tokenizer_json\" string");
    t = from_bpe(
        Bpe::from_json(j["tokenizer_json"].get<std::string>(), "the serialized tokenizer"));
  } else {
    fail("corrupt serialized tokenizer: unknown kind \"" + kind +
         "\" (expected char, byte or bpe)");
  }
  if (t.vocab_size() != size)
    fail("corrupt serialized tokenizer: vocab_size is " + std::to_string(size) + " but the " +
         kind + " vocabulary has " + std::to_string(t.vocab_size()) + " entries");
  return t;
}

}  // namespace lmlab::data
