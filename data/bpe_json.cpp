// Byte-level BPE: Hugging Face's tokenizer.json layout, read (checked, with located errors) and
// written (byte for byte what tools/tiktoken_to_hf.js writes).
#include <algorithm>
#include <climits>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_map>

#include "autograd/error.h"
#include "data/atomic_write.h"
#include "data/bpe.h"
#include "data/bpe_model.h"
#include "data/read_file.h"
#include "data/utf8.h"

namespace lmlab::data {

namespace {

using nlohmann::json;

// A tokenizer.json string in GPT-2's byte-to-unicode alphabet -> the bytes it stands for; throws
// naming where() (a message prefix, built only on failure) when a character is not in it.
template <class Where>
std::string unicode_to_bytes(const std::string& s, const Where& where) {
  static const std::vector<int> inverse = [] {
    std::vector<int> t(0x144, -1);
    for (int b = 0; b < 256; ++b) t[byte_to_unicode()[size_t(b)]] = b;
    return t;
  }();
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const utf8::Char c = utf8::decode_at(s, i);
    if (c.problem) bpe_fail(where() + ": not UTF-8");
    if (c.code_point >= inverse.size() || inverse[c.code_point] < 0)
      bpe_fail(where() + ": character " + utf8::code_point_name(c.code_point) +
               " is not in GPT-2's byte-level alphabet (is this a byte-level BPE?)");
    out.push_back(char(inverse[c.code_point]));
    i += size_t(c.length);
  }
  return out;
}

std::string bytes_to_unicode(std::string_view bytes) {
  std::string out;
  for (unsigned char b : bytes) utf8::append(out, byte_to_unicode()[b]);
  return out;
}

std::string quoted(const std::string& s) { return json(s).dump(); }

// What a tokenizer.json holds, as read, before the model is built.
struct Parsed {
  std::string source;
  std::vector<std::string> tokens;                      // id -> bytes
  std::vector<bool> defined;                            // id -> seen in model.vocab or added_tokens
  std::unordered_map<std::string_view, int32_t> vocab;  // model.vocab's keys (into the DOM) -> id
  std::vector<int32_t> specials;
  std::vector<std::pair<int32_t, int32_t>> merges;
  int64_t id_limit = 0;  // ids are dense, so each is below the number of entries
};

const json& member(const json& j, const char* key, const std::string& where, json::value_t type) {
  if (!j.contains(key)) bpe_fail(where + " has no \"" + key + "\"");
  const json& v = j[key];
  if (v.type() != type)
    bpe_fail(where + "." + key + " is a " + v.type_name() + ", expected a " +
             json(type).type_name());
  return v;
}

// Defines id `id` as `bytes`; where() names the entry in errors.
template <class Where>
void define(Parsed& p, int64_t id, std::string bytes, const Where& where) {
  if (id < 0 || id >= p.id_limit)
    bpe_fail(p.source + ": " + where() + ": id " + std::to_string(id) + " is out of range [0, " +
             std::to_string(p.id_limit) + ") (ids must be dense: one per entry of model.vocab " +
             "and added_tokens)");
  if (size_t(id) >= p.tokens.size()) {
    p.tokens.resize(size_t(id) + 1);
    p.defined.resize(size_t(id) + 1, false);
  }
  if (p.defined[size_t(id)] && p.tokens[size_t(id)] != bytes)
    bpe_fail(p.source + ": " + where() + ": id " + std::to_string(id) +
             " is already another token");
  p.tokens[size_t(id)] = std::move(bytes);
  p.defined[size_t(id)] = true;
}

void read_vocab(Parsed& p, const json& model) {
  const json& vocab = member(model, "vocab", p.source + ": model", json::value_t::object);
  std::vector<bool> in_vocab;
  for (const auto& item : vocab.items()) {
    const std::string& key = item.key();  // not a structured binding: lambdas capture it
    const json& value = item.value();
    const auto where = [&] { return "model.vocab[" + quoted(key) + "]"; };
    if (!value.is_number_integer()) bpe_fail(p.source + ": " + where() + " is not an integer id");
    std::string bytes = unicode_to_bytes(key, [&] { return p.source + ": " + where(); });
    const int64_t id = value.get<int64_t>();
    if (id >= 0 && size_t(id) < in_vocab.size() && in_vocab[size_t(id)])
      bpe_fail(p.source + ": " + where() + ": id " + std::to_string(id) + " is used twice");
    define(p, id, std::move(bytes), where);
    if (size_t(id) >= in_vocab.size()) in_vocab.resize(size_t(id) + 1, false);
    in_vocab[size_t(id)] = true;
    p.vocab.emplace(key, int32_t(id));
  }
}

void read_added_tokens(Parsed& p, const json& j) {
  if (!j.contains("added_tokens") || j["added_tokens"].is_null()) return;
  const json& added = member(j, "added_tokens", p.source, json::value_t::array);
  for (size_t k = 0; k < added.size(); ++k) {
    const auto where = [&] { return "added_tokens[" + std::to_string(k) + "]"; };
    const json& t = added[k];
    if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() ||
        !t.contains("content") || !t["content"].is_string() ||
        t["content"].get<std::string>().empty())
      bpe_fail(p.source + ": " + where() + " needs an integer \"id\" and a non-empty \"content\"");
    define(p, t["id"].get<int64_t>(), t["content"].get<std::string>(), where);
    p.specials.push_back(t["id"].get<int32_t>());
  }
}

