// Setting up a Run (run/run.h): the device and run directory, the data, the model and optimizer,
// a resume or an init, the logs.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <thread>

#include "autograd/kernels/cuda_runtime.h"
#include "autograd/threads.h"
#include "train/io/run_files.h"
#include "train/run/data_setup.h"
#include "train/run/resume.h"
#include "train/run/run.h"

namespace lmlab::train {

namespace fs = std::filesystem;

namespace {

// What the ranks compare to know they train on the same data: the tokens in memory; for mapped
// files, their paths and sizes (hashing a corpus larger than memory at every start would cost
// its whole read).
uint64_t data_fingerprint(const data::TokenDataset& d) {
  if (!d.mapped()) return dist::fnv1a(d.tokens().data(), d.tokens().size() * sizeof(int32_t));
  std::string s = d.train_file()->path() + "\n" + d.val_file()->path() + "\n" +
                  std::to_string(d.train_size()) + "\n" + std::to_string(d.val_size());
  return dist::fnv1a(s.data(), s.size());
}

}  // namespace

// The device, threads and ranks; the run directory; the checkpoints to resume or start from.
void Run::open() {
  dev_ = rc_.device == "cuda" ? Device::CUDA : Device::CPU;
  // Data-parallel ranks (docs/distributed.md): rank 0 alone writes; ranks on one machine share
  // its cores (train.threads 0) and take one GPU each.
  world_ = dist::size(), rank_ = dist::rank();
  writer_ = rank_ == 0;
  if (dev_ == Device::CUDA && dist::active() && cuda::device_count() > 0)
    cuda::set_device(dist::local_rank() % cuda::device_count());
  if (dev_ == Device::CUDA && !cuda::available())
    throw Error("[train] train.device is cuda, but " + cuda::unavailable_reason() +
                " (set train.device=cpu)");
  // bf16 (autograd/autocast.h): matmuls and attention in bf16 for every forward of the run (steps,
  // evaluations, samples; the fused LM head's GEMMs too), any GEMM left in fp32 on TF32, attention
  // on the flash kernels, which take bf16. Backward runs with autocast off by itself.
  if (dev_ == Device::CUDA) cuda::set_tf32(rc_.precision != "fp32");
  if (dev_ == Device::CUDA && rc_.precision == "bf16") cuda::set_flash_attention(true);
  if (rc_.precision == "bf16") autocast_ = std::make_unique<AutocastGuard>(DType::BF16);
  set_num_threads(int(rc_.threads));
  if (rc_.threads == 0 && dist::local_size() > 1)
    set_num_threads(std::max(
        1, std::min(num_threads(), int(std::thread::hardware_concurrency()) / dist::local_size())));
  result_.run_dir = dir_ = resolved_run_dir(cfg_);
  ckpt_path_ = dir_ + "/ckpt.safetensors";
  if (writer_) prepare_run_dir(dir_);
  // Resume: the checkpoint's tokenizer and state win; its config must describe the same model.
  if (opt_.resume && fs::exists(ckpt_path_))
    resume_ = std::make_unique<Checkpoint>(load_checkpoint(ckpt_path_));
  if (!opt_.init_from.empty())
    init_ = std::make_unique<Checkpoint>(load_checkpoint(opt_.init_from));
}

// The corpus or token files, their tokenizer (a checkpoint's wins), the train/val split and the
// sample prompt.
void Run::load_data() {
  const std::string& given = resume_ ? resume_->tokenizer : init_ ? init_->tokenizer : "";
  RunData d = load_run_data(cfg_.data, cfg_.model.block_size, given);
  tok_.emplace(std::move(d.tokenizer));
  data_.emplace(std::move(d.dataset));
  val_bytes_per_token_ = d.val_bytes_per_token;
  cfg_.model.vocab_size = tok_->vocab_size();
  validate(cfg_);
  if (rc_.sample_tokens <= 0) return;
  try {
    sample_prompt_ = tok_->encode(rc_.sample_prompt.empty() ? "\n" : rc_.sample_prompt);
  } catch (const Error& e) {
    throw Error("[train] train.sample_prompt cannot be encoded: " + std::string(e.what()) +
                " (set another train.sample_prompt, or train.sample_tokens=0)");
  }
}

// The model on its device, then the optimizer (its state is made where the parameters live) and
// the learning-rate schedule.
void Run::build() {
  Generator init_gen(uint64_t(rc_.seed));
  model_ = std::make_unique<nn::TransformerLM>(cfg_.model, init_gen);
  model_->to(dev_);
  optimizer_ = make_optimizer(cfg_, *model_);
  sched_.kind = optim::schedule_kind_from_string(cfg_.optim.schedule);
  sched_.lr = cfg_.optim.lr;
  sched_.min_lr = cfg_.optim.min_lr;
  sched_.warmup_iters = cfg_.optim.warmup_iters;
  sched_.decay_iters = effective_decay_iters(cfg_);
  sched_.validate();
}

// A resume's weights, optimizer state, step and random streams (after the resume check), or an
// init's weights; then each rank's share of the random streams and the ranks' agreement.
void Run::restore() {
  data_gen_ = Generator(uint64_t(rc_.seed) + 1);
  nn::TransformerLM& model = *model_;
  if (resume_) {
    check_resume(resume_->config, resume_->state.ranks, cfg_, world_, ckpt_path_, dir_);
    load_weights(*resume_, model);
    load_optimizer(*resume_, *optimizer_);
    state_ = resume_->state;
    data_gen_.set_state(state_.data_seed, state_.data_offset);
    model.dropout_generator().set_state(state_.dropout_seed, state_.dropout_offset);
  } else if (init_) {
    // Parameters the checkpoint lacks keep their init with --init-missing; say which, and which
    // of the checkpoint's the model does not use.
    const InitFromLoad load = load_init_weights(*init_, model, opt_.init_missing);
    if (writer_) std::cerr << init_from_notes(load, opt_.init_from);
  }
  // Each rank draws its rows of every global batch, and its rows' dropout masks: together exactly
  // the draws of one process with batch_size * world (Generator::set_partition).
  data_gen_.set_partition(uint64_t(rank_), uint64_t(world_));
  model.dropout_generator().set_partition(uint64_t(rank_), uint64_t(world_));
  if (dist::active()) {
    TrainConfig c = cfg_;
    c.train.threads = 0;  // may differ between ranks: results do not depend on it
    c.source.clear();     // where the config file was read from is only provenance
    dist::check_same_start(dir_, to_yaml(c), state_.step, dist::tensors_hash(model.parameters()),
                           data_fingerprint(*data_));
  }
  reducer_ = std::make_unique<dist::GradReducer>(model.parameters(), size_t(rc_.bucket_mb) << 20);
}

// config.yaml, and the CSV logs rewound to the resumed step (rank 0 only).
void Run::open_logs() {
  if (!writer_) return;
  data::write_file_atomic(dir_ + "/config.yaml", to_yaml(cfg_));
  std::error_code ec;
  fs::remove(dir_ + "/diverged.json", ec);
  fs::remove(dir_ + "/result.json", ec);
  elapsed0_ = rewind_csv(dir_ + "/metrics.csv", state_.step, kMetricsHeader);
  metrics_.open(dir_ + "/metrics.csv", std::ios::app);
  rewind_csv(dir_ + "/diagnostics.csv", state_.step, kDiagnosticsHeader);
  diagnostics_.open(dir_ + "/diagnostics.csv", std::ios::app);
}

void Run::announce() const {
  if (quiet_) return;
  std::cout << "train: " << dir_ << ": " << model_->num_parameters() << " parameters, "
            << tok_->kind() << " tokenizer (" << tok_->vocab_size() << " symbols), "
            << data_->train_size() << " train / " << data_->val_size() << " val tokens, "
            << (resume_ ? "resuming at step " + std::to_string(state_.step) : "from scratch")
            << ", " << num_threads() << " threads, BLAS " << blas_core_name()
            << (dist::active() ? ", " + std::to_string(world_) + " data-parallel ranks" : "")
            << (rc_.precision == "fp32" ? "" : ", precision " + rc_.precision) << "\n";
  if (rc_.precision == "bf16" && dev_ == Device::CPU)
    std::cout << "train: bf16 on the CPU emulates the GPU's bf16 numerics (bf16 roundings around "
                 "float32 kernels): slower than fp32, for seeing what bf16 does to a run "
                 "(docs/mixed_precision.md)\n";
}

}  // namespace lmlab::train
