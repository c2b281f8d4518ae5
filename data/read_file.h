// The one whole-file read of lmlab: corpora, configs, ablation specs and run files.
#pragma once
#include <optional>
#include <string>

namespace lmlab::data {

// The bytes of the file at `path`, or std::nullopt with `why` (when given) set to the reason: "no
// such file", "it is a directory", the system's error, or a short read. One allocation of the
// file's size, then whatever a file that grew meanwhile added, so a read is never short.
std::optional<std::string> read_whole_file(const std::string& path, std::string* why = nullptr);

}  // namespace lmlab::data
