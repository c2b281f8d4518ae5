#include "nn/config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <type_traits>
#include <utility>

#include "autograd/error.h"
#include "nn/options.h"

namespace lmlab::nn {

int64_t ModelConfig::hidden_size() const {
  if (mlp_hidden > 0) return mlp_hidden;
  if (mlp == MlpType::Gelu) return 4 * n_embd;
  // LLaMA: int(2 * 4d / 3) rounded up to a multiple of multiple_of
  const int64_t h = 2 * 4 * n_embd / 3;
  return (h + mlp_multiple_of - 1) / mlp_multiple_of * mlp_multiple_of;
}

namespace {

// A built-in row bound to the member M of ModelConfig. Its default is M's value in ModelConfig{},
// or 0 for a zero_is_auto row (what a config file that omits the key gets). An enum's choices are
// its names in declaration order.
template <auto M>
ModelOption member_row(std::string name, std::string doc, OptionRange range = {},
                       std::vector<std::string> choices = {}, std::string rule = {}) {
  ModelOption o;
  o.name = std::move(name);
  o.doc = std::move(doc);
  o.range = range;
  o.choices = std::move(choices);
  o.rule = std::move(rule);
  using T = std::remove_cvref_t<decltype(std::declval<ModelConfig&>().*M)>;
  if constexpr (std::is_enum_v<T>) {
    o.type = OptionType::Choice;
    o.get = [names = o.choices](const ModelConfig& c) -> OptionValue {
      return names.at(size_t(c.*M));
    };
    o.set = [names = o.choices](ModelConfig& c, const OptionValue& v) {
      const auto at = std::find(names.begin(), names.end(), std::get<std::string>(v));
      c.*M = T(at - names.begin());
    };
  } else {
    o.type = std::is_same_v<T, bool>     ? OptionType::Bool
             : std::is_same_v<T, double> ? OptionType::Real
                                         : OptionType::Int;
    o.get = [](const ModelConfig& c) -> OptionValue { return c.*M; };
    o.set = [](ModelConfig& c, const OptionValue& v) { c.*M = std::get<T>(v); };
  }
  o.default_value = o.get(ModelConfig{});
  if (o.range.zero_is_auto) o.default_value = int64_t{0};
  return o;
}

constexpr OptionRange kPositive{.lo = 0, .lo_open = true};
constexpr OptionRange kPositiveOrAuto{.lo = 0, .lo_open = true, .zero_is_auto = true};
constexpr OptionRange kNonNegative{.lo = 0};
constexpr OptionRange kUnitInterval{.lo = 0, .hi = 1};  // [0, 1)

}  // namespace

namespace detail {

// The built-in rows, in the order a written config lists them.
std::vector<ModelOption> builtin_model_options() {
  using M = ModelConfig;
  return {
      member_row<&M::vocab_size>("vocab_size", "vocabulary size; 0: from the tokenizer at run time",
                                 kPositiveOrAuto),
      member_row<&M::block_size>("block_size",
                                 "context length: the longest sequence the model sees", kPositive),
      member_row<&M::n_layer>("n_layer", "transformer blocks", kPositive),
      member_row<&M::n_head>("n_head", "query heads; head size is `n_embd / n_head`", kPositive, {},
                             "divides `n_embd`"),
      member_row<&M::n_kv_head>(
          "n_kv_head", "key/value heads: `n_head` is MHA, 1 MQA, between GQA; 0: = `n_head`",
          kPositiveOrAuto, {}, "divides `n_head`"),
      member_row<&M::n_embd>("n_embd", "residual stream width", kPositive),
      member_row<&M::norm>("norm", "normalization layer", {}, {"layernorm", "rmsnorm"}),
      member_row<&M::norm_placement>(
          "norm_placement",
          "pre: `x + f(norm(x))` with a final norm; post: `norm(x + f(x))`; deepnorm: "
          "`norm(alpha x + f(x))`, `alpha = (2N)^(1/4)`",
          {}, {"pre", "post", "deepnorm"}),
      member_row<&M::mlp>("mlp", "gelu: `W2 gelu(W1 x)`; swiglu: `W2(silu(W1 x) * W3 x)`", {},
                          {"gelu", "swiglu"}),
      member_row<&M::mlp_multiple_of>(
          "mlp_multiple_of",
          "the SwiGLU hidden width `int(8 n_embd / 3)` is rounded up to a multiple of this",
          kPositive),
      member_row<&M::mlp_hidden>(
          "mlp_hidden", "MLP hidden width; 0: `4 n_embd` for gelu, the rule above for swiglu",
          kNonNegative),
      member_row<&M::position>(
          "position",
          "learned absolute embeddings, or rotary embeddings on q and k (needs an even head size)",
          {}, {"learned", "rope"}),
      member_row<&M::rope_base>("rope_base", "RoPE frequency base (rope only)", kPositive),
      member_row<&M::norm_eps>("norm_eps", "epsilon inside the norm's square root", kPositive),
      member_row<&M::dropout>("dropout", "dropout probability (attention and residual paths)",
                              kUnitInterval),
      member_row<&M::bias>("bias", "biases in Linear layers and LayerNorm"),
      member_row<&M::tie_embeddings>("tie_embeddings",
                                     "the LM head reuses the token embedding matrix"),
      member_row<&M::init_std>(
          "init_std",
          "std of the normal init; residual output projections use `init_std / sqrt(2 n_layer)`",
          kPositive),
  };
}

}  // namespace detail

namespace {

std::string show(int64_t v) { return std::to_string(v); }
std::string show(double v) { return format_real(v); }

}  // namespace

void ConfigChecks::require(bool ok, std::vector<std::string> keys, std::string what) {
  if (!ok) problems_.push_back({std::move(keys), std::move(what)});
}

// "<key> must be <relation>, got <v>" when !ok; built only then.
void ConfigChecks::bound(bool ok, const std::string& key, const std::string& relation,
                         const std::string& v) {
  if (!ok) problems_.push_back({{key}, key + " must be " + relation + ", got " + v});
}

void ConfigChecks::greater(const std::string& key, int64_t v, int64_t b) {
  bound(v > b, key, "> " + show(b), show(v));
}
void ConfigChecks::greater(const std::string& key, double v, double b) {
  bound(v > b, key, "> " + show(b), show(v));
}
void ConfigChecks::at_least(const std::string& key, int64_t v, int64_t b) {
  bound(v >= b, key, ">= " + show(b), show(v));
}
void ConfigChecks::at_least(const std::string& key, double v, double b) {
  bound(v >= b, key, ">= " + show(b), show(v));
}
void ConfigChecks::at_most(const std::string& key, int64_t v, int64_t b) {
  bound(v <= b, key, "<= " + show(b), show(v));
}

void ConfigChecks::in_range(const std::string& key, double v, double lo, double hi, bool open_low) {
  const bool ok = (open_low ? v > lo : v >= lo) && v < hi;
  bound(ok, key, std::string("in ") + (open_low ? "(" : "[") + show(lo) + ", " + show(hi) + ")",
        show(v));
}

void ConfigChecks::finite(const std::string& key, double v) {
  bound(std::isfinite(v), key, "a finite number", show(v));
}

void ConfigChecks::one_of(const std::string& key, const std::string& v,
                          std::initializer_list<const char*> allowed) {
  std::string list;
  for (const char* a : allowed) {
    if (v == a) return;
    list += (list.empty() ? "" : ", ") + std::string(a);
  }
  bound(false, key, "one of " + list, "'" + v + "'");
}

namespace {

// The range rules of one Int row: > lo (>= lo when closed, or when 0 is "auto" here), then at most
// 2^31 - 1 so sizes fit int32 (token ids, kernel loops) and products like 8 * n_embd never
// overflow.
void check_int(const ModelOption& o, const std::string& key, int64_t v, bool zero_ok,
               ConfigChecks& k) {
  const int64_t lo = int64_t(o.range.lo);
  if (o.range.lo_open && !(zero_ok && o.range.zero_is_auto && lo == 0))
    k.greater(key, v, lo);
  else
    k.at_least(key, v, lo);
  k.at_most(key, v, int64_t{2147483647});
}

// A Real row: finite, then its bounds ("in [0, 1)" when it has both).
void check_real(const ModelOption& o, const std::string& key, double v, ConfigChecks& k) {
  k.finite(key, v);
  if (!std::isfinite(v) || !std::isfinite(o.range.lo)) return;
  if (std::isfinite(o.range.hi))
    k.in_range(key, v, o.range.lo, o.range.hi, o.range.lo_open);
  else if (o.range.lo_open)
    k.greater(key, v, o.range.lo);
  else
    k.at_least(key, v, o.range.lo);
}

}  // namespace

void check_model(const ModelConfig& c, const ModelCheck& how, ConfigChecks& k) {
  const auto key = [&](const char* name) { return how.prefix + name; };
  const size_t before = k.problems().size();
  for (const ModelOption& o : model_options()) {
    const OptionValue v = o.get(c);
    if (o.type == OptionType::Int)
      check_int(o, how.prefix + o.name, std::get<int64_t>(v), how.zero_is_auto, k);
    else if (o.type == OptionType::Real)
      check_real(o, how.prefix + o.name, std::get<double>(v), k);
  }
  if (k.problems().size() > before) return;  // the rules between keys divide by the sizes

  k.require(c.n_embd % c.n_head == 0, {key("n_embd"), key("n_head")},
            key("n_embd") + " " + show(c.n_embd) + " is not divisible by " + key("n_head") + " " +
                show(c.n_head));
  const int64_t kv = c.n_kv_head == 0 ? c.n_head : c.n_kv_head;  // 0 only when zero_is_auto
  k.require(c.n_head % kv == 0, {key("n_head"), key("n_kv_head")},
            key("n_head") + " " + show(c.n_head) + " is not divisible by " + key("n_kv_head") +
                " " + show(kv));
  k.require(c.position != PositionType::Rope || c.head_size() % 2 == 0,
            {key("position"), key("n_embd"), key("n_head")},
            key("position") +
                " rope needs an even head size, got n_embd / n_head = " + show(c.head_size()));
}

void ModelConfig::validate() const {
  ConfigChecks checks;
  check_model(*this, {}, checks);
  if (!checks.problems().empty()) throw Error("[model] " + checks.problems().front().what);
}

std::string format_real(double v) {
  char buf[64];
  const double a = std::fabs(v);
  const bool fixed = a == 0 || (a >= 1e-4 && a < 1e15);
  const auto r = std::to_chars(buf, buf + sizeof(buf), v,
                               fixed ? std::chars_format::fixed : std::chars_format::scientific);
  std::string out(buf, r.ptr);
  // "1e-08" -> "1e-8", "1e+20" -> "1e20": the same number, read back exactly
  const size_t e = out.find('e');
  if (e != std::string::npos) {
    std::string exp = out.substr(e + 1);
    const std::string sign = exp[0] == '-' ? "-" : "";
    if (exp[0] == '-' || exp[0] == '+') exp.erase(0, 1);
    exp.erase(0, std::min(exp.find_first_not_of('0'), exp.size() - 1));
    out = out.substr(0, e + 1) + sign + exp;
  }
  return out;
}

namespace {

// The name of an enum value: its choice in the option table (choices are in the enum's order).
std::string choice_name(const char* option, int index) {
  return find_model_option(option)->choices.at(size_t(index));
}

}  // namespace

std::string to_string(NormType t) { return choice_name("norm", int(t)); }
std::string to_string(NormPlacement p) { return choice_name("norm_placement", int(p)); }
std::string to_string(MlpType m) { return choice_name("mlp", int(m)); }
std::string to_string(PositionType p) { return choice_name("position", int(p)); }

}  // namespace lmlab::nn