// The id of merge part `part`; throws naming where() when it is not in the vocabulary.
template <class Where>
int32_t part_id(const Parsed& p, const std::string& part, const Where& where) {
  const auto it = p.vocab.find(part);
  if (it == p.vocab.end())
    bpe_fail(p.source + ": " + where() + ": " + quoted(part) + " is not in model.vocab");
  return it->second;
}

// One entry of model.merges: "left right" or ["left", "right"]; where() names it in errors.
template <class Where>
std::pair<std::string, std::string> merge_parts(const Parsed& p, const json& m,
                                                const Where& where) {
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
    return {m[0].get<std::string>(), m[1].get<std::string>()};
  if (!m.is_string())
    bpe_fail(p.source + ": " + where() + " is neither \"left right\" nor [\"left\", \"right\"]");
  const std::string& s = m.get_ref<const std::string&>();
  const size_t space = s.find(' ');
  if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
    bpe_fail(p.source + ": " + where() + " (" + quoted(s) + ") is not \"left right\"");
  return {s.substr(0, space), s.substr(space + 1)};
}

void read_merges(Parsed& p, const json& model) {
  const json& merges = member(model, "merges", p.source + ": model", json::value_t::array);
  p.merges.reserve(merges.size());
  for (size_t k = 0; k < merges.size(); ++k) {
    const auto index = [&] { return "model.merges[" + std::to_string(k) + "]"; };
    const std::pair<std::string, std::string> parts = merge_parts(p, merges[k], index);
    const std::string &left = parts.first, &right = parts.second;
    const auto where = [&] { return index() + " (" + quoted(left + " " + right) + ")"; };
    const int32_t l = part_id(p, left, where), r = part_id(p, right, where);
    if (!p.vocab.count(left + right))
      bpe_fail(p.source + ": " + where() + ": the merged token " + quoted(left + right) +
               " is not in model.vocab");
    p.merges.emplace_back(l, r);
  }
}

// The parts of the pipeline lmlab does not run must be absent or trivial.
void check_pipeline(const json& j, const std::string& source) {
  if (j.contains("normalizer") && !j["normalizer"].is_null())
    bpe_fail(source + ": normalizer " + j["normalizer"].dump().substr(0, 80) +
             " is not supported (byte-level BPE reads the text as it is)");
  if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null()) {
    const json& pre = j["pre_tokenizer"];
    if (!pre.is_object() || pre.value("type", "") != "ByteLevel" ||
        pre.value("add_prefix_space", false) || !pre.value("use_regex", true))
      bpe_fail(source + ": pre_tokenizer " + pre.dump().substr(0, 120) +
               " is not supported (expected {\"type\": \"ByteLevel\", \"add_prefix_space\": "
               "false}: GPT-2's regex)");
  }
  const json& model = member(j, "model", source, json::value_t::object);
  const std::string type = model.value("type", "");
  if (type != "BPE") bpe_fail(source + ": model.type is " + quoted(type) + ", expected \"BPE\"");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (model.contains(key) && !model[key].is_null() && model[key] != "")
      bpe_fail(source + ": model." + key + " " + model[key].dump() + " is not supported");
}

}  // namespace

