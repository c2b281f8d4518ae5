// Config loading: defaults, every error path (file:line and key in the message, suggestions),
// overrides, n_kv_head 0 -> n_head, the to_yaml round trip, and the shipped configs in configs/.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "tests/temp_dir.h"
#include "tests/test_util.h"
#include "train/config/config.h"
#include "train/config/options_doc.h"
#include "train/config/schema.h"

namespace lmlab::train {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test for the YAML files it writes.
class ConfigTest : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& text) const {
    const std::string path = dir_ / name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  test::TempDir dir_{"cfg"};
};

// The message of the lmlab::Error that fn throws ("" if it throws none).
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string error_loading(const std::string& path, const std::vector<std::string>& sets = {}) {
  return error_of([&] { load_config(path, sets); });
}

std::string shipped(const std::string& name) {
  return std::string(LMLAB_SOURCE_DIR) + "/configs/" + name;
}

// Equal in every key (the source file may differ).
void expect_same(TrainConfig a, TrainConfig b) {
  a.source = b.source = "";
  EXPECT_EQ(to_yaml(a), to_yaml(b));
  EXPECT_EQ(a.data, b.data);
  EXPECT_EQ(a.optim, b.optim);
  EXPECT_EQ(a.train, b.train);
}

TEST_F(ConfigTest, DefaultsMatchTheDocumentedValues) {
  const TrainConfig c;
  EXPECT_EQ(c.model.vocab_size, 0);
  EXPECT_EQ(c.model.n_kv_head, 0);
  EXPECT_EQ(c.model.n_layer, 4);
  EXPECT_EQ(c.model.norm, nn::NormType::LayerNorm);
  EXPECT_EQ(c.data.corpus, "/usr/share/games/fortunes");
  EXPECT_EQ(c.data.tokenizer, "char");
  EXPECT_EQ(c.optim.name, "adamw");
  EXPECT_DOUBLE_EQ(c.optim.lr, 1e-3);
  EXPECT_EQ(c.optim.warmup_iters, 100);
  EXPECT_EQ(c.train.max_iters, 2000);
  EXPECT_EQ(c.train.batch_size, 12);
  EXPECT_EQ(c.train.sample_prompt, "\n");
  EXPECT_NO_THROW(validate(c));
  EXPECT_EQ(effective_decay_iters(c), 2000);
  EXPECT_EQ(resolved_run_dir(c), "runs/run");
}

TEST_F(ConfigTest, EmptyOrCommentOnlyFileGivesDefaults) {
  TrainConfig want;
  want.model.n_kv_head = want.model.n_head;  // load_config resolves 0 to n_head
  for (const std::string text : {"", "# nothing here\n\n", "---\n", "model:\noptim:\n"}) {
    const std::string path = write("empty.yaml", text);
    const TrainConfig c = load_config(path);
    EXPECT_EQ(c.source, path);
    want.source = path;
    expect_same(c, want);
  }
}

TEST_F(ConfigTest, ReadsEveryTypeOfValue) {
  const std::string path = write("all.yaml",
                                 "model:\n  n_layer: 6\n  n_head: 6\n  n_embd: 192\n"
                                 "  norm: rmsnorm\n  norm_placement: deepnorm\n  mlp: swiglu\n"
                                 "  position: rope\n  bias: False\n  dropout: 0.25\n"
                                 "data:\n  tokenizer: byte\n  corpus: 'a b.txt'\n"
                                 "optim:\n  lr: 3e-4\n  min_lr: +3.0e-5\n  name: sgd\n"
                                 "train:\n  sample_prompt: \"ROMEO:\\n\\t\"\n  run_dir: out/x\n");
  const TrainConfig c = load_config(path);
  EXPECT_EQ(c.model.n_layer, 6);
  EXPECT_EQ(c.model.n_kv_head, 6);
  EXPECT_EQ(c.model.norm, nn::NormType::RMSNorm);
  EXPECT_EQ(c.model.norm_placement, nn::NormPlacement::DeepNorm);
  EXPECT_EQ(c.model.mlp, nn::MlpType::SwiGlu);
  EXPECT_EQ(c.model.position, nn::PositionType::Rope);
  EXPECT_FALSE(c.model.bias);
  EXPECT_EQ(c.model.dropout, 0.25);
  EXPECT_EQ(c.data.tokenizer, "byte");
  EXPECT_EQ(c.data.corpus, "a b.txt");
  EXPECT_EQ(c.optim.lr, 3e-4);
  EXPECT_EQ(c.optim.min_lr, 3e-5);
  EXPECT_EQ(c.optim.name, "sgd");
  EXPECT_EQ(c.train.sample_prompt, "ROMEO:\n\t");
  EXPECT_EQ(resolved_run_dir(c), "out/x");
}

