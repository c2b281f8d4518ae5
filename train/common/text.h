// Small text helpers shared by the CLI's parts: durations for progress lines and shell quoting
// for the commands lmlab prints or runs.
#pragma once
#include <string>
#include <vector>

namespace lmlab::train {

// "42s", "3m07s", "1h05m".
std::string format_duration(double seconds);
// One argument quoted for /bin/sh when it needs it ('it'\''s'); plain words stay as they are.
std::string shell_quote(const std::string& arg);
// A whole command line, each argument through shell_quote.
std::string shell_quote(const std::vector<std::string>& args);

}  // namespace lmlab::train
