// GPU training throughput: tokens/s and MFU of full train steps (forward, backward, gradient
// clipping, AdamW) of a pre-norm LayerNorm / GELU / learned-position / tied-embedding / bias-free
// TransformerLM, at a GPT-2-small-like size and at the repository's small configs. The same
// model and step in PyTorch: tools/bench_torch_gpu.py; both are run by scripts/gpu_check.sh.
//
//   bench_gpu_train [--config gpt2s|tiny|default|nanogpt_cpu|all] [--batch B] [--steps N]
//                   [--warmup W] [--precision fp32|tf32|bf16] [--profile N] [--block-size T]
//                   [--attention flash|gemm]
// --precision (default fp32; `--tf32 0|1` is kept as another spelling of fp32|tf32): fp32 GEMMs,
// TF32 GEMMs, or bf16 mixed precision as `train.precision: bf16` runs it: the forward under
// AutocastGuard(DType::BF16) (autograd/autocast.h: matmul and attention in bf16 with fp32
// accumulation; the fused LM head's GEMMs on bf16 operands with fp32 logits), backward, clipping
// and AdamW outside it on fp32 parameters, and TF32 on for any GEMM autocast leaves in fp32.
// --attention flash (the default here): TF32 and bf16 runs use the flash kernels
// (cuda::set_flash_attention, off in training until a GPU run confirms them); gemm: cuBLAS and a
// saved (T, T) att.
// Prints one "RESULT ..." line per config (parsed by gpu_check.sh) after a readable line; with
// --profile N, then a table of GPU time per kernel over N further steps (see print_profile).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "autograd/autocast.h"
#include "autograd/kernels/cuda_runtime.h"
#include "nn/transformer.h"
#include "optim/adamw.h"
#include "optim/clip.h"
#include "train/common/stats.h"

using namespace lmlab;
using namespace lmlab::train;

namespace {

// Dense peak rates of an H200 SXM (NVIDIA datasheet; the same GH100 compute as the H100 SXM).
constexpr double kPeakFp32 = 67e12;
constexpr double kPeakTf32 = 494.7e12;
// BF16 tensor cores, dense (NVIDIA datasheet: 1,979 TFLOP/s with 2:4 sparsity, half of it dense).
// A bf16 step's MFU is counted against it, as nanoGPT's estimate_mfu counts a whole autocast step.
constexpr double kPeakBf16 = 989.4e12;

enum class Precision { FP32, TF32, BF16 };

const char* precision_name(Precision p) {
  return p == Precision::BF16 ? "bf16" : p == Precision::TF32 ? "tf32" : "fp32";
}
const char* precision_label(Precision p) {
  return p == Precision::BF16 ? "BF16" : p == Precision::TF32 ? "TF32" : "FP32";
}
double peak_flops(Precision p) {
  return p == Precision::BF16 ? kPeakBf16 : p == Precision::TF32 ? kPeakTf32 : kPeakFp32;
}

struct BenchConfig {
  std::string name;
  int64_t n_layer, n_embd, n_head, block_size, vocab_size, batch;
};

const std::vector<BenchConfig> kConfigs = {
    {"tiny", 2, 32, 4, 16, 65, 4},
    {"default", 3, 96, 4, 64, 65, 12},
    {"nanogpt_cpu", 4, 128, 4, 64, 65, 12},
    {"gpt2s", 12, 768, 12, 1024, 50304, 8},
};

nn::ModelConfig model_config(const BenchConfig& b) {
  nn::ModelConfig c;
  c.vocab_size = b.vocab_size;
  c.block_size = b.block_size;
  c.n_layer = b.n_layer;
  c.n_head = b.n_head;
  c.n_kv_head = b.n_head;
  c.n_embd = b.n_embd;
  c.norm = nn::NormType::LayerNorm;
  c.norm_placement = nn::NormPlacement::Pre;
  c.mlp = nn::MlpType::Gelu;
  c.position = nn::PositionType::Learned;
  c.dropout = 0;
  c.bias = false;
  c.tie_embeddings = true;
  return c;
}

// Training FLOPs per token (PaLM appendix B / nanoGPT estimate_mfu): 6 N for the weights, N
// without the position table, plus 12 L T C for the attention scores and their weighted sum.
double flops_per_token(const BenchConfig& b, int64_t params) {
  const double n = double(params - b.block_size * b.n_embd);
  return 6 * n + 12.0 * double(b.n_layer * b.block_size * b.n_embd);
}

// Where a step's GPU time goes: `steps` more steps with an event after every launch, GEMM and
// copy (cuda::profile_start), summed by kernel, per step, largest first; the time between two
// events counts for the later item (idle gaps included, so it adds up to the step's GPU time).
template <class Step>
void print_profile(const BenchConfig& b, Step& step, int steps, double median_s) {
  cuda::synchronize();
  cuda::profile_start();
  for (int s = 0; s < steps; ++s) step();
  const std::vector<cuda::ProfileRow> rows = cuda::profile_stop();
  double total = 0;
  for (const cuda::ProfileRow& r : rows) total += r.ms;
  std::printf(
      "profile %s: %d steps, %.2f ms/step on the GPU by events (%.2f ms/step timed "
      "without them)\n",
      b.name.c_str(), steps, total / steps, median_s * 1e3);
  std::printf("  %8s %7s %6s  %s\n", "ms/step", "share", "calls", "kernel");
  const size_t shown = std::min<size_t>(rows.size(), 30);
  for (size_t i = 0; i < shown; ++i)
    std::printf("  %8.3f %6.1f%% %6.0f  %s\n", rows[i].ms / steps, 100 * rows[i].ms / total,
                double(rows[i].calls) / steps, rows[i].name.c_str());
  if (rows.size() > shown) std::printf("  ... %zu more\n", rows.size() - shown);
  std::fflush(stdout);
}

void run(const BenchConfig& b, int steps, int warmup, Precision precision, int profile_steps) {
  const bool tf32 = precision != Precision::FP32;  // bf16 runs its remaining fp32 GEMMs in TF32
  cuda::set_tf32(tf32);
  // F32: autocast off (the guard then changes nothing); BF16: the forward in mixed precision.
  const DType compute = precision == Precision::BF16 ? DType::BF16 : DType::F32;
  cuda::reset_peak_bytes();  // peak mem per config (an earlier config's tensors are freed by now)
  Generator gen(1);
  nn::TransformerLM model(model_config(b), gen);
  model.to(Device::CUDA);
  optim::AdamWOptions o;
  o.weight_decay = 0.1;
  optim::AdamW opt(model.named_parameters(), o);
  const std::vector<Tensor> params = model.parameters();
  Generator data_gen(2);
  const Tensor u =
      Tensor::rand({b.batch, b.block_size + 1}, data_gen, DType::F32, 0, double(b.vocab_size));
  std::vector<int32_t> host;
  for (float v : u.to_vector<float>()) host.push_back(int32_t(v));
  const Tensor seq = Tensor::from_vector(host, {b.batch, b.block_size + 1}).to(Device::CUDA);
  const Tensor ids = narrow(seq, 1, 0, b.block_size).contiguous();
  const Tensor targets = narrow(seq, 1, 1, b.block_size).contiguous();

  double loss_value = 0;
  auto step = [&] {
    Tensor loss = [&] {  // the forward inside the autocast scope, backward outside it
      AutocastGuard autocast(compute);
      return model.loss(ids, targets);
    }();
    tape::backward(loss);
    optim::clip_grad_norm(params, 1.0);
    opt.step(3e-4);
    opt.zero_grad();
    loss_value = loss.item();  // the host reads the loss each step, as a training loop logs it
  };
  std::vector<double> seconds;
  for (int s = 0; s < warmup + steps; ++s) {
    cuda::synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    step();
    cuda::synchronize();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s >= warmup) seconds.push_back(dt);
  }
  const double median_s = median(seconds);
  const double tokens = double(b.batch * b.block_size);
  const double tok_s = tokens / median_s;
  const double flops = flops_per_token(b, model.num_parameters()) * tok_s;
  const double peak = peak_flops(precision);
  std::printf(
      "%-12s %s B=%lld T=%lld params=%.2fM  %.2f ms/step  %.0f tok/s  %.1f TFLOP/s  MFU %.1f%% "
      "of %s peak %.1f TFLOP/s  loss %.4f  peak mem %.2f GB\n",
      b.name.c_str(), precision_label(precision), (long long)b.batch, (long long)b.block_size,
      double(model.num_parameters()) / 1e6, median_s * 1e3, tok_s, flops / 1e12, 100 * flops / peak,
      precision_label(precision), peak / 1e12, loss_value, double(cuda::peak_bytes()) / 1e9);
  // tf32= (kept for older parsers) is the TF32 switch: 1 for bf16 too; precision= tells them apart.
  std::printf(
      "RESULT config=%s mode=%s batch=%lld T=%lld tok_s=%.1f ms=%.3f mfu=%.4f precision=%s "
      "tf32=%d peak_gb=%.2f\n",
      b.name.c_str(), cuda::flash_attention_enabled() ? "lmlab" : "lmlab_gemm_attention",
      (long long)b.batch, (long long)b.block_size, tok_s, median_s * 1e3, flops / peak,
      precision_name(precision), tf32 ? 1 : 0, double(cuda::peak_bytes()) / 1e9);
  std::fflush(stdout);
  if (profile_steps > 0) print_profile(b, step, profile_steps, median_s);
}

}  // namespace