TEST_F(ConfigTest, RangeErrorNamesFileLineAndKey) {
  const std::string path =
      write("tiny.yaml", "# c\nmodel:\n  n_layer: 2\n\noptim:\n  name: adamw\n  lr: -1\n");
  EXPECT_EQ(error_loading(path), path + ":7: optim.lr must be > 0, got -1");
  EXPECT_EQ(error_loading(write("d.yaml", "model:\n  dropout: 1\n")),
            (dir_ / "d.yaml") + ":2: model.dropout must be in [0, 1), got 1");
  EXPECT_EQ(error_loading(write("v.yaml", "data:\n  val_fraction: 0\n")),
            (dir_ / "v.yaml") + ":2: data.val_fraction must be in (0, 1), got 0");
  EXPECT_EQ(error_loading(write("g.yaml", "train:\n  grad_accum: 0\n")),
            (dir_ / "g.yaml") + ":2: train.grad_accum must be >= 1, got 0");
}

TEST_F(ConfigTest, StringEnumsListTheAllowedValues) {
  EXPECT_EQ(error_loading(write("a.yaml", "train:\n  device: tpu\n")),
            (dir_ / "a.yaml") + ":2: train.device must be one of cpu, cuda, got 'tpu'");
  EXPECT_TRUE(
      test::ThrowsWith([&] { load_config(write("b.yaml", "data:\n  tokenizer: wordpiece\n")); },
                       {"b.yaml:2: ", "data.tokenizer must be one of char, byte, bpe"}));
  EXPECT_TRUE(test::ThrowsWith([&] { load_config(write("c.yaml", "model:\n  norm: batch\n")); },
                               {"c.yaml:2: ",
                                "model.norm must be one of layernorm, rmsnorm, "
                                "got 'batch'"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] { load_config(write("d.yaml", "model:\n\n  norm_placement: sandwich\n")); },
      {"d.yaml:3: ", "model.norm_placement must be one of pre, post, deepnorm"}));
  EXPECT_TRUE(test::ThrowsWith([&] { load_config(write("e.yaml", "optim:\n  name: adam\n")); },
                               {"e.yaml:2: ", "optim.name must be one of adamw, sgd"}));
}

TEST_F(ConfigTest, UnknownKeySuggestsTheClosest) {
  const std::string path = write("tiny.yaml", "model:\n  n_layer: 2\n  n_heads: 4\n");
  EXPECT_EQ(error_loading(path),
            path + ":3: unknown key 'model.n_heads' (did you mean 'model.n_head'?)");
  // a key put in the wrong section points to the right one
  EXPECT_TRUE(
      test::ThrowsWith([&] { load_config(write("b.yaml", "model:\n  lr: 0.1\n")); },
                       {"b.yaml:2: ", "unknown key 'model.lr' (did you mean 'optim.lr'?)"}));
  const std::string far = error_loading(write("c.yaml", "train:\n  zzzzzzzzzzzzzzzz: 1\n"));
  EXPECT_NE(far.find("c.yaml:2: unknown key 'train.zzzzzzzzzzzzzzzz'"), std::string::npos) << far;
  EXPECT_EQ(far.find("did you mean"), std::string::npos) << far;
}

TEST_F(ConfigTest, UnknownSectionIsAnError) {
  EXPECT_TRUE(test::ThrowsWith([&] { load_config(write("a.yaml", "model:\n\nmodle:\n  x: 1\n")); },
                               {"a.yaml:3: ", "unknown section 'modle' (did you mean 'model'?)",
                                "model, data, optim, train"}));
  EXPECT_TRUE(test::ThrowsWith([&] { load_config(write("b.yaml", "lr: 0.1\n")); },
                               {"b.yaml:1: ", "unknown section 'lr' (did you mean 'optim.lr'?)"}));
}

