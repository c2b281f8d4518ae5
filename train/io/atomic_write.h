// The one atomic file write of lmlab: checkpoints, configs, metrics, results and reports all go
// through it, so a crash or a full disk leaves either the old file or the new one, never half of
// one.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace lmlab::train {

// Receives the next bytes of the file being written.
using ByteSink = std::function<void(const void* data, size_t size)>;

// Writes `path` atomically: `produce` hands its bytes to the sink, which writes them to
// "<path>.tmp.<pid>"; that file is fsynced and renamed over `path`, then the directory is fsynced
// (so the rename survives a power cut). On any failure the temp file is removed and
// lmlab::Error("[<who>] cannot write <path> (via <tmp>): <reason>") is thrown ("cannot create
// <tmp>" when it cannot even be opened). An exception from `produce` also removes the temp file.
void write_file_atomic(const std::string& path, const std::function<void(const ByteSink&)>& produce,
                       const char* who);
// The same for a text already in memory.
void write_file_atomic(const std::string& path, std::string_view text, const char* who = "train");

}  // namespace lmlab::train
