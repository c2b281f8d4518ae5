// The Run behind train() (run/trainer.h), internal to run/: its phases are its methods, set up in
// run_setup.cpp (open, load_data, build, restore, open_logs) and stepped in trainer.cpp (step and
// its parts, finish).
#pragma once
#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "autograd/autocast.h"
#include "autograd/random.h"
#include "data/dataset.h"
#include "data/tokenizer.h"
#include "nn/transformer.h"
#include "optim/clip.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"
#include "train/dist/distributed.h"
#include "train/io/checkpoint.h"
#include "train/run/diagnostics.h"
#include "train/run/step_log.h"
#include "train/run/trainer.h"

namespace lmlab::train {

using Clock = std::chrono::steady_clock;

// One training run, in the phases a reader can name: open the run, load the data, build the model,
// restore a resume (or an init), open the logs; then steps (accumulate gradients, clip, update,
// evaluate, log, checkpoint) until the end, a divergence or a signal; then finish.
class Run {
 public:
  Run(const TrainConfig& cfg, const TrainOptions& opt) : cfg_(cfg), rc_(cfg_.train), opt_(opt) {}
  TrainResult run();

 private:
  void open();
  void load_data();
  void build();
  void restore();
  void open_logs();
  void announce() const;
  bool step(int64_t it);
  double accumulate_gradients(bool* stop_requested);
  bool evaluate_now(int64_t it);
  double estimate_val();
  void log_step(int64_t it, double lr, double train_loss, bool eval, optim::ClipResult clip);
  bool checkpoint_or_stop(int64_t it, bool stop_requested, bool last);
  void checkpoint();
  void diverge(int64_t step, const std::string& what);
  void write_result() const;
  TrainResult finish();

  TrainConfig cfg_;
  const RunConfig& rc_;
  const TrainOptions opt_;
  Device dev_ = Device::CPU;
  int world_ = 1, rank_ = 0;
  bool writer_ = true, quiet_ = false, tty_ = false;
  std::string dir_, ckpt_path_;
  std::unique_ptr<AutocastGuard> autocast_;  // train.precision bf16: every forward of the run
  std::unique_ptr<Checkpoint> resume_, init_;
  std::optional<data::Tokenizer> tok_;  // set by load_data()
  std::optional<data::TokenDataset> data_;
  std::vector<int32_t> sample_prompt_;
  std::unique_ptr<nn::TransformerLM> model_;
  std::unique_ptr<optim::Optimizer> optimizer_;
  optim::LrSchedule sched_;
  Generator data_gen_;
  CheckpointState state_;
  std::unique_ptr<dist::GradReducer> reducer_;
  std::ofstream metrics_, diagnostics_;
  int64_t B_ = 0, T_ = 0, steps_ = 0, step_tokens_ = 0, eval_batch_ = 0, fault_step_ = -1;
  double elapsed0_ = 0, last_val_ = NAN, last_loss_ = NAN;
  double subset_val_ = NAN;  // this step's subset estimate (train.val_subset_interval), or NaN
  double val_bytes_per_token_ = 0;  // bits per byte = loss / ln 2 / this
  StepRates rates_;
  std::vector<double> comm_ms_, wait_ms_;
  Tensor diag_ids_;
  DiagnosticsProbe probe_;
  Clock::time_point t0_;
  TrainResult result_;
};

}  // namespace lmlab::train