TEST_F(ConfigTest, WrongTypeNamesTheValue) {
  const std::string path = write("tiny.yaml", "model:\n  n_head: 4\n\n\n  n_layer: four\n");
  EXPECT_EQ(error_loading(path), path + ":5: model.n_layer must be an integer, got 'four'");
  EXPECT_TRUE(test::ThrowsWith([&] { load_config(write("b.yaml", "model:\n  n_layer: 2.5\n")); },
                               {"b.yaml:2: ", "model.n_layer must be an integer, got '2.5'"}));
  EXPECT_TRUE(test::ThrowsWith([&] { load_config(write("c.yaml", "optim:\n  lr: 1e-3x\n")); },
                               {"c.yaml:2: ", "optim.lr must be a number, got '1e-3x'"}));
  EXPECT_TRUE(test::ThrowsWith([&] { load_config(write("d.yaml", "optim:\n  lr: .nan\n")); },
                               {"d.yaml:2: ", "optim.lr must be a number"}));
  EXPECT_TRUE(test::ThrowsWith([&] { load_config(write("e.yaml", "model:\n  bias: yes\n")); },
                               {"e.yaml:2: ", "model.bias must be true or false, got 'yes'"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] { load_config(write("f.yaml", "train:\n  seed: 99999999999999999999\n")); },
      {"f.yaml:2: ", "train.seed must be an integer"}));
}

TEST_F(ConfigTest, MapListOrNothingWhereAScalarBelongs) {
  EXPECT_TRUE(
      test::ThrowsWith([&] { load_config(write("a.yaml", "model:\n  n_layer:\n    deep: 3\n")); },
                       {"a.yaml:2: ", "model.n_layer must be an integer, got a map"}));
  EXPECT_TRUE(test::ThrowsWith([&] { load_config(write("b.yaml", "optim:\n  lr: [1, 2]\n")); },
                               {"b.yaml:2: ", "optim.lr must be a number, got a list"}));
  EXPECT_TRUE(test::ThrowsWith([&] { load_config(write("c.yaml", "optim:\n  lr:\n")); },
                               {"c.yaml:2: ", "optim.lr must be a number, got no value"}));
  EXPECT_TRUE(test::ThrowsWith([&] { load_config(write("d.yaml", "model: 3\n")); },
                               {"d.yaml:1: ", "section 'model' must be a map of keys, got '3'"}));
  EXPECT_TRUE(test::ThrowsWith([&] { load_config(write("e.yaml", "- model\n- data\n")); },
                               {"e.yaml:1: ", "a config must be a map of sections", "a list"}));
}

TEST_F(ConfigTest, DuplicatesAreErrors) {
  EXPECT_TRUE(test::ThrowsWith(
      [&] { load_config(write("a.yaml", "model:\n  n_layer: 2\n  n_layer: 3\n")); },
      {"a.yaml:3: ", "duplicate key 'model.n_layer' (first set at ", "a.yaml:2)"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] { load_config(write("b.yaml", "model:\n  n_layer: 2\nmodel:\n  n_head: 2\n")); },
      {"b.yaml:3: ", "duplicate section 'model'"}));
}

