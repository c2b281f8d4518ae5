// The demo job: load bytes, train an MLP LM with SGD, log, plot. Deliberately plain: everything a
// training step needs (embedding, matmul, tanh, cross_entropy, backward) in one screen.
#include "train/demo.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <vector>

#include "autograd/ops.h"
#include "data/read_file.h"
#include "train/plot.h"

namespace lmlab {

namespace fs = std::filesystem;

// All regular text files under `path` (sorted, so the order is deterministic), skipping the
// fortune package's binary .dat indexes and symlinks.
static std::vector<uint8_t> load_bytes(const std::string& path) {
  std::vector<fs::path> files;
  if (fs::is_directory(path)) {
    for (const auto& e : fs::directory_iterator(path))
      if (e.is_regular_file() && !e.is_symlink() && e.path().extension() != ".dat")
        files.push_back(e.path());
    std::sort(files.begin(), files.end());
  } else if (fs::is_regular_file(path)) {
    files.push_back(path);
  } else {
    throw Error("[demo] corpus " + path +
                " does not exist (install Debian's fortunes package, "
                "or pass --corpus FILE)");
  }
  std::vector<uint8_t> bytes;
  for (const fs::path& f : files) {
    const std::string text = read_whole_file(f.string()).value_or("");
    bytes.insert(bytes.end(), text.begin(), text.end());
  }
  return bytes;
}

namespace {

struct Mlp {
  Tensor emb, w1, b1, w2, b2;  // (256, E), (ctx*E, H), (H), (H, 256), (256)
  std::vector<Tensor> params() const { return {emb, w1, b1, w2, b2}; }
};

// logits = tanh(flatten(emb[x]) @ w1 + b1) @ w2 + b2 -> loss vs y
Tensor loss_of(const Mlp& m, const Tensor& x, const Tensor& y) {
  const int64_t B = x.size(0);
  Tensor h = reshape(embedding(m.emb, x), {B, -1});
  h = tanh(add(matmul(h, m.w1), m.b1));
  return cross_entropy(add(matmul(h, m.w2), m.b2), y);
}

// A batch of B windows: x = bytes[i, i+ctx), y = bytes[i+ctx], starting in [lo, hi - ctx).
void sample_batch(const std::vector<uint8_t>& data, int64_t lo, int64_t hi, int64_t B, int64_t ctx,
                  Generator& gen, Tensor& x, Tensor& y) {
  x = Tensor::empty({B, ctx}, DType::I32);
  y = Tensor::empty({B}, DType::I32);
  Tensor u = Tensor::rand({B}, gen, DType::F64);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t i = lo + int64_t(u.data<double>()[b] * double(hi - lo - ctx));
    for (int64_t t = 0; t < ctx; ++t) x.data<int32_t>()[b * ctx + t] = data[i + t];
    y.data<int32_t>()[b] = data[i + ctx];
  }
}

}  // namespace

int run_demo(const DemoOptions& o) {
  const std::vector<uint8_t> data = load_bytes(o.corpus);
  if (int64_t(data.size()) < 20 * (o.context + 1))
    throw Error("[demo] corpus " + o.corpus + " has " + std::to_string(data.size()) +
                " bytes; it needs at least " + std::to_string(20 * (o.context + 1)));
  const int64_t split = int64_t(data.size()) * 9 / 10;  // the last 10% is validation
  const int64_t E = 24, H = 256;
  Generator gen(o.seed);
  Mlp m{
      Tensor::randn({256, E}, gen, DType::F32, 0, 1.0),
      Tensor::randn({o.context * E, H}, gen, DType::F32, 0, 1.0 / std::sqrt(double(o.context * E))),
      Tensor::zeros({H}), Tensor::randn({H, 256}, gen, DType::F32, 0, 0.1), Tensor::zeros({256})};
  for (Tensor& p : std::vector<Tensor>{m.emb, m.w1, m.b1, m.w2, m.b2}) p.requires_grad_();

  fs::create_directories(o.out_dir);
  const std::string csv_path = o.out_dir + "/metrics.csv";
  std::ofstream csv(csv_path);
  csv << "step,tokens,lr,train_loss,val_loss,tokens_per_s,elapsed_s\n";
  const bool tty = isatty(fileno(stdout));
  std::cout << "demo: byte-level MLP LM, " << data.size() << " bytes of " << o.corpus << ", "
            << o.steps << " steps of " << o.batch << " x " << o.context << " bytes\n";

  Generator val_gen(o.seed + 1);
  Tensor vx, vy;
  sample_batch(data, split, int64_t(data.size()), 1024, o.context, val_gen, vx, vy);
  const auto t0 = std::chrono::steady_clock::now();
  double last_val = 0;
  for (int64_t step = 0; step <= o.steps; ++step) {
    const double lr = o.lr * (1.0 - 0.9 * double(step) / double(o.steps));  // linear decay to lr/10
    Tensor x, y;
    sample_batch(data, 0, split, o.batch, o.context, gen, x, y);
    Tensor loss = loss_of(m, x, y);
    tape::backward(loss);
    {
      NoGradGuard guard;
      for (const Tensor& p : m.params()) {
        Tensor q = p;
        q.add_(p.grad(), -lr);
        p.zero_grad();
      }
    }
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double tok_s = double((step + 1) * o.batch) / std::max(elapsed, 1e-9);
    const bool eval = step % 50 == 0 || step == o.steps;
    if (eval) {
      NoGradGuard guard;
      last_val = loss_of(m, vx, vy).item();
    }
    csv << step << "," << (step + 1) * o.batch << "," << lr << "," << loss.item() << ","
        << (eval ? std::to_string(last_val) : "") << "," << tok_s << "," << elapsed << "\n";
    const double eta = elapsed / double(step + 1) * double(o.steps - step);
    char line[160];
    std::snprintf(line, sizeof line,
                  "step %5lld/%lld  loss %.4f  val %.4f  %8.0f tok/s  ETA %5.1fs", (long long)step,
                  (long long)o.steps, loss.item(), last_val, tok_s, eta);
    if (tty)
      std::cout << "\r" << line << std::flush;
    else if (eval)
      std::cout << line << "\n";
  }
  if (tty) std::cout << "\n";
  csv.close();
  std::cout << "demo: final val loss " << last_val << " nats/byte (uniform would be "
            << std::log(256.0) << "); metrics in " << csv_path << "\n";
  if (o.plot) {
    const std::string png =
        plot_loss_curve(csv_path, o.out_dir + "/loss.png", "lmlab demo: byte-level MLP LM");
    if (!png.empty()) std::cout << "demo: loss curve in " << png << "\n";
  }
  return 0;
}

}  // namespace lmlab
