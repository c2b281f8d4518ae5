// load_config: reads the YAML file with yaml-cpp, sets each key through the schema with its type
// checked, applies the --set overrides, then validates. Errors are "file:line: what" (or
// "--set key=value: what") and suggest the closest known key for a misspelt one.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "autograd/error.h"
#include "data/read_file.h"
#include "train/config/schema.h"

namespace lmlab::train {
namespace config_detail {
namespace {

std::string at(const std::string& file, const YAML::Mark& mark) {
  return mark.is_null() ? file : file + ":" + std::to_string(mark.line + 1);
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// Levenshtein distance: the fewest single-character edits turning a into b.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

bool close_enough(size_t distance, const std::string& typed) {
  return distance <= std::max<size_t>(2, (typed.size() + 1) / 2);
}

// " (did you mean 'optim.lr'?)" for the known key nearest to section.name (a key of another
// section costs one extra edit), or "" when none is close.
std::string did_you_mean(const std::string& section, const std::string& name) {
  const Field* best = nullptr;
  size_t best_d = 0;
  for (const Field& f : fields()) {
    const std::string known = f.name;
    // a typed prefix or part of a name ("decay" for "decay_iters") counts as one edit
    const bool part = name.size() >= 3 && known.find(name) != std::string::npos;
    const size_t d = (part ? 1 : edit_distance(name, known)) + (section == f.section ? 0 : 1);
    if (!best || d < best_d) best = &f, best_d = d;
  }
  return best && close_enough(best_d, name) ? " (did you mean '" + best->key() + "'?)" : "";
}

[[noreturn]] void unknown_section(const std::string& where, const std::string& name) {
  std::string hint;
  for (const Field& f : fields())
    if (name == f.name) hint = " (did you mean '" + f.key() + "'?)";
  for (const std::string& s : sections())
    if (hint.empty() && close_enough(edit_distance(name, s), name))
      hint = " (did you mean '" + s + "'?)";
  fail(where,
       "unknown section '" + name + "'" + hint + "; the sections are model, data, optim, train");
}

// The type a field wants, for messages: "an integer", "one of layernorm, rmsnorm", ...
struct TypeName {
  std::string operator()(int64_t*) const { return "an integer"; }
  std::string operator()(double*) const { return "a number"; }
  std::string operator()(bool*) const { return "true or false"; }
  std::string operator()(std::string*) const { return "a string"; }
  std::string operator()(ModelOptionRef r) const { return nn::option_expects(*r.option); }
};

std::string expected(const FieldRef& ref) { return std::visit(TypeName{}, ref); }

// Parses the scalar text `s` into the field; false when it is not of the field's type. Numbers
// must be the whole text (std::from_chars), reals finite; booleans are YAML 1.2 true / false.
struct Setter {
  const std::string& s;
  bool operator()(int64_t* v) const {
    const auto r = std::from_chars(s.data(), s.data() + s.size(), *v);
    return !s.empty() && r.ec == std::errc() && r.ptr == s.data() + s.size();
  }
  bool operator()(double* v) const {
    const char* b = s.data() + (s.size() > 1 && s[0] == '+' ? 1 : 0);  // from_chars rejects '+'
    const auto r = std::from_chars(b, s.data() + s.size(), *v);
    return !s.empty() && r.ec == std::errc() && r.ptr == s.data() + s.size() && std::isfinite(*v);
  }
  bool operator()(bool* v) const {
    if (s == "true" || s == "True" || s == "TRUE") return *v = true, true;
    if (s == "false" || s == "False" || s == "FALSE") return *v = false, true;
    return false;
  }
  bool operator()(std::string* v) const { return *v = s, true; }
  bool operator()(ModelOptionRef r) const {
    nn::OptionValue v;
    if (!nn::parse_option(*r.option, s, &v)) return false;
    r.option->set(*r.model, v);
    return true;
  }
};

// Sets the field `f` of `cfg` from the scalar text `s`, or fails at `where` naming the type.
void assign(const Field& f, TrainConfig& cfg, const std::string& s, const std::string& where) {
  const FieldRef ref = f.ref(cfg);
  if (!std::visit(Setter{s}, ref))
    fail(where, f.key() + " must be " + expected(ref) + ", got '" + s + "'");
}

std::string kind_of(const YAML::Node& n) {
  if (n.IsMap()) return "a map";
  if (n.IsSequence()) return "a list";
  return "no value";
}

// Reads the section map `body` (named `section`) of the document into cfg.
void apply_section(const std::string& file, const std::string& section, const YAML::Node& body,
                   TrainConfig& cfg, Origins& origins) {
  std::map<std::string, std::string> seen;
  for (const auto& entry : body) {
    const YAML::Node k = entry.first;
    const YAML::Node v = entry.second;
    const std::string where = at(file, k.Mark());
    if (!k.IsScalar()) fail(where, "a key in section '" + section + "' is " + kind_of(k));
    const std::string key = section + "." + k.Scalar();
    const Field* f = find_field(key);
    if (!f) fail(where, "unknown key '" + key + "'" + did_you_mean(section, k.Scalar()));
    if (seen.count(key))
      fail(where, "duplicate key '" + key + "' (first set at " + seen[key] + ")");
    seen[key] = where;
    if (!v.IsScalar())
      fail(where, key + " must be " + expected(f->ref(cfg)) + ", got " + kind_of(v));
    assign(*f, cfg, v.Scalar(), where);
    origins.set(key, where);
  }
}

// Reads a whole document (a map of sections, or empty) into cfg.
void apply_document(const std::string& file, const YAML::Node& doc, TrainConfig& cfg,
                    Origins& origins) {
  if (doc.IsNull()) return;
  if (!doc.IsMap())
    fail(at(file, doc.Mark()),
         "a config must be a map of sections (model, data, optim, train), "
         "got " +
             (doc.IsScalar() ? "a scalar '" + doc.Scalar() + "'" : std::string("a list")));
  std::map<std::string, std::string> seen;
  for (const auto& entry : doc) {
    const YAML::Node k = entry.first;
    const YAML::Node body = entry.second;
    const std::string where = at(file, k.Mark());
    if (!k.IsScalar()) fail(where, "a section name is " + kind_of(k));
    const std::string name = k.Scalar();
    const auto& names = sections();
    if (std::find(names.begin(), names.end(), name) == names.end()) unknown_section(where, name);
    if (seen.count(name))
      fail(where, "duplicate section '" + name + "' (first at " + seen[name] + ")");
    seen[name] = where;
    if (body.IsNull()) continue;  // a section with every key commented out
    if (!body.IsMap())
      fail(where, "section '" + name + "' must be a map of keys, got " +
                      (body.IsScalar() ? "'" + body.Scalar() + "'" : kind_of(body)));
    apply_section(file, name, body, cfg, origins);
  }
}

// One "section.key=value" override.
void apply_override(const std::string& text, TrainConfig& cfg, Origins& origins) {
  const std::string where = "--set " + text;
  const size_t eq = text.find('=');
  if (eq == std::string::npos)
    fail(where, "an override must look like section.key=value (e.g. optim.lr=3e-4), got no '='");
  const std::string key = trim(text.substr(0, eq));
  std::string value = trim(text.substr(eq + 1));
  const Field* f = find_field(key);
  if (!f) {
    const size_t dot = key.find('.');
    const std::string section = dot == std::string::npos ? "" : key.substr(0, dot);
    const auto& names = sections();
    if (dot == std::string::npos)
      fail(where,
           "unknown key '" + key + "', keys are written section.key" + did_you_mean("", key));
    if (std::find(names.begin(), names.end(), section) == names.end())
      unknown_section(where, section);
    fail(where, "unknown key '" + key + "'" + did_you_mean(section, key.substr(dot + 1)));
  }
  if (!value.empty() && (value[0] == '"' || value[0] == '\'')) {
    if (value.size() < 2 || value.back() != value[0])
      fail(where, "a quoted value must end with its quote (" + value.substr(0, 1) + ")");
    try {
      // inside a flow list, yaml-cpp refuses anything after the closing quote
      const YAML::Node n = YAML::Load("[" + value + "]");
      if (n.size() != 1 || !n[0].IsScalar())
        fail(where, "the quoted value is not a valid YAML scalar: it holds " +
                        std::to_string(n.size()) + " values");
      value = n[0].Scalar();
    } catch (const YAML::Exception& e) {
      fail(where, "the quoted value is not a valid YAML scalar: " + e.msg);
    }
  }
  assign(*f, cfg, value, where);
  origins.set(key, where);
}

std::string read_text(const std::string& path) {
  std::string why;
  std::optional<std::string> text = data::read_whole_file(path, &why);
  if (!text) fail(path, "cannot read the config: " + why);
  return std::move(*text);
}

}  // namespace
}  // namespace config_detail

TrainConfig load_config(const std::string& path, const std::vector<std::string>& overrides) {
  return load_config_text(config_detail::read_text(path), path, overrides);
}

namespace config_detail {
namespace {

// Whether a line holds something other than blanks and a comment.
bool content_line(const std::string& line) {
  const size_t b = line.find_first_not_of(" \t\r");
  return b != std::string::npos && line[b] != '#';
}

// Lines that are YAML document markers ("---", "--- ...").
bool marker_line(const std::string& line) {
  return line.rfind("---", 0) == 0 &&
         (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r');
}

// Documents in `text`: one per "---" marker, plus one for content before the first marker.
int count_documents(const std::string& text) {
  std::istringstream in(text);
  int documents = 0;
  bool open = false;  // inside a document with content
  for (std::string line; std::getline(in, line);) {
    if (marker_line(line)) {
      open = false;
      ++documents;
    } else if (content_line(line) && !open && line[0] != '%') {
      open = true;
      if (documents == 0) documents = 1;
    }
  }
  return documents;
}

// Whether `text` holds anything but blanks, comments and markers.
bool has_content(const std::string& text) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (content_line(line) && !marker_line(line)) return true;
  return false;
}

}  // namespace
}  // namespace config_detail

TrainConfig load_config_text(const std::string& text, const std::string& path,
                             const std::vector<std::string>& overrides) {
  using namespace config_detail;
  TrainConfig cfg;
  cfg.source = path;
  Origins origins(path);
  // Documents are counted from their "---" markers, and only the first is parsed: yaml-cpp 0.7's
  // LoadAll never returns on some malformed input (a text starting with ",": found by
  // tests/fuzz/fuzz_config.cpp), while Load does.
  const int documents = count_documents(text);
  if (documents > 1)
    fail(path, "holds " + std::to_string(documents) + " YAML documents; a config is one");
  YAML::Node doc;
  try {
    doc = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    fail(at(path, e.mark), "invalid YAML: " + e.msg);
  }
  if (doc.IsNull() && has_content(text))
    fail(path,
         "invalid YAML: no section map could be read (a config is a map of model, data, "
         "optim and train sections)");
  if (!doc.IsNull()) apply_document(path, doc, cfg, origins);
  for (const std::string& o : overrides) apply_override(o, cfg, origins);
  validate_located(cfg, origins);
  if (cfg.model.n_kv_head == 0) cfg.model.n_kv_head = cfg.model.n_head;
  return cfg;
}

}  // namespace lmlab::train