TEST_F(ConfigTest, InvalidYamlSyntaxGivesTheLine) {
  const std::string path = write("bad.yaml", "model:\n  n_layer: 2\n  n_head: [4\n");
  const std::string msg = error_loading(path);
  EXPECT_EQ(msg.rfind(path + ":", 0), 0u) << msg;
  EXPECT_NE(msg.find("invalid YAML"), std::string::npos) << msg;
  EXPECT_TRUE(test::ThrowsWith([&] { load_config(write("tab.yaml", "model:\n\tn_layer: 2\n")); },
                               {"tab.yaml:2: ", "invalid YAML"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] { load_config(write("two.yaml", "model:\n  n_layer: 2\n---\nmodel:\n  n_layer: 3\n")); },
      {"two.yaml: holds 2 YAML documents"}));
  // yaml-cpp's LoadAll never returned on these (found by fuzz_config): now a clear error.
  EXPECT_TRUE(test::ThrowsWith([&] { load_config(write("comma.yaml", ",a")); },
                               {"comma.yaml", "invalid YAML"}));
  EXPECT_TRUE(
      test::ThrowsWith([&] { load_config(write("comma2.yaml", ",rain:\n  sa_prompt: \x01")); },
                       {"comma2.yaml", "invalid YAML"}));
  // Comments and document markers alone still mean "all defaults".
  EXPECT_EQ(load_config(write("empty.yaml", "# nothing\n---\n")).optim,
            load_config(write("e2.yaml", "")).optim);
}

TEST_F(ConfigTest, MissingFileOrDirectory) {
  const std::string path = dir_ / "nope.yaml";
  EXPECT_EQ(error_loading(path), path + ": cannot read the config: no such file");
  EXPECT_EQ(error_loading(dir_.str()), dir_.str() + ": cannot read the config: it is a directory");
}

TEST_F(ConfigTest, CrossFieldRulesBlameTheLastKeySet) {
  const std::string a = write("a.yaml", "optim:\n  min_lr: 0.01\n  lr: 0.001\n");
  EXPECT_EQ(error_loading(a), a + ":3: optim.min_lr 0.01 must be <= optim.lr 0.001");
  const std::string b = write("b.yaml", "optim:\n  decay_iters: 50\n  warmup_iters: 60\n");
  EXPECT_EQ(error_loading(b), b + ":3: optim.warmup_iters 60 must be <= optim.decay_iters 50");
  // decay_iters 0 means max_iters, so a warmup longer than the run is refused for cosine only
  EXPECT_TRUE(test::ThrowsWith(
      [&] { load_config(write("c.yaml", "train:\n  max_iters: 10\n")); },
      {"c.yaml:2: ", "optim.warmup_iters 100 must be <= the decay length", "train.max_iters 10"}));
  EXPECT_NO_THROW(
      load_config(write("d.yaml", "train:\n  max_iters: 10\noptim:\n  schedule: constant\n")));
  EXPECT_TRUE(test::ThrowsWith(
      [&] { load_config(write("e.yaml", "model:\n  n_embd: 100\n  n_head: 3\n")); },
      {"e.yaml:3: ", "model.n_embd 100 is not divisible by model.n_head 3"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] { load_config(write("f.yaml", "model:\n  n_head: 4\n  n_kv_head: 3\n")); },
      {"f.yaml:3: ", "model.n_head 4 is not divisible by model.n_kv_head 3"}));
  EXPECT_TRUE(test::ThrowsWith(
      [&] {
        load_config(write("g.yaml", "model:\n  n_embd: 12\n  n_head: 4\n  position: rope\n"));
      },
      {"g.yaml:4: ", "rope needs an even head size, got n_embd / n_head = 3"}));
}

TEST_F(ConfigTest, NKvHeadZeroMeansNHead) {
  const std::string path = write("kv.yaml", "model:\n  n_head: 8\n  n_embd: 64\n  n_kv_head: 0\n");
  EXPECT_EQ(load_config(path).model.n_kv_head, 8);
  EXPECT_EQ(load_config(path, {"model.n_head=2"}).model.n_kv_head, 2);
  EXPECT_EQ(load_config(path, {"model.n_kv_head=2"}).model.n_kv_head, 2);
  EXPECT_EQ(load_config(write("omit.yaml", "model:\n  n_head: 2\n")).model.n_kv_head, 2);
}

