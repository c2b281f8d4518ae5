// The config schema (every key with its one-line meaning), to_yaml and the small helpers around
// TrainConfig. Parsing lives in parse.cpp, the rules in validate.cpp (the model's: nn/config.h).
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <sstream>

#include "autograd/error.h"
#include "train/config/schema.h"

namespace lmlab::train {
namespace config_detail {
namespace {

using C = TrainConfig;

// The model section: one key per row of the option table (nn/options.h).
std::vector<Field> model_fields() {
  std::vector<Field> out;
  for (const nn::ModelOption& o : nn::model_options())
    out.push_back({"model", o.name,
                   [row = &o](C& c) -> FieldRef {
                     return ModelOptionRef{row, &c.model};
                   },
                   o.doc});
  return out;
}

// The data section: the corpus, its tokenizer and the validation split.
std::vector<Field> data_fields() {
  return {
      {"data", "corpus", [](C& c) -> FieldRef { return &c.data.corpus; },
       "UTF-8 text file or directory of them (format bin: a prepared directory or a .bin file)"},
      {"data", "format", [](C& c) -> FieldRef { return &c.data.format; },
       "text | bin (token files from lmlab prepare, nanoGPT or llm.c, memory-mapped)"},
      {"data", "tokenizer", [](C& c) -> FieldRef { return &c.data.tokenizer; },
       "char | byte | bpe"},
      {"data", "tokenizer_file", [](C& c) -> FieldRef { return &c.data.tokenizer_file; },
       "bpe: a Hugging Face tokenizer.json; empty: train one on the corpus"},
      {"data", "bpe_vocab_size", [](C& c) -> FieldRef { return &c.data.bpe_vocab_size; },
       "bpe without tokenizer_file: the vocabulary to train, >= 257"},
      {"data", "val_fraction", [](C& c) -> FieldRef { return &c.data.val_fraction; },
       "tail of the corpus held out for validation, in (0, 1)"},
  };
}

// The optim section: optimizer, learning-rate schedule, clipping.
std::vector<Field> optim_fields() {
  return {
      {"optim", "name", [](C& c) -> FieldRef { return &c.optim.name; }, "adamw | sgd"},
      {"optim", "lr", [](C& c) -> FieldRef { return &c.optim.lr; }, "peak learning rate"},
      {"optim", "min_lr", [](C& c) -> FieldRef { return &c.optim.min_lr; },
       "learning rate at the end of the cosine decay"},
      {"optim", "schedule", [](C& c) -> FieldRef { return &c.optim.schedule; },
       "cosine | constant (after the warmup)"},
      {"optim", "warmup_iters", [](C& c) -> FieldRef { return &c.optim.warmup_iters; },
       "linear warmup steps"},
      {"optim", "decay_iters", [](C& c) -> FieldRef { return &c.optim.decay_iters; },
       "step where the cosine reaches min_lr; 0: = train.max_iters"},
      {"optim", "beta1", [](C& c) -> FieldRef { return &c.optim.beta1; }, "AdamW beta1"},
      {"optim", "beta2", [](C& c) -> FieldRef { return &c.optim.beta2; }, "AdamW beta2"},
      {"optim", "eps", [](C& c) -> FieldRef { return &c.optim.eps; }, "AdamW epsilon"},
      {"optim", "weight_decay", [](C& c) -> FieldRef { return &c.optim.weight_decay; },
       "decoupled weight decay (matrices only)"},
      {"optim", "momentum", [](C& c) -> FieldRef { return &c.optim.momentum; }, "SGD momentum"},
      {"optim", "grad_clip", [](C& c) -> FieldRef { return &c.optim.grad_clip; },
       "max global gradient norm; 0 disables"},
  };
}

// The train section: the loop, its logs and checkpoints, device and output.
std::vector<Field> train_fields() {
  return {
      {"train", "max_iters", [](C& c) -> FieldRef { return &c.train.max_iters; },
       "optimizer steps"},
      {"train", "batch_size", [](C& c) -> FieldRef { return &c.train.batch_size; },
       "sequences per micro-batch"},
      {"train", "grad_accum", [](C& c) -> FieldRef { return &c.train.grad_accum; },
       "micro-batches per optimizer step"},
      {"train", "eval_interval", [](C& c) -> FieldRef { return &c.train.eval_interval; },
       "steps between validation evals"},
      {"train", "val_subset_interval",
       [](C& c) -> FieldRef { return &c.train.val_subset_interval; },
       "steps between subset estimates of the val loss; 0: none"},
      {"train", "val_subset_tokens", [](C& c) -> FieldRef { return &c.train.val_subset_tokens; },
       "tokens (spread over the val split) in a subset estimate"},
      {"train", "log_interval", [](C& c) -> FieldRef { return &c.train.log_interval; },
       "steps between progress lines"},
      {"train", "checkpoint_interval",
       [](C& c) -> FieldRef { return &c.train.checkpoint_interval; },
       "steps between checkpoints; 0: only at the end (and on SIGINT)"},
      {"train", "seed", [](C& c) -> FieldRef { return &c.train.seed; },
       "seed for init, batches and dropout"},
      {"train", "threads", [](C& c) -> FieldRef { return &c.train.threads; },
       "CPU threads; 0: all cores"},
      {"train", "bucket_mb", [](C& c) -> FieldRef { return &c.train.bucket_mb; },
       "MiB per gradient all-reduce under mpirun"},
      {"train", "device", [](C& c) -> FieldRef { return &c.train.device; }, "cpu | cuda"},
      {"train", "precision", [](C& c) -> FieldRef { return &c.train.precision; },
       "fp32 | tf32 (CUDA only: TF32 tensor-core GEMMs) | bf16 (mixed precision)"},
      {"train", "run_dir", [](C& c) -> FieldRef { return &c.train.run_dir; },
       "output folder; \"\": runs/<config file stem>"},
      {"train", "sample_tokens", [](C& c) -> FieldRef { return &c.train.sample_tokens; },
       "tokens sampled at the end; 0: none"},
      {"train", "sample_prompt", [](C& c) -> FieldRef { return &c.train.sample_prompt; },
       "text the sample starts from"},
  };
}

}  // namespace

const std::vector<Field>& fields() {
  static const std::vector<Field> table = [] {
    std::vector<Field> t = model_fields();
    for (const std::vector<Field>& more : {data_fields(), optim_fields(), train_fields()})
      t.insert(t.end(), more.begin(), more.end());
    return t;
  }();
  return table;
}

const std::vector<std::string>& sections() {
  static const std::vector<std::string> names = {"model", "data", "optim", "train"};
  return names;
}

const Field* find_field(const std::string& key) {
  for (const Field& f : fields())
    if (f.key() == key) return &f;
  return nullptr;
}

std::string quote(const std::string& s) {
  const auto plain_char = [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.' || ch == '/' ||
           ch == '-';
  };
  const bool null_word = s == "null" || s == "Null" || s == "NULL";
  if (!s.empty() && s[0] != '-' && !null_word && std::all_of(s.begin(), s.end(), plain_char))
    return s;  // a plain scalar reads back as the same text
  static const char* hex = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char ch : s) {
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (ch < 0x20 || ch == 0x7f) {
          out += "\\x";
          out += hex[ch >> 4];
          out += hex[ch & 15];
        } else {
          out += static_cast<char>(ch);
        }
    }
  }
  return out + "\"";
}

