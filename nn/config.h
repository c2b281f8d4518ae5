// ModelConfig: every architectural choice the ablations compare, and its rules: the one place they
// are written (check_model, driven by the option table of nn/options.h), read by
// ModelConfig::validate() and by the config file's validation in train/config/validate.cpp, which
// adds where each key was set.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "autograd/shape.h"
#include "autograd/types.h"

namespace lmlab::nn {

enum class NormType { LayerNorm, RMSNorm };
// pre:  x = x + f(norm(x)), final norm before the head (GPT-2, LLaMA)
// post: x = norm(x + f(x)), no final norm (Vaswani et al. 2017)
// deepnorm: x = norm(alpha * x + f(x)) with alpha = (2N)^(1/4) and beta-scaled init (Wang et al.
// 2022)
enum class NormPlacement { Pre, Post, DeepNorm };
enum class MlpType { Gelu, SwiGlu };
enum class PositionType { Learned, Rope };

// The value of one model option (nn/options.h): an integer, a real, a flag, or the name of a
// choice ("rmsnorm").
using OptionValue = std::variant<int64_t, double, bool, std::string>;

struct ModelConfig {
  int64_t vocab_size = 65;
  int64_t block_size = 64;  // the longest sequence (context) the model accepts
  int64_t n_layer = 4;
  int64_t n_head = 4;
  int64_t n_kv_head = 4;  // == n_head: MHA; 1: MQA; between: GQA
  int64_t n_embd = 128;
  NormType norm = NormType::LayerNorm;
  NormPlacement norm_placement = NormPlacement::Pre;
  MlpType mlp = MlpType::Gelu;
  int64_t mlp_multiple_of = 16;  // SwiGLU hidden int(2 * 4d / 3) is rounded up to this multiple
  int64_t mlp_hidden = 0;        // 0: the default (4d for GELU, the SwiGLU rule above)
  PositionType position = PositionType::Learned;
  double rope_base = 10000;
  double norm_eps = 1e-5;
  double dropout = 0;
  bool bias = true;  // biases in Linear layers and LayerNorm
  bool tie_embeddings = true;
  double init_std = 0.02;
  // The values of the options that layers register from their own files (nn/options.h), by name;
  // an option not here has its default. Read them with option<T>(name).
  std::map<std::string, OptionValue> extra = {};

  int64_t head_size() const { return n_embd / n_head; }
  int64_t hidden_size() const;  // the MLP's hidden width
  // Throws lmlab::Error with the first problem check_model finds, e.g.
  // "[model] n_embd 100 is not divisible by n_head 3".
  void validate() const;
  // A registered option's value (or its default): T is bool, int64_t, double or std::string (a
  // choice). Throws lmlab::Error naming the option when it is not in the table or not a T.
  template <class T>
  T option(const std::string& name) const;
};

// One broken rule of a config: the keys it involves and a message naming them and their values,
// e.g. {{"n_embd", "n_head"}, "n_embd 100 is not divisible by n_head 3"}.
struct ConfigProblem {
  std::vector<std::string> keys;
  std::string what;
};

// The checks config rules are written with. Each records a ConfigProblem when its rule is broken,
// worded the one way lmlab words them ("<key> must be > <bound>, got <value>", reals written by
// format_real). The model's rules below and the data / optim / train rules of a config file
// (train/config/validate.cpp) both use it.
class ConfigChecks {
 public:
  void require(bool ok, std::vector<std::string> keys, std::string what);
  void greater(const std::string& key, int64_t v, int64_t bound);
  void greater(const std::string& key, double v, double bound);
  void at_least(const std::string& key, int64_t v, int64_t bound);
  void at_least(const std::string& key, double v, double bound);
  void at_most(const std::string& key, int64_t v, int64_t bound);
  // lo <= v < hi, or lo < v < hi when `open_low`: "must be in [0, 1), got 1".
  void in_range(const std::string& key, double v, double lo, double hi, bool open_low);
  void finite(const std::string& key, double v);
  // "must be one of cpu, cuda, got 'tpu'"
  void one_of(const std::string& key, const std::string& v,
              std::initializer_list<const char*> allowed);

  // Every problem found, in the order the rules ran (the first is the one to report).
  const std::vector<ConfigProblem>& problems() const { return problems_; }

 private:
  void bound(bool ok, const std::string& key, const std::string& relation, const std::string& v);
  std::vector<ConfigProblem> problems_;
};

// How check_model names the keys and reads the values that may be decided later.
struct ModelCheck {
  std::string prefix;         // before every key: "" for a model built in code, "model." in a file
  bool zero_is_auto = false;  // vocab_size 0 (the tokenizer's size) and n_kv_head 0 (= n_head)
                              // allowed, as in a config file; a model to build has neither
};

// The model's rules, each written once: every size > 0 (>= 0 where 0 means auto or default) and
// <= 2^31 - 1, every real finite and in range, then the rules between keys (n_embd divisible by
// n_head, n_head by n_kv_head, an even head size for RoPE), checked only when the sizes passed.
// Adds one ConfigProblem to `checks` per broken rule, keys named `how.prefix` + member name.
void check_model(const ModelConfig& c, const ModelCheck& how, ConfigChecks& checks);

// The shortest decimal that reads back as exactly `v` (std::to_chars), fixed notation for
// 1e-4 <= |v| < 1e15 and scientific otherwise: 0.001, 500000, 1e-8, 1.5e-300. Every real in a
// config message or a written config is formatted by it.
std::string format_real(double v);

using lmlab::to_string;  // keep Shape / DType overloads visible next to these
std::string to_string(NormType t);
std::string to_string(NormPlacement p);
std::string to_string(MlpType m);
std::string to_string(PositionType p);

}  // namespace lmlab::nn
