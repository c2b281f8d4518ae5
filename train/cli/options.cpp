// `lmlab options`: the model option table (nn/options.h) as text, JSON or markdown.
#include "nn/options.h"

#include <cxxopts.hpp>
#include <iostream>

#include "train/cli/commands.h"
#include "train/config/options_doc.h"

namespace lmlab::train::cli {

int options_main(int argc, char** argv) {
  cxxopts::Options opts("lmlab options",
                        "Every model option (the keys of a config's model: section) with its "
                        "type, default, range and meaning.\nusage: lmlab options [--json | "
                        "--markdown]");
  opts.add_options()("json", "the table as JSON (tools/torch_reference.py reads it)")(
      "markdown", "the table as docs/config.md's markdown rows")("h,help", "show this help");
  const cxxopts::ParseResult r = opts.parse(argc, argv);
  if (r.count("help")) {
    std::cout << opts.help();
    return 0;
  }
  if (!r.unmatched().empty()) throw UsageError("unexpected argument '" + r.unmatched()[0] + "'");
  if (r.count("json") && r.count("markdown")) throw UsageError("--json and --markdown exclude");
  if (r.count("json")) {
    std::cout << model_options_json();
  } else if (r.count("markdown")) {
    std::cout << model_options_markdown();
  } else {
    for (const nn::ModelOption& o : nn::model_options())
      std::cout << "model." << o.name << " (" << nn::to_string(o.type)
                << ", default: " << nn::option_text(o.default_value) << ")  " << nn::range_text(o)
                << "\n    " << o.doc << "\n";
  }
  return 0;
}

}  // namespace lmlab::train::cli