TEST_F(ConfigTest, OverridesApplyInOrderAfterTheFile) {
  const std::string path = write("o.yaml", "optim:\n  lr: 0.01\n  min_lr: 0.001\n");
  const TrainConfig c = load_config(
      path, {"optim.lr=0.02", "model.norm=rmsnorm", "optim.lr = 0.03", "model.bias=false",
             "train.run_dir=", "train.sample_prompt=\"ROMEO:\\n\"", "data.corpus=a=b.txt"});
  EXPECT_EQ(c.optim.lr, 0.03);
  EXPECT_EQ(c.optim.min_lr, 0.001);
  EXPECT_EQ(c.model.norm, nn::NormType::RMSNorm);
  EXPECT_FALSE(c.model.bias);
  EXPECT_EQ(c.train.run_dir, "");
  EXPECT_EQ(resolved_run_dir(c), "runs/o");
  EXPECT_EQ(c.train.sample_prompt, "ROMEO:\n");
  EXPECT_EQ(c.data.corpus, "a=b.txt");
  // validation runs after all overrides: an intermediate invalid state is fine
  EXPECT_NO_THROW(load_config(path, {"model.n_head=3", "model.n_embd=96"}));
}

TEST_F(ConfigTest, OverrideErrors) {
  const std::string path = write("o.yaml", "optim:\n  lr: 0.01\n");
  EXPECT_EQ(error_loading(path, {"optim.lr=-1"}),
            "--set optim.lr=-1: optim.lr must be > 0, got -1");
  EXPECT_EQ(error_loading(path, {"model.n_layer=four"}),
            "--set model.n_layer=four: model.n_layer must be an integer, got 'four'");
  EXPECT_EQ(error_loading(path, {"model.n_heads=4"}),
            "--set model.n_heads=4: unknown key 'model.n_heads' (did you mean 'model.n_head'?)");
  EXPECT_TRUE(test::ThrowsWith([&] { load_config(path, {"nokey"}); },
                               {"--set nokey: ", "section.key=value", "no '='"}));
  EXPECT_TRUE(test::ThrowsWith([&] { load_config(path, {"lr=0.1"}); },
                               {"--set lr=0.1: unknown key 'lr'", "did you mean 'optim.lr'?"}));
  EXPECT_TRUE(test::ThrowsWith([&] { load_config(path, {"optm.lr=0.1"}); },
                               {"--set optm.lr=0.1: unknown section 'optm'", "'optim'"}));
  EXPECT_TRUE(test::ThrowsWith([&] { load_config(path, {"train.sample_prompt=\"abc"}); },
                               {"--set train.sample_prompt=\"abc: ", "must end with its quote"}));
  EXPECT_TRUE(test::ThrowsWith([&] { load_config(path, {"train.sample_prompt=\"a\" \"b\""}); },
                               {"--set train.sample_prompt=", "not a valid YAML scalar"}));
  EXPECT_EQ(error_loading(path, {"optim.decay=3"}),
            "--set optim.decay=3: unknown key 'optim.decay' (did you mean 'optim.decay_iters'?)");
  // a rule between keys blames the override when it was set last
  EXPECT_EQ(error_loading(path, {"optim.min_lr=0.5"}),
            "--set optim.min_lr=0.5: optim.min_lr 0.5 must be <= optim.lr 0.01");
}

TEST_F(ConfigTest, ValidateWithoutSourceOrLine) {
  TrainConfig c;
  c.optim.lr = -1;
  EXPECT_EQ(error_of([&] { validate(c); }), "[config] optim.lr must be > 0, got -1");
  c.source = "x.yaml";
  EXPECT_EQ(error_of([&] { validate(c); }), "x.yaml: optim.lr must be > 0, got -1");
  c = TrainConfig{};
  c.model.init_std = 0;
  EXPECT_EQ(error_of([&] { validate(c); }), "[config] model.init_std must be > 0, got 0");
  c = TrainConfig{};
  c.train.sample_prompt = "";
  EXPECT_TRUE(test::ThrowsWith([&] { validate(c); }, {"train.sample_prompt must not be empty"}));
  c.train.sample_tokens = 0;
  EXPECT_NO_THROW(validate(c));
}

