// The safetensors file format (Hugging Face): read and write named tensors plus string metadata.
// Layout, validation rules and errors: docs/checkpoint.md ("The safetensors layout").
#pragma once
#include <map>
#include <string>

#include "autograd/tensor.h"

namespace lmlab::train {

// The contents of one safetensors file: tensors by name (F32, F64 or I32; any shape, including
// scalars) and the "__metadata__" string map.
struct SafeTensors {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
  std::string path;  // the file it was loaded from (empty when built in memory), for messages

  // The tensor named `name`; throws "[safetensors] <path>: no tensor named 'x'".
  const Tensor& at(const std::string& name) const;
  bool contains(const std::string& name) const { return tensors.count(name) > 0; }
};

// Reads a whole file: u64 little-endian header length N, N bytes of JSON header
//   {"name": {"dtype": "F32"|"F64"|"I32", "shape": [...], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value"}}
// then the data buffer (offsets are relative to its start). Validates everything and throws
// lmlab::Error("[safetensors] <path>: <what is wrong>") on: a missing, unreadable or short file, a
// header length past the end of the file, invalid JSON or a header of the wrong form, an unknown
// dtype, offsets out of range, overlapping, leaving holes, or not matching shape * dtype size.
// Trailing bytes after the last tensor are rejected (a truncated or appended-to file is an error).
// Tensors come back on the CPU, contiguous, not requiring grad.
SafeTensors load_safetensors(const std::string& path);

// Writes `st` atomically: to "<path>.tmp.<pid>", fsync, rename over `path`, fsync the directory, so
// a crash leaves either the old file or the new one. Tensors may be strided or on any device.
// The header is padded with spaces to a multiple of 8 bytes; tensors are laid out in name order.
// Throws lmlab::Error naming the path on an I/O failure or a tensor named "__metadata__".
void save_safetensors(const std::string& path, const SafeTensors& st);

}  // namespace lmlab::train
