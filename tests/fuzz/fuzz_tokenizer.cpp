// libFuzzer harness for text input: the strict UTF-8 checks of corpora (data::check_text, utf8::),
// the character and byte tokenizers (encode / decode round trips) and
// data::Tokenizer::from_serialized. Input: the first byte picks the mode (even: raw text, odd: a
// serialized tokenizer), the rest is the payload. Only lmlab::Error may escape as an answer; any
// other outcome aborts.
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "autograd/error.h"
#include "data/corpus.h"
#include "data/tokenizer.h"
#include "data/utf8.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

[[noreturn]] void bug(const std::string& what) {
  std::cerr << "fuzz_tokenizer: " << what << "\n";
  std::abort();
}

// Both tokenizers on raw text: data::check_text agrees with utf8::first_problem; text that passes
// round-trips through the char tokenizer built from it and through the byte tokenizer.
void text_mode(const std::string& text) {
  const lmlab::data::Tokenizer bytes = lmlab::data::Tokenizer::bytes();
  if (bytes.decode(bytes.encode(text)) != text) bug("byte tokenizer round trip failed");
  const std::optional<lmlab::data::utf8::Problem> problem = lmlab::data::utf8::first_problem(text);
  bool checked = true;
  try {
    lmlab::data::check_text(text, "fuzz.txt");
  } catch (const lmlab::Error&) {
    checked = false;
  }
  const bool has_nul = text.find('\0') != std::string::npos;
  if (checked != (!problem && !has_nul)) bug("check_text disagrees with utf8::first_problem");
  if (problem) {
    if (problem->offset >= text.size()) bug("a UTF-8 problem past the end of the text");
    try {
      lmlab::data::Tokenizer::chars(text);
    } catch (const lmlab::Error&) {
      return;
    }
    bug("Tokenizer::chars accepted malformed UTF-8");
  }
  if (text.empty()) return;
  const lmlab::data::Tokenizer chars = lmlab::data::Tokenizer::chars(text);
  const std::vector<int32_t> ids = chars.encode(text);
  if (chars.decode(ids) != text) bug("char tokenizer round trip failed");
  for (int32_t id : ids)
    if (id < 0 || id >= chars.vocab_size()) bug("an id out of the vocabulary");
  if (lmlab::data::Tokenizer::from_serialized(chars.serialize()) != chars)
    bug("char tokenizer serialization round trip failed");
  // Decoding arbitrary ids (the text's bytes, as ids) either works or names the bad id.
  std::vector<int32_t> raw;
  for (unsigned char c : text) raw.push_back(int32_t(c) - 8);
  try {
    const std::string s = chars.decode(raw);
    if (lmlab::data::utf8::first_problem(s)) bug("decode produced malformed UTF-8");
  } catch (const lmlab::Error&) {
  }
}

// A serialized tokenizer: refused with an lmlab::Error, or rebuilt into one that serializes to
// an equal tokenizer.
void serialized_mode(const std::string& text) {
  std::optional<lmlab::data::Tokenizer> tok;
  try {
    tok = lmlab::data::Tokenizer::from_serialized(text);
  } catch (const lmlab::Error&) {
    return;
  }
  if (lmlab::data::Tokenizer::from_serialized(tok->serialize()) != *tok)
    bug("from_serialized(serialize()) changed the tokenizer");
  const std::string vocab = tok->vocab_string();
  if (lmlab::data::utf8::first_problem(vocab)) bug("the vocabulary string is not UTF-8");
  if (tok->kind() == "char" && tok->decode(tok->encode(vocab)) != vocab)
    bug("the vocabulary does not round-trip through its own tokenizer");
}

}  // namespace

// One input: mode byte + payload.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return lmlab::fuzz::run_by_mode(data, size, text_mode, serialized_mode);
}
