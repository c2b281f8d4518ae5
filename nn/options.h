// The table of model options: every key of a config file's `model:` section with its type,
// default, range and one-line doc. It is the one list of them: the config file's parse, writing and
// validation (train/config/), docs/config.md (`lmlab options --markdown`, checked by a test), the
// bench's JSON for the PyTorch twin, the fixture readers and tools/torch_reference.py (`lmlab
// options --json`) all read it. A layer adds its own row, and the layers it puts into the model at
// named sites, from its own file with RegisterModelOption: docs/extending.md.
#pragma once
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "nn/config.h"
#include "nn/module.h"

namespace lmlab::nn {

enum class OptionType { Int, Real, Bool, Choice };

// Where an Int or Real option's value may lie: lo < v (lo <= v when !lo_open), v < hi. An Int is
// also at most 2^31 - 1. With zero_is_auto, 0 is allowed in a config file and decided later (the
// tokenizer's vocab_size, n_kv_head = n_head); a model to build must have a real value.
struct OptionRange {
  double lo = -std::numeric_limits<double>::infinity();
  bool lo_open = false;
  double hi = std::numeric_limits<double>::infinity();
  bool zero_is_auto = false;
};

// Where a plugged-in layer runs; each maps its input to a tensor of the same shape.
enum class Site {
  Embedding,     // x (B, T, C) after the token and position embeddings, before dropout
  Query,         // q (B, n_head, T, HS) right after its projection, before RoPE
  Key,           // k (B, n_kv_head, T, HS) right after its projection, before RoPE and the cache
  AttentionOut,  // the attention branch (B, T, C), before dropout and the residual add
  MlpOut,        // the MLP branch (B, T, C), before dropout and the residual add
  Final,         // x (B, T, C) before the LM head (after the final norm, if any)
};

// A layer at a Site. Its parameters are named under the module that holds the site:
// "blocks.<l>.attn.<name>." for Query / Key, "blocks.<l>.<name>." for AttentionOut / MlpOut,
// "<name>." for Embedding / Final.
class SiteLayer : public Module {
 public:
  virtual Tensor forward(const Tensor& x) const = 0;
};

// One layer an option puts into the model when it is on: `make` builds it for a config, drawing
// any random init from the generator it is given.
struct Plug {
  Site site;
  std::string name;  // the child module's name: "q_norm"
  std::function<std::shared_ptr<SiteLayer>(const ModelConfig&, Generator&)> make;
};

// One row of the table.
struct ModelOption {
  std::string name;  // the key under `model:` ("n_embd")
  OptionType type = OptionType::Bool;
  OptionValue default_value;         // what a config file that omits the key gets
  OptionRange range;                 // Int and Real
  std::string rule;                  // a rule between keys, for the docs: "divides `n_embd`"
  std::vector<std::string> choices;  // Choice: the names, in the enum's order
  std::string doc;                   // one line
  // Read and write the value in a config: a member of ModelConfig for the built-in rows,
  // ModelConfig::extra for a registered one (filled in by register_model_option).
  std::function<OptionValue(const ModelConfig&)> get;
  std::function<void(ModelConfig&, const OptionValue&)> set;
  std::vector<Plug> plugs;  // a Bool option's layers, built where it is true
};

// Every row: the built-in ones in file order, then the registered ones by name.
const std::vector<ModelOption>& model_options();
// The row named `name`, or nullptr.
const ModelOption* find_model_option(const std::string& name);
// Every option at its default: what a config file that sets no model key gets (vocab_size and
// n_kv_head 0, decided at run time).
ModelConfig model_defaults();

// Adds a layer's row to the table. Its get/set, when empty, keep the value in ModelConfig::extra.
// Throws lmlab::Error for a name already in the table, a default of the wrong type or plugs on an
// option that is not a Bool. Use through a RegisterModelOption at namespace scope in the layer's
// file, so the row exists before main() (lmlab_nn is linked whole, so the file is always kept).
void register_model_option(ModelOption option);
struct RegisterModelOption {
  explicit RegisterModelOption(ModelOption option) { register_model_option(std::move(option)); }
};

// The value as config text: "128", "0.001" (format_real), "true", "rmsnorm".
std::string option_text(const OptionValue& v);
// The config text `s` as the option's value; false when it is not of the option's type (ints must
// be the whole text, reals finite, bools true/false/True/TRUE/..., choices one of the names).
bool parse_option(const ModelOption& o, const std::string& s, OptionValue* out);
// What the option wants, for messages: "an integer", "a number", "true or false", "one of pre,
// post, deepnorm".
std::string option_expects(const ModelOption& o);
// "int", "real", "bool", "enum".
std::string to_string(OptionType t);
// The range as the docs write it: "> 0", ">= 0", "[0, 1)", "" (plus the rule, if any).
std::string range_text(const ModelOption& o);

// `base` with the options in `values` (name -> config text) set; names not in the table are
// appended to `unknown` (or are an error naming `source` when `unknown` is null). A value that does
// not parse is an error naming `source`, the key and the value.
ModelConfig model_config_from_text(const std::map<std::string, std::string>& values,
                                   const std::string& source, ModelConfig base = {},
                                   std::vector<std::string>* unknown = nullptr);

// The layers every option that is on plugs in at `site`, named, in table order. A host module
// registers them (Module::register_modules) and runs them with apply_layers.
std::vector<std::pair<std::string, std::shared_ptr<SiteLayer>>> plugged_layers(Site site,
                                                                               const ModelConfig& c,
                                                                               Generator& gen);
using SiteLayers = std::vector<std::shared_ptr<SiteLayer>>;
// x through each layer in order (x itself when there are none).
Tensor apply_layers(const SiteLayers& layers, const Tensor& x);

}  // namespace lmlab::nn