// train.precision: fp32, tf32 or bf16; tf32 is a CUDA format, so a CPU run with it is refused;
// bf16 runs on both (the CPU emulates it).
TEST_F(ConfigTest, PrecisionIsFp32Tf32OnCudaOrBf16) {
  TrainConfig c;
  EXPECT_EQ(c.train.precision, "fp32");
  c.train.precision = "fp16";
  EXPECT_TRUE(test::ThrowsWith([&] { validate(c); },
                               {"train.precision must be one of fp32, tf32, bf16, got 'fp16'"}));
  c.train.precision = "bf16";
  EXPECT_NO_THROW(validate(c));
  c.train.precision = "tf32";
  EXPECT_TRUE(
      test::ThrowsWith([&] { validate(c); }, {"train.precision tf32 needs train.device cuda"}));
  c.train.device = "cuda";
  EXPECT_NO_THROW(validate(c));
  const std::string path = write("p.yaml", "train:\n  device: cuda\n  precision: tf32\n");
  EXPECT_EQ(load_config(path).train.precision, "tf32");
  EXPECT_EQ(error_loading(path, {"train.device=cpu"}),
            "--set train.device=cpu: train.precision tf32 needs train.device cuda (TF32 is a "
            "tensor-core format; the CPU computes in fp32)");
}

TEST_F(ConfigTest, ToYamlRoundTripsExactly) {
  const std::string path = write(
      "odd.yaml",
      "model:\n  vocab_size: 77\n  n_head: 2\n  n_kv_head: 1\n  n_embd: 48\n  norm_eps: 1e-6\n"
      "  init_std: 0.1\n  rope_base: 500000\n  tie_embeddings: false\n  mlp_hidden: 100\n"
      "data:\n  corpus: \"we\\\"ird\\\\ path: #x\\x01 \\u00e9 \"\n  val_fraction: "
      "0.3333333333333333\n"
      "optim:\n  lr: 0.1\n  min_lr: 1e-300\n  eps: 1.5e-8\n  beta2: 0.999\n  grad_clip: 0\n"
      "train:\n  seed: 9223372036854775807\n  run_dir: '  spaced  '\n  sample_prompt: "
      "\"\\t'x'\"\n");
  const TrainConfig a = load_config(path);
  EXPECT_EQ(a.data.corpus, "we\"ird\\ path: #x\x01 \xc3\xa9 ");
  EXPECT_EQ(a.train.seed, 9223372036854775807);
  const std::string yaml = to_yaml(a);
  const TrainConfig b = load_config(write("back.yaml", yaml));
  expect_same(a, b);
  EXPECT_EQ(b.data.val_fraction, 1.0 / 3.0);
  EXPECT_EQ(b.optim.min_lr, 1e-300);
  EXPECT_EQ(b.train.run_dir, "  spaced  ");
  EXPECT_EQ(b.model.n_kv_head, 1);
  EXPECT_EQ(b.model.vocab_size, 77);
  EXPECT_NE(yaml.find("odd.yaml"), std::string::npos);  // the source, as a comment
  for (const char* line :
       {"  rope_base: 500000 ", "  min_lr: 1e-300 ", "  eps: 1.5e-8 ", "  grad_clip: 0 ",
        "  norm_eps: 1e-6 ", "  tokenizer: char ", "  run_dir: \"  spaced  \" "})
    EXPECT_NE(yaml.find(line), std::string::npos) << line;
}

TEST_F(ConfigTest, ToYamlWritesEveryKey) {
  const std::string yaml = to_yaml(TrainConfig{});
  std::set<std::string> sections;
  for (const std::string& key : config_keys()) {
    const std::string section = key.substr(0, key.find('.'));
    if (sections.insert(section).second) {
      EXPECT_NE(yaml.find("\n" + section + ":\n"), std::string::npos) << section;
    }
    EXPECT_NE(yaml.find("\n  " + key.substr(key.find('.') + 1) + ": "), std::string::npos) << key;
  }
  for (const nn::ModelOption& o : nn::model_options())
    EXPECT_NE(std::find(config_keys().begin(), config_keys().end(), "model." + o.name),
              config_keys().end())
        << "model." << o.name << " is in the option table but not a config key";
  EXPECT_EQ(sections.size(), config_detail::sections().size());
}

TEST_F(ConfigTest, ShippedConfigsLoadAndValidate) {
  int n = 0;
  for (const auto& entry : fs::directory_iterator(std::string(LMLAB_SOURCE_DIR) + "/configs")) {
    if (entry.path().extension() != ".yaml") continue;
    SCOPED_TRACE(entry.path().string());
    const TrainConfig c = load_config(entry.path().string());
    EXPECT_NO_THROW(validate(c));
    expect_same(c, load_config(write("copy.yaml", to_yaml(c))));
    ++n;
  }
  EXPECT_GE(n, 3);
}