namespace {

// The checked model of a parsed tokenizer.json.
std::shared_ptr<Bpe::Model> parse_model(const json& j, const std::string& source) {
  if (!j.is_object()) bpe_fail(source + ": expected a JSON object, got a " + j.type_name());
  check_pipeline(j, source);
  Parsed p;
  p.source = source;
  p.id_limit = int64_t(j["model"].value("vocab", json::object()).size());
  if (j.contains("added_tokens") && j["added_tokens"].is_array())
    p.id_limit += int64_t(j["added_tokens"].size());
  read_vocab(p, j["model"]);
  read_added_tokens(p, j);
  for (size_t id = 0; id < p.tokens.size(); ++id)
    if (!p.defined[id])
      bpe_fail(source + ": id " + std::to_string(id) + " is in neither model.vocab nor " +
               "added_tokens (ids must be 0.." + std::to_string(p.tokens.size() - 1) + ")");
  read_merges(p, j["model"]);
  auto m = std::make_shared<Bpe::Model>();
  m->tokens = std::move(p.tokens);
  m->merges = std::move(p.merges);
  std::sort(p.specials.begin(), p.specials.end());
  p.specials.erase(std::unique(p.specials.begin(), p.specials.end()), p.specials.end());
  m->specials = std::move(p.specials);
  m->source = source;
  m->build();
  return m;
}

}  // namespace

Bpe Bpe::from_json(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    // e.byte counts from 1 (the last byte read; size + 1 at a premature end): report offsets.
    const size_t offset = std::min<size_t>(e.byte > 0 ? e.byte - 1 : 0, text.size());
    bpe_fail(source + " is not valid JSON (error at byte offset " + std::to_string(offset) +
             " of " + std::to_string(text.size()) + "): " + e.what());
  } catch (const json::exception& e) {  // e.g. a number too large for a double
    bpe_fail(source + " is not valid JSON: " + e.what());
  }
  try {
    return Bpe(parse_model(j, source));
  } catch (const json::exception& e) {  // a value of the wrong type where a check did not look
    bpe_fail(source + ": " + e.what());
  }
}

Bpe Bpe::load(const std::string& path) {
  std::string why;
  const std::optional<std::string> text = read_whole_file(path, &why);
  if (!text) bpe_fail("cannot read " + path + ": " + why);
  return from_json(*text, path);
}

std::string Bpe::to_json() const {
  const Model& m = *model_;
  std::string out =
      "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n"
      "  \"added_tokens\": [";
  for (size_t k = 0; k < m.specials.size(); ++k)
    out += std::string(k ? "," : "") + "\n    {\"id\": " + std::to_string(m.specials[k]) +
           ", \"content\": " + quoted(m.tokens[size_t(m.specials[k])]) +
           ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, "
           "\"special\": true}";
  out += std::string(m.specials.empty() ? "" : "\n  ") + "],\n  \"normalizer\": null,\n";
  out +=
      "  \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
      "\"trim_offsets\": true, \"use_regex\": true},\n"
      "  \"post_processor\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, "
      "\"trim_offsets\": false, \"use_regex\": true},\n"
      "  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": "
      "true, \"use_regex\": true},\n"
      "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n"
      "    \"continuing_subword_prefix\": \"\",\n    \"end_of_word_suffix\": \"\",\n"
      "    \"fuse_unk\": false,\n    \"byte_fallback\": false,\n    \"vocab\": {";
  for (size_t id = 0; id < m.tokens.size(); ++id)
    out += std::string(id ? "," : "") + "\n" + quoted(bytes_to_unicode(m.tokens[id])) + ": " +
           std::to_string(id);
  out += "\n    },\n    \"merges\": [";
  for (size_t k = 0; k < m.merges.size(); ++k)
    out += std::string(k ? "," : "") + "\n" +
           quoted(bytes_to_unicode(m.tokens[size_t(m.merges[k].first)]) + " " +
                  bytes_to_unicode(m.tokens[size_t(m.merges[k].second)]));
  out += std::string(m.merges.empty() ? "" : "\n    ") + "]\n  }\n}\n";
  return out;
}

void Bpe::save(const std::string& path) const { write_file_atomic(path, to_json(), "bpe"); }

}  // namespace lmlab::data
