// The option table's registry, the text form of option values and the plugged-in layers. The
// built-in rows are in nn/config.cpp, next to the rules that use them.
#include "nn/options.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "autograd/error.h"

namespace lmlab::nn {

namespace detail {
std::vector<ModelOption> builtin_model_options();  // nn/config.cpp
}  // namespace detail

namespace {

// The table: the built-in rows, then the registered ones sorted by name (static initialisers run
// in no fixed order across files).
std::vector<ModelOption>& table() {
  static std::vector<ModelOption> rows = detail::builtin_model_options();
  return rows;
}

size_t builtin_count() {
  static const size_t n = detail::builtin_model_options().size();
  return n;
}

bool holds_type(OptionType t, const OptionValue& v) {
  switch (t) {
    case OptionType::Int: return std::holds_alternative<int64_t>(v);
    case OptionType::Real: return std::holds_alternative<double>(v);
    case OptionType::Bool: return std::holds_alternative<bool>(v);
    case OptionType::Choice: return std::holds_alternative<std::string>(v);
  }
  return false;
}

// Gives a registered row its storage in ModelConfig::extra.
void store_in_extra(ModelOption& o) {
  if (!o.get)
    o.get = [name = o.name, def = o.default_value](const ModelConfig& c) {
      auto it = c.extra.find(name);
      return it == c.extra.end() ? def : it->second;
    };
  if (!o.set) o.set = [name = o.name](ModelConfig& c, const OptionValue& v) { c.extra[name] = v; };
}

}  // namespace

const std::vector<ModelOption>& model_options() { return table(); }

const ModelOption* find_model_option(const std::string& name) {
  for (const ModelOption& o : table())
    if (o.name == name) return &o;
  return nullptr;
}

ModelConfig model_defaults() {
  ModelConfig c;
  for (const ModelOption& o : table()) o.set(c, o.default_value);
  return c;
}

void register_model_option(ModelOption o) {
  const std::string who = "[model options] registering '" + o.name + "': ";
  if (o.name.empty()) throw Error(who + "the name is empty");
  if (find_model_option(o.name)) throw Error(who + "the table already has an option of that name");
  if (!holds_type(o.type, o.default_value))
    throw Error(who + "its default is not of its type, " + to_string(o.type));
  if (o.type == OptionType::Choice &&
      std::find(o.choices.begin(), o.choices.end(), std::get<std::string>(o.default_value)) ==
          o.choices.end())
    throw Error(who + "its default is not one of its choices");
  if (!o.plugs.empty() && o.type != OptionType::Bool)
    throw Error(who + "only a bool option can plug layers into the model");
  store_in_extra(o);
  std::vector<ModelOption>& rows = table();
  rows.push_back(std::move(o));
  std::sort(rows.begin() + std::ptrdiff_t(builtin_count()), rows.end(),
            [](const ModelOption& a, const ModelOption& b) { return a.name < b.name; });
}

std::string to_string(OptionType t) {
  switch (t) {
    case OptionType::Int: return "int";
    case OptionType::Real: return "real";
    case OptionType::Bool: return "bool";
    case OptionType::Choice: return "enum";
  }
  return "?";
}

std::string option_text(const OptionValue& v) {
  struct Writer {
    std::string operator()(int64_t x) const { return std::to_string(x); }
    std::string operator()(double x) const { return format_real(x); }
    std::string operator()(bool x) const { return x ? "true" : "false"; }
    std::string operator()(const std::string& x) const { return x; }
  };
  return std::visit(Writer{}, v);
}

bool parse_option(const ModelOption& o, const std::string& s, OptionValue* out) {
  const char* end = s.data() + s.size();
  switch (o.type) {
    case OptionType::Int: {
      int64_t v = 0;
      const auto r = std::from_chars(s.data(), end, v);
      if (s.empty() || r.ec != std::errc() || r.ptr != end) return false;
      return *out = v, true;
    }
    case OptionType::Real: {
      double v = 0;
      const char* b = s.data() + (s.size() > 1 && s[0] == '+' ? 1 : 0);  // from_chars rejects '+'
      const auto r = std::from_chars(b, end, v);
      if (s.empty() || r.ec != std::errc() || r.ptr != end || !std::isfinite(v)) return false;
      return *out = v, true;
    }
    case OptionType::Bool:
      if (s == "true" || s == "True" || s == "TRUE") return *out = true, true;
      if (s == "false" || s == "False" || s == "FALSE") return *out = false, true;
      return false;
    case OptionType::Choice:
      if (std::find(o.choices.begin(), o.choices.end(), s) == o.choices.end()) return false;
      return *out = s, true;
  }
  return false;
}

std::string option_expects(const ModelOption& o) {
  switch (o.type) {
    case OptionType::Int: return "an integer";
    case OptionType::Real: return "a number";
    case OptionType::Bool: return "true or false";
    case OptionType::Choice: break;
  }
  std::string list;
  for (const std::string& c : o.choices) list += (list.empty() ? "" : ", ") + c;
  return "one of " + list;
}

std::string range_text(const ModelOption& o) {
  std::string text;
  const OptionRange& r = o.range;
  const bool numeric = o.type == OptionType::Int || o.type == OptionType::Real;
  const bool low = numeric && std::isfinite(r.lo), high = numeric && std::isfinite(r.hi);
  const bool zero_ok = r.zero_is_auto && r.lo == 0;
  if (low && high)
    text = std::string(r.lo_open ? "(" : "[") + format_real(r.lo) + ", " + format_real(r.hi) + ")";
  else if (low)
    text = std::string(r.lo_open && !zero_ok ? "> " : ">= ") + format_real(r.lo);
  if (o.type == OptionType::Choice)
    for (const std::string& c : o.choices) text += (text.empty() ? "" : ", ") + c;
  if (!o.rule.empty()) text += (text.empty() ? "" : ", ") + o.rule;
  return text;
}

ModelConfig model_config_from_text(const std::map<std::string, std::string>& values,
                                   const std::string& source, ModelConfig base,
                                   std::vector<std::string>* unknown) {
  for (const auto& [key, text] : values) {
    const ModelOption* o = find_model_option(key);
    if (!o) {
      if (!unknown) throw Error("[model] " + source + ": '" + key + "' is not a model option");
      unknown->push_back(key);
      continue;
    }
    OptionValue v;
    if (!parse_option(*o, text, &v))
      throw Error("[model] " + source + ": " + key + " must be " + option_expects(*o) + ", got '" +
                  text + "'");
    o->set(base, v);
  }
  return base;
}

std::vector<std::pair<std::string, std::shared_ptr<SiteLayer>>> plugged_layers(Site site,
                                                                               const ModelConfig& c,
                                                                               Generator& gen) {
  std::vector<std::pair<std::string, std::shared_ptr<SiteLayer>>> out;
  for (const ModelOption& o : table()) {
    if (o.plugs.empty() || !std::get<bool>(o.get(c))) continue;
    for (const Plug& p : o.plugs)
      if (p.site == site) out.emplace_back(p.name, p.make(c, gen));
  }
  return out;
}

Tensor apply_layers(const SiteLayers& layers, const Tensor& x) {
  Tensor y = x;
  for (const auto& layer : layers) y = layer->forward(y);
  return y;
}

template <class T>
T ModelConfig::option(const std::string& name) const {
  const ModelOption* o = find_model_option(name);
  if (!o) throw Error("[model] '" + name + "' is not a model option (nn/options.h)");
  const OptionValue v = o->get(*this);
  if (!std::holds_alternative<T>(v))
    throw Error("[model] option '" + name + "' is a " + to_string(o->type) + ", read as another");
  return std::get<T>(v);
}

template bool ModelConfig::option<bool>(const std::string&) const;
template int64_t ModelConfig::option<int64_t>(const std::string&) const;
template double ModelConfig::option<double>(const std::string&) const;
template std::string ModelConfig::option<std::string>(const std::string&) const;

}  // namespace lmlab::nn
