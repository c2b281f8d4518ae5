// Byte-level BPE throughput (docs/PERFORMANCE.md, "BPE encode throughput"): encoding the default
// corpus (Debian's fortunes, 2.6 MB) with GPT-2's r50k_base (tests/fixtures/bpe/r50k_base.json)
// on one thread and with encode_parallel, a tokenizer trained to 4096 tokens, the training itself
// and loading tokenizer.json. Run from anywhere:
//
//   build/bench/bench_bpe --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// tools/bench_tiktoken.js times js-tiktoken on the same text for comparison.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <optional>
#include <string>

#include "data/bpe.h"
#include "data/corpus.h"

namespace {

using lmlab::data::Bpe;

const std::string kR50k = std::string(LMLAB_SOURCE_DIR) + "/tests/fixtures/bpe/r50k_base.json";

// The corpus, or nullopt when fortunes is not installed.
const std::optional<std::string>& corpus() {
  static const std::optional<std::string> text = []() -> std::optional<std::string> {
    if (!std::filesystem::exists(lmlab::data::kDefaultCorpusPath)) return std::nullopt;
    return lmlab::data::load_corpus(lmlab::data::kDefaultCorpusPath);
  }();
  return text;
}

const Bpe& r50k() {
  static const Bpe bpe = Bpe::load(kR50k);
  return bpe;
}

const Bpe& trained4096() {
  static const Bpe bpe = Bpe::train(*corpus(), 4096);
  return bpe;
}

bool have_corpus(benchmark::State& state) {
  if (corpus()) return true;
  state.SkipWithError("the default corpus is missing (apt-get install fortunes)");
  return false;
}

// Encodes the whole corpus with `bpe` on `threads` threads (1: encode, else encode_parallel).
void encode_corpus(benchmark::State& state, const Bpe& bpe, int threads) {
  const std::string& text = *corpus();
  size_t ids = 0;
  for (auto _ : state) {
    const std::vector<int32_t> out =
        threads == 1 ? bpe.encode(text) : bpe.encode_parallel(text, false, threads);
    ids = out.size();
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
  state.counters["ids"] = double(ids);
  state.counters["bytes/id"] = double(text.size()) / double(ids);
}

void BM_encode_r50k(benchmark::State& state) {
  if (have_corpus(state)) encode_corpus(state, r50k(), int(state.range(0)));
}
BENCHMARK(BM_encode_r50k)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime()
    ->UseRealTime();

void BM_encode_trained4096(benchmark::State& state) {
  if (have_corpus(state)) encode_corpus(state, trained4096(), int(state.range(0)));
}
BENCHMARK(BM_encode_trained4096)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime()
    ->UseRealTime();

void BM_train(benchmark::State& state) {
  if (!have_corpus(state)) return;
  for (auto _ : state) {
    const Bpe bpe = Bpe::train(*corpus(), state.range(0));
    benchmark::DoNotOptimize(bpe.vocab_size());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(corpus()->size()));
}
BENCHMARK(BM_train)->Arg(4096)->Arg(16384)->Unit(benchmark::kMillisecond);

void BM_load_r50k(benchmark::State& state) {
  for (auto _ : state) {
    const Bpe bpe = Bpe::load(kR50k);
    benchmark::DoNotOptimize(bpe.vocab_size());
  }
}
BENCHMARK(BM_load_r50k)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
