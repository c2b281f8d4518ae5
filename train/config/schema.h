// The config schema shared by the parser, the validator and to_yaml (internal to train/): one Field
// per YAML key with a typed pointer into a TrainConfig, and where each key was set (for messages).
#pragma once
#include <functional>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "nn/options.h"
#include "train/config/config.h"

namespace lmlab::train::config_detail {

// A model option's value in a TrainConfig: the row of nn/options.h and the model it reads.
struct ModelOptionRef {
  const nn::ModelOption* option;
  nn::ModelConfig* model;
};

using FieldRef = std::variant<int64_t*, double*, bool*, std::string*, ModelOptionRef>;

struct Field {
  std::string section;
  std::string name;
  std::function<FieldRef(TrainConfig&)> ref;  // the member this key reads and writes
  std::string doc;                            // one line, written as a comment by to_yaml
  std::string key() const { return section + "." + name; }
};

// Every key in file order: model (every row of nn::model_options()), data, optim, train.
const std::vector<Field>& fields();
// The four section names, in order.
const std::vector<std::string>& sections();
// The field named "section.name", or nullptr.
const Field* find_field(const std::string& key);

// `s` as a YAML scalar that reads back as the same text: plain when it is only letters, digits
// and _ . / - (not starting with -, not null), else double-quoted with quotes, backslashes and
// control characters escaped.
std::string quote(const std::string& s);

// Where each key got its value: "configs/x.yaml:7" or "--set optim.lr=-1", and in which order
// (later overrides earlier), so a rule between keys blames the one the user set last.
class Origins {
 public:
  explicit Origins(std::string source) : source_(std::move(source)) {}
  void set(const std::string& key, const std::string& where) { where_[key] = {where, next_++}; }
  // The location of the most recently set key among `keys`, else the source file (may be "").
  std::string locate(const std::vector<std::string>& keys) const;

 private:
  std::string source_;
  std::map<std::string, std::pair<std::string, int>> where_;
  int next_ = 0;
};

// "<where>: <what>" as an lmlab::Error ("[config] <what>" when `where` is empty).
[[noreturn]] void fail(const std::string& where, const std::string& what);

// validate() with every message located through `origins`: the first problem found, at the
// key the user set last among those it names.
void validate_located(const TrainConfig& cfg, const Origins& origins);

}  // namespace lmlab::train::config_detail