std::string Origins::locate(const std::vector<std::string>& keys) const {
  const std::pair<std::string, int>* best = nullptr;
  for (const std::string& k : keys) {
    auto it = where_.find(k);
    if (it != where_.end() && (!best || it->second.second > best->second)) best = &it->second;
  }
  return best ? best->first : source_;
}

void fail(const std::string& where, const std::string& what) {
  throw Error(where.empty() ? "[config] " + what : where + ": " + what);
}

namespace {

// One value as YAML text: numbers in shortest round-trip form, strings plain or double-quoted.
std::string yaml_value(const FieldRef& ref) {
  struct Writer {
    std::string operator()(int64_t* v) const { return std::to_string(*v); }
    std::string operator()(double* v) const { return nn::format_real(*v); }
    std::string operator()(bool* v) const { return *v ? "true" : "false"; }
    std::string operator()(std::string* v) const { return quote(*v); }
    std::string operator()(ModelOptionRef r) const {
      return nn::option_text(r.option->get(*r.model));
    }
  };
  return std::visit(Writer{}, ref);
}

}  // namespace
}  // namespace config_detail

std::string to_yaml(const TrainConfig& cfg) {
  using namespace config_detail;
  TrainConfig copy = cfg;  // Field::ref hands out mutable pointers; we only read through them
  std::ostringstream out;
  out << "# lmlab training config, fully resolved";
  if (!cfg.source.empty()) out << " (from " << cfg.source << ")";
  out << ". Every key: docs/config.md.\n";
  std::string section;
  for (const Field& f : fields()) {
    if (f.section != section) {
      section = f.section;
      out << section << ":\n";
    }
    std::string line = "  " + std::string(f.name) + ": " + yaml_value(f.ref(copy));
    line.resize(std::max<size_t>(line.size() + 1, 36), ' ');
    out << line << "# " << f.doc << "\n";
  }
  return out.str();
}

void validate(const TrainConfig& cfg) {
  config_detail::validate_located(cfg, config_detail::Origins(cfg.source));
}

int64_t effective_decay_iters(const TrainConfig& cfg) {
  return cfg.optim.decay_iters > 0 ? cfg.optim.decay_iters : cfg.train.max_iters;
}

std::string resolved_run_dir(const TrainConfig& cfg) {
  if (!cfg.train.run_dir.empty()) return cfg.train.run_dir;
  if (cfg.source.empty()) return "runs/run";
  return "runs/" + std::filesystem::path(cfg.source).stem().string();
}

std::vector<std::string> config_keys() {
  std::vector<std::string> keys;
  for (const auto& f : config_detail::fields()) keys.push_back(f.key());
  return keys;
}

std::pair<std::string, std::string> first_yaml_difference(const std::string& a,
                                                          const std::string& b) {
  auto strip = [](std::string s) {
    const size_t hash = s.find("  #");
    if (hash != std::string::npos) s = s.substr(0, hash);
    const size_t e = s.find_last_not_of(' ');
    return e == std::string::npos
               ? std::string()
               : s.substr(s.find_first_not_of(' '), e + 1 - s.find_first_not_of(' '));
  };
  std::istringstream sa(a), sb(b);
  std::string la, lb, section;
  while (true) {
    const bool ga = bool(std::getline(sa, la)), gb = bool(std::getline(sb, lb));
    if (!ga && !gb) return {};
    if (!ga) la.clear();
    if (!gb) lb.clear();
    if (!la.empty() && la[0] != ' ' && la.back() == ':')
      section = la.substr(0, la.size() - 1) + ".";
    if (strip(la) != strip(lb)) return {section + strip(la), section + strip(lb)};
  }
}

}  // namespace lmlab::train