int main(int argc, char** argv) {
  std::string which = "all";
  int64_t batch = 0, block_size = 0;
  int steps = 20, warmup = 5, profile = 0;
  Precision precision = Precision::FP32;
  cuda::set_flash_attention(true);
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--config")
      which = value;
    else if (key == "--batch")
      batch = std::atoll(value.c_str());
    else if (key == "--steps")
      steps = std::atoi(value.c_str());
    else if (key == "--warmup")
      warmup = std::atoi(value.c_str());
    else if (key == "--precision" && (value == "fp32" || value == "tf32" || value == "bf16"))
      precision = value == "bf16"   ? Precision::BF16
                  : value == "tf32" ? Precision::TF32
                                    : Precision::FP32;
    else if (key == "--tf32" && (value == "0" || value == "1"))  // the older spelling
      precision = value == "1" ? Precision::TF32 : Precision::FP32;
    else if (key == "--profile")
      profile = std::atoi(value.c_str());
    else if (key == "--block-size")
      block_size = std::atoll(value.c_str());
    else if (key == "--attention" && (value == "flash" || value == "gemm"))
      cuda::set_flash_attention(value == "flash");
    else {
      std::fprintf(stderr, "bench_gpu_train: unknown option or value: %s %s\n", key.c_str(),
                   value.c_str());
      return 2;
    }
  }
  if (!cuda::available()) {
    std::fprintf(stderr, "bench_gpu_train: %s\n", cuda::unavailable_reason().c_str());
    return 1;
  }
  try {
    for (BenchConfig b : kConfigs) {
      if (which != "all" && which != b.name) continue;
      if (batch > 0) b.batch = batch;
      if (block_size > 0) b.block_size = block_size;
      run(b, std::max(steps, 1), std::max(warmup, 0), precision, std::max(profile, 0));
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_gpu_train: %s\n", e.what());
    return 1;
  }
  return 0;
}
