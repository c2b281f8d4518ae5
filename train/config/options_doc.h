// The model option table (nn/options.h) written out for readers outside the C++ code:
// `lmlab options --json` for tools/torch_reference.py, `lmlab options --markdown` for
// docs/config.md's model table (a test checks the two agree), and a model's values as JSON for
// the bench's PyTorch twin.
#pragma once
#include <string>

#include "nn/config.h"

namespace lmlab::train {

// {"vocab_size": 65, ..., "norm": "layernorm", ..., "qk_norm": false}: every option of the table
// with its value in `m`, typed (ints, reals, bools, choice names), in table order.
std::string model_values_json(const nn::ModelConfig& m);

// The table as a JSON list, one object per row in table order: name, type (int | real | bool |
// enum), default, range ({lo, lo_open, hi, zero_is_auto}, ints and reals; null bounds where
// unbounded), choices (enums), rule, doc, plugs ([{site, name}]).
std::string model_options_json();

// The table as docs/config.md's markdown rows: "| `model.<name>` | type | default | range |
// doc |", one line per row, after the header line and its separator.
std::string model_options_markdown();

}  // namespace lmlab::train