// A config file may leave out any model key: it then holds the option table's default (the
// shipped configs set only what they change).
TEST_F(ConfigTest, OmittedModelKeysTakeTheTableDefault) {
  const TrainConfig c = load_config(write("empty.yaml", "model:\n  n_layer: 3\n"));
  EXPECT_EQ(c.model.n_layer, 3);
  for (const nn::ModelOption& o : nn::model_options()) {
    if (o.name == "n_layer" || o.name == "n_kv_head") continue;  // set; resolved to n_head
    EXPECT_EQ(o.get(c.model), o.default_value) << "model." << o.name;
  }
  EXPECT_EQ(c.model.n_kv_head, c.model.n_head);
  EXPECT_FALSE(c.model.option<bool>("qk_norm"));
}

TEST_F(ConfigTest, NanoGptCpuMatchesNanoGpt) {
  const TrainConfig c = load_config(shipped("nanogpt_cpu.yaml"));
  EXPECT_EQ(c.model.n_layer, 4);
  EXPECT_EQ(c.model.n_head, 4);
  EXPECT_EQ(c.model.n_kv_head, 4);
  EXPECT_EQ(c.model.n_embd, 128);
  EXPECT_EQ(c.model.block_size, 64);
  EXPECT_EQ(c.model.dropout, 0.0);
  EXPECT_FALSE(c.model.bias);
  EXPECT_EQ(c.model.norm_placement, nn::NormPlacement::Pre);
  EXPECT_EQ(c.train.batch_size, 12);
  EXPECT_EQ(c.train.max_iters, 2000);
  EXPECT_EQ(c.optim.lr, 1e-3);
  EXPECT_EQ(c.optim.min_lr, 1e-4);
  EXPECT_EQ(c.optim.decay_iters, 2000);
  EXPECT_EQ(c.optim.warmup_iters, 100);
  EXPECT_EQ(c.optim.beta2, 0.99);
  EXPECT_EQ(c.optim.weight_decay, 0.1);
  EXPECT_EQ(c.optim.grad_clip, 1.0);
  EXPECT_EQ(resolved_run_dir(c), "runs/nanogpt_cpu");
  const TrainConfig t = load_config(shipped("tiny.yaml"));
  EXPECT_EQ(t.model.n_layer, 2);
  EXPECT_EQ(t.model.n_embd, 32);
  EXPECT_EQ(t.model.block_size, 16);
  EXPECT_EQ(t.train.max_iters, 20);
  EXPECT_EQ(t.train.eval_interval, 10);
  EXPECT_EQ(t.train.batch_size, 4);
}

std::string docs_config_md() {
  std::ifstream in(std::string(LMLAB_SOURCE_DIR) + "/docs/config.md");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST_F(ConfigTest, DocsDescribeEveryKey) {
  const std::string text = docs_config_md();
  ASSERT_FALSE(text.empty()) << "docs/config.md is missing";
  for (const std::string& key : config_keys())
    EXPECT_NE(text.find("`" + key + "`"), std::string::npos) << "docs/config.md lacks " << key;
}

// docs/config.md's model table is `lmlab options --markdown`, between its two markers.
TEST_F(ConfigTest, DocsModelTableIsTheOptionTable) {
  const std::string text = docs_config_md();
  const std::string begin = "<!-- model-options:begin", end = "<!-- model-options:end -->";
  const size_t b = text.find(begin), e = text.find(end);
  ASSERT_NE(b, std::string::npos) << "docs/config.md lacks the marker " << begin;
  ASSERT_NE(e, std::string::npos) << "docs/config.md lacks the marker " << end;
  const size_t first = text.find('\n', b) + 1;
  EXPECT_EQ(text.substr(first, e - first), model_options_markdown())
      << "docs/config.md's model table is stale: replace the rows between its markers with the "
         "output of `build/lmlab options --markdown`";
}

}  // namespace
}  // namespace lmlab::train
