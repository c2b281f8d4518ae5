#include "nn/config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <utility>

#include "autograd/error.h"

namespace lmlab::nn {

int64_t ModelConfig::hidden_size() const {
  if (mlp_hidden > 0) return mlp_hidden;
  if (mlp == MlpType::Gelu) return 4 * n_embd;
  // LLaMA: int(2 * 4d / 3) rounded up to a multiple of multiple_of
  const int64_t h = 2 * 4 * n_embd / 3;
  return (h + mlp_multiple_of - 1) / mlp_multiple_of * mlp_multiple_of;
}

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

void check_model(const ModelConfig& c, const ModelCheck& how, ConfigChecks& k) {
  const auto key = [&](const char* name) { return how.prefix + name; };
  const size_t before = k.problems().size();
  // Every size, and whether 0 is allowed (auto, or "the default" for mlp_hidden).
  struct Size {
    const char* name;
    int64_t v;
    bool zero_ok;
  };
  const bool a = how.zero_is_auto;
  const Size sizes[] = {{"vocab_size", c.vocab_size, a},
                        {"block_size", c.block_size, false},
                        {"n_layer", c.n_layer, false},
                        {"n_head", c.n_head, false},
                        {"n_kv_head", c.n_kv_head, a},
                        {"n_embd", c.n_embd, false},
                        {"mlp_multiple_of", c.mlp_multiple_of, false},
                        {"mlp_hidden", c.mlp_hidden, true}};
  for (const Size& s : sizes) {
    if (s.zero_ok)
      k.at_least(key(s.name), s.v, int64_t{0});
    else
      k.greater(key(s.name), s.v, int64_t{0});
  }
  // Sizes fit int32 (token ids, kernel loops), so products like 8 * n_embd never overflow.
  for (const Size& s : sizes) k.at_most(key(s.name), s.v, int64_t{2147483647});
  k.finite(key("rope_base"), c.rope_base);
  k.greater(key("rope_base"), c.rope_base, 0.0);
  k.finite(key("norm_eps"), c.norm_eps);
  k.greater(key("norm_eps"), c.norm_eps, 0.0);
  k.in_range(key("dropout"), c.dropout, 0, 1, false);
  k.finite(key("init_std"), c.init_std);
  k.greater(key("init_std"), c.init_std, 0.0);
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

std::string to_string(NormType t) { return t == NormType::LayerNorm ? "layernorm" : "rmsnorm"; }
std::string to_string(NormPlacement p) {
  switch (p) {
    case NormPlacement::Pre: return "pre";
    case NormPlacement::Post: return "post";
    case NormPlacement::DeepNorm: return "deepnorm";
  }
  return "?";
}
std::string to_string(MlpType m) { return m == MlpType::Gelu ? "gelu" : "swiglu"; }
std::string to_string(PositionType p) { return p == PositionType::Learned ? "learned" : "rope"; }

}  // namespace lmlab::nn
