// libFuzzer harness for the byte-level BPE (data/bpe.h). Input: the first byte picks the mode,
// the rest is the payload.
//   even: text. GPT-2 pre-tokenization covers it with non-empty pieces; a small tokenizer trained
//         at start-up encodes it (any bytes, special tokens plain or allowed) without crashing,
//         into ids of its vocabulary; decode_bytes gives the text back, and so does decode when
//         the text is UTF-8 (decode's output is UTF-8 always).
//   odd:  a tokenizer.json. Refused with an lmlab::Error, or loaded into a tokenizer whose
//         to_json loads back equal and which round-trips a fixed text.
// Only lmlab::Error may escape as an answer; any other outcome aborts.
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "autograd/error.h"
#include "data/bpe.h"
#include "data/utf8.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using lmlab::data::Bpe;

[[noreturn]] void bug(const std::string& what) {
  std::cerr << "fuzz_bpe: " << what << "\n";
  std::abort();
}

const Bpe& tokenizer() {
  static const Bpe bpe = [] {
    std::string corpus;
    for (int i = 0; i < 4; ++i)
      corpus +=
          "The quick brown fox jumps over the lazy dog. It's 12345 o'clock; they'll see.\n"
          "  Déjà vu: naïve café, straße. 日本語のテキスト, 中文.\n"
          "Привет, мир! 😀👍🏽 👨‍👩‍👧\n"
          "\tx = y + 42;\r\n<|endoftext|>end   \n\n";
    lmlab::data::BpeTrainOptions options;
    options.min_frequency = 1;
    return Bpe::train(corpus, 420, options);
  }();
  return bpe;
}

void check_pieces(const std::string& text) {
  std::string joined;
  for (std::string_view piece : lmlab::data::gpt2_pretokenize(text)) {
    if (piece.empty()) bug("an empty piece");
    joined += piece;
  }
  if (joined != text) bug("the pieces do not make up the text");
}

void text_mode(const std::string& text) {
  check_pieces(text);
  const Bpe& bpe = tokenizer();
  const bool utf8 = !lmlab::data::utf8::first_problem(text);
  for (bool allow_special : {false, true}) {
    const std::vector<int32_t> ids = bpe.encode(text, allow_special);
    for (int32_t id : ids)
      if (id < 0 || id >= bpe.vocab_size()) bug("an id outside the vocabulary");
    if (bpe.decode_bytes(ids) != text) bug("decode_bytes(encode(x)) != x");
    const std::string decoded = bpe.decode(ids);
    if (lmlab::data::utf8::first_problem(decoded)) bug("decode gave malformed UTF-8");
    if (utf8 && decoded != text) bug("decode(encode(x)) != x for UTF-8 text");
  }
}

void json_mode(const std::string& json) {
  std::optional<Bpe> bpe;
  try {
    bpe = Bpe::from_json(json, "fuzz.json");
  } catch (const lmlab::Error&) {
    return;
  }
  if (Bpe::from_json(bpe->to_json(), "again.json") != *bpe) bug("to_json does not load back equal");
  const std::string text = "Hello, wörld! 123 <|endoftext|> \xff\n";
  if (bpe->decode_bytes(bpe->encode(text, true)) != text) bug("a loaded tokenizer lost bytes");
}

}  // namespace

// One input: mode byte + payload.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return lmlab::fuzz::run_by_mode(data, size, text_mode, json_mode);
}
