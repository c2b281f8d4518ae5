#include "train/config/options_doc.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "nn/options.h"

namespace lmlab::train {
namespace {

using Json = nlohmann::ordered_json;

Json value_json(const nn::OptionValue& v) {
  return std::visit([](const auto& x) { return Json(x); }, v);
}

Json bound(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

std::string site_name(nn::Site s) {
  switch (s) {
    case nn::Site::Embedding: return "embedding";
    case nn::Site::Query: return "query";
    case nn::Site::Key: return "key";
    case nn::Site::AttentionOut: return "attention_out";
    case nn::Site::MlpOut: return "mlp_out";
    case nn::Site::Final: return "final";
  }
  return "?";
}

Json row_json(const nn::ModelOption& o) {
  Json j = {
      {"name", o.name}, {"type", nn::to_string(o.type)}, {"default", value_json(o.default_value)}};
  if (o.type == nn::OptionType::Int || o.type == nn::OptionType::Real)
    j["range"] = {{"lo", bound(o.range.lo)},
                  {"lo_open", o.range.lo_open},
                  {"hi", bound(o.range.hi)},
                  {"zero_is_auto", o.range.zero_is_auto}};
  if (o.type == nn::OptionType::Choice) j["choices"] = o.choices;
  j["rule"] = o.rule;
  j["doc"] = o.doc;
  Json plugs = Json::array();
  for (const nn::Plug& p : o.plugs)
    plugs.push_back({{"site", site_name(p.site)}, {"name", p.name}});
  j["plugs"] = plugs;
  return j;
}

}  // namespace

std::string model_values_json(const nn::ModelConfig& m) {
  Json j = Json::object();
  for (const nn::ModelOption& o : nn::model_options()) j[o.name] = value_json(o.get(m));
  return j.dump();
}

std::string model_options_json() {
  Json rows = Json::array();
  for (const nn::ModelOption& o : nn::model_options()) rows.push_back(row_json(o));
  return rows.dump(1) + "\n";
}

std::string model_options_markdown() {
  std::ostringstream out;
  out << "| key | type | default | range | meaning |\n|---|---|---|---|---|\n";
  for (const nn::ModelOption& o : nn::model_options())
    out << "| `model." << o.name << "` | " << nn::to_string(o.type) << " | "
        << nn::option_text(o.default_value) << " | " << nn::range_text(o) << " | " << o.doc
        << " |\n";
  return out.str();
}

}  // namespace lmlab::train
