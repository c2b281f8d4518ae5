#include "train/io/checkpoint.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "data/tokenizer.h"

namespace lmlab::train {

static std::string pair_str(uint64_t a, uint64_t b) {
  return std::to_string(a) + "," + std::to_string(b);
}

static std::string double_str(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

void save_checkpoint(const std::string& path, const nn::TransformerLM& model,
                     const optim::Optimizer* opt, const TrainConfig& cfg,
                     const std::string& tokenizer, const CheckpointState& s) {
  SafeTensors st;
  for (auto& [name, t] : model.named_parameters()) {
    NoGradGuard guard;
    // Never write a non-finite weight: a diverged run must not poison its last good checkpoint.
    // x * 0 is NaN exactly when x is not finite, and a sum of zeros cannot overflow (a sum of
    // squares does, for large but finite weights).
    if (!std::isfinite(sum(mul(t, 0.0)).item()))
      throw Error("[checkpoint] parameter '" + name + "' holds NaN or Inf; not writing " + path);
    st.tensors[name] = t;
  }
  if (opt)
    for (auto& [name, t] : opt->state()) st.tensors[name] = t;
  st.metadata["format"] = "lmlab-checkpoint";
  st.metadata["format_version"] = std::to_string(kCheckpointVersion);
  st.metadata["config"] = to_yaml(cfg);
  st.metadata["tokenizer"] = tokenizer;
  st.metadata["step"] = std::to_string(s.step);
  st.metadata["tokens_seen"] = std::to_string(s.tokens_seen);
  st.metadata["best_val_loss"] = double_str(s.best_val_loss);
  st.metadata["clipped_steps"] = std::to_string(s.clipped_steps);
  st.metadata["data_rng"] = pair_str(s.data_seed, s.data_offset);
  st.metadata["dropout_rng"] = pair_str(s.dropout_seed, s.dropout_offset);
  st.metadata["ranks"] = std::to_string(s.ranks);
  st.metadata["optimizer"] = opt ? opt->name() : "none";
  save_safetensors(path, st);
}

namespace {

const std::string& meta(const SafeTensors& f, const std::string& key) {
  auto it = f.metadata.find(key);
  if (it == f.metadata.end())
    throw Error("[checkpoint] " + f.path + " has no '" + key +
                "' metadata (see docs/checkpoint.md for the keys a checkpoint needs)");
  return it->second;
}

int64_t meta_int(const SafeTensors& f, const std::string& key, const std::string& fallback) {
  const std::string v = f.metadata.count(key) ? f.metadata.at(key) : fallback;
  try {
    size_t used = 0;
    const long long n = std::stoll(v, &used);
    if (used != v.size() || n < 0) throw std::invalid_argument(v);
    return n;
  } catch (const std::exception&) {
    throw Error("[checkpoint] " + f.path + ": metadata '" + key + "' is not a count: '" + v + "'");
  }
}

// An optional real (absent: 0); the whole text must be the number ("nan" and "inf" included:
// they are what a stream writes for them).
double meta_real(const SafeTensors& f, const std::string& key) {
  if (!f.metadata.count(key)) return 0;
  const std::string& v = f.metadata.at(key);
  char* end = nullptr;
  const double x = v.empty() ? 0 : std::strtod(v.c_str(), &end);
  if (v.empty() || end != v.c_str() + v.size())
    throw Error("[checkpoint] " + f.path + ": metadata '" + key + "' is not a number: '" + v + "'");
  return x;
}

void meta_pair(const SafeTensors& f, const std::string& key, uint64_t& a, uint64_t& b) {
  if (!f.metadata.count(key)) return;  // weights-only files need no generator state
  const std::string& v = f.metadata.at(key);
  const size_t comma = v.find(',');
  // Two whole unsigned decimals: no sign, no spaces, nothing after them (std::stoull takes "-1").
  auto whole = [](const char* begin, const char* end, uint64_t& out) {
    const auto r = std::from_chars(begin, end, out);
    return begin != end && r.ec == std::errc() && r.ptr == end;
  };
  if (comma == std::string::npos || !whole(v.data(), v.data() + comma, a) ||
      !whole(v.data() + comma + 1, v.data() + v.size(), b))
    throw Error("[checkpoint] " + f.path + ": metadata '" + key + "' is not 'seed,offset': '" + v +
                "'");
}

}  // namespace

Checkpoint load_checkpoint(const std::string& path) {
  Checkpoint c;
  c.file = load_safetensors(path);
  const SafeTensors& f = c.file;
  if (f.metadata.count("format") && f.metadata.at("format") != "lmlab-checkpoint")
    throw Error("[checkpoint] " + path + " is a '" + f.metadata.at("format") +
                "' file, not an lmlab checkpoint");
  const int64_t version = meta_int(f, "format_version", "1");
  if (version > kCheckpointVersion)
    throw Error("[checkpoint] " + path + " has format version " + std::to_string(version) +
                ", newer than this lmlab's " + std::to_string(kCheckpointVersion) +
                "; update lmlab to read it");
  try {
    c.config = load_config_text(meta(f, "config"), path + " (config metadata)");
  } catch (const Error& e) {
    throw Error("[checkpoint] " + path + ": its config metadata is invalid: " + e.what());
  }
  c.config.source = path;
  c.tokenizer = meta(f, "tokenizer");
  try {
    const data::Tokenizer tok = data::Tokenizer::from_serialized(c.tokenizer);
    if (c.config.model.vocab_size != 0 && c.config.model.vocab_size != tok.vocab_size())
      throw Error("its config has model.vocab_size " + std::to_string(c.config.model.vocab_size) +
                  " but its " + tok.kind() + " tokenizer has " + std::to_string(tok.vocab_size()) +
                  " symbols");
  } catch (const Error& e) {
    throw Error("[checkpoint] " + path + ": its tokenizer metadata is invalid: " + e.what());
  }
  c.state.step = meta_int(f, "step", "0");
  c.state.tokens_seen = meta_int(f, "tokens_seen", "0");
  c.state.clipped_steps = meta_int(f, "clipped_steps", "0");
  c.state.ranks = meta_int(f, "ranks", "1");
  if (c.state.ranks < 1)
    throw Error("[checkpoint] " + path + ": metadata 'ranks' must be >= 1, got " +
                std::to_string(c.state.ranks));
  c.state.best_val_loss = meta_real(f, "best_val_loss");
  meta_pair(f, "data_rng", c.state.data_seed, c.state.data_offset);
  meta_pair(f, "dropout_rng", c.state.dropout_seed, c.state.dropout_offset);
  c.has_optimizer = f.metadata.count("optimizer") && f.metadata.at("optimizer") != "none";
  return c;
}

void load_weights(const Checkpoint& ckpt, nn::TransformerLM& model) {
  nn::StateDict weights;
  for (auto& [name, t] : model.named_parameters()) {
    if (!ckpt.file.contains(name))
      throw Error("[checkpoint] " + ckpt.file.path + " has no parameter '" + name + "' of shape " +
                  to_string(t.shape()) + " that the model needs");
    weights[name] = ckpt.file.tensors.at(name);
  }
  try {
    model.load_state_dict(weights, /*strict=*/true);
  } catch (const Error& e) {
    throw Error("[checkpoint] " + ckpt.file.path + ": " + e.what());
  }
}

void load_optimizer(const Checkpoint& ckpt, optim::Optimizer& opt) {
  if (!ckpt.has_optimizer)
    throw Error("[checkpoint] " + ckpt.file.path + " holds weights only (no optimizer state)");
  std::map<std::string, Tensor> state;
  const std::string prefix = opt.name() + ".";
  for (auto& [name, t] : ckpt.file.tensors)
    if (name.rfind(prefix, 0) == 0) state[name] = t;
  try {
    opt.load_state(state);
  } catch (const Error& e) {
    throw Error("[checkpoint] " + ckpt.file.path + ": " + e.what());
  }
}

}  // namespace lmlab::train
