// safetensors reading (with full validation of the header against the file) and writing (through
// the one atomic write, data/atomic_write.h).
#include "train/io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <vector>

#include "autograd/tape.h"
#include "data/atomic_write.h"

namespace lmlab::train {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; lmlab reads and writes it with memcpy");

namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error("[safetensors] " + path + ": " + what);
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::I32: return "I32";
    case DType::BF16: return "BF16";
  }
  return "?";
}

DType parse_dtype(const std::string& path, const std::string& name, const json& v) {
  if (!v.is_string()) fail(path, "tensor '" + name + "': \"dtype\" is not a string: " + v.dump());
  const std::string s = v.get<std::string>();
  if (s == "F32") return DType::F32;
  if (s == "F64") return DType::F64;
  if (s == "I32") return DType::I32;
  if (s == "BF16") return DType::BF16;
  fail(path, "tensor '" + name + "' has dtype " + s + "; lmlab reads F32, F64, I32 and BF16");
}

// A non-negative JSON integer, or an error naming the tensor and the field.
uint64_t parse_uint(const std::string& path, const std::string& name, const char* field,
                    const json& v) {
  if (!v.is_number_unsigned())
    fail(path,
         "tensor '" + name + "': " + field + " holds " + v.dump() + ", not a non-negative integer");
  return v.get<uint64_t>();
}

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

Entry parse_entry(const std::string& path, const std::string& name, const json& v) {
  if (!v.is_object()) fail(path, "tensor '" + name + "' is not a JSON object: " + v.dump());
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!v.contains(key)) fail(path, "tensor '" + name + "' has no \"" + key + "\"");
  Entry e{name, parse_dtype(path, name, v["dtype"]), {}, 0, 0};
  const json& shape = v["shape"];
  if (!shape.is_array())
    fail(path, "tensor '" + name + "': \"shape\" is not an array: " + shape.dump());
  // `extent` multiplies the non-zero dims only: an empty tensor's strides are still products of
  // the other dims and must not overflow int64 either.
  uint64_t count = 1, extent = 1;
  for (const json& d : shape) {
    const uint64_t n = parse_uint(path, name, "\"shape\"", d);
    if (n != 0 && extent > uint64_t(std::numeric_limits<int64_t>::max()) / 8 / n)
      fail(path, "tensor '" + name + "': shape " + shape.dump() + " is too large");
    count *= n;
    if (n != 0) extent *= n;
    e.shape.push_back(int64_t(n));
  }
  const json& off = v["data_offsets"];
  if (!off.is_array() || off.size() != 2)
    fail(path, "tensor '" + name + "': \"data_offsets\" must be [begin, end], got " + off.dump());
  e.begin = parse_uint(path, name, "\"data_offsets\"", off[0]);
  e.end = parse_uint(path, name, "\"data_offsets\"", off[1]);
  if (e.end < e.begin)
    fail(path, "tensor '" + name + "': data_offsets " + off.dump() + " end before they begin");
  const uint64_t bytes = count * dtype_size(e.dtype);
  if (e.end - e.begin != bytes)
    fail(path, "tensor '" + name + "': data_offsets " + off.dump() + " span " +
                   std::to_string(e.end - e.begin) + " bytes but shape " + to_string(e.shape) +
                   " of " + dtype_name(e.dtype) + " needs " + std::to_string(bytes));
  return e;
}

std::map<std::string, std::string> parse_metadata(const std::string& path, const json& v) {
  if (!v.is_object()) fail(path, "\"__metadata__\" is not a JSON object: " + v.dump());
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : v.items()) {
    if (!value.is_string())
      fail(path, "\"__metadata__\" value of '" + key + "' is not a string: " + value.dump());
    out[key] = value.get<std::string>();
  }
  return out;
}

// "[begin, end)", built by appending (GCC 12 warns falsely on "[" + std::to_string(...)).
std::string range_text(uint64_t begin, uint64_t end) {
  std::string s = "[";
  s += std::to_string(begin);
  s += ", ";
  s += std::to_string(end);
  s += ")";
  return s;
}

std::string errno_text() { return std::strerror(errno); }

}  // namespace

const Tensor& SafeTensors::at(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end())
    fail(path.empty() ? "(in memory)" : path, "no tensor named '" + name + "'");
  return it->second;
}

namespace {

// The file's JSON header (after its 8-byte length), checked against the file's size; sets
// `header_len` and `file_size`.
json read_header(const std::string& path, std::ifstream& in, uint64_t* header_len,
                 uint64_t* file_size) {
  std::error_code ec;
  *file_size = std::filesystem::file_size(path, ec);
  if (ec) fail(path, "cannot read its size: " + ec.message());
  if (*file_size < 8)
    fail(path,
         "file is " + std::to_string(*file_size) + " bytes, shorter than the 8-byte header length");
  in.read(reinterpret_cast<char*>(header_len), 8);
  if (*header_len > *file_size - 8)
    fail(path, "header length " + std::to_string(*header_len) + " runs past the end of the file (" +
                   std::to_string(*file_size) + " bytes)");
  std::string text(*header_len, '\0');
  if (!in.read(text.data(), std::streamsize(*header_len))) fail(path, "read of the header failed");
  json header;
  try {
    header = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1E999
    fail(path, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) fail(path, "header is not a JSON object");
  return header;
}

// The tensors must tile the data buffer of `data_size` bytes exactly: no overlaps, no holes, no
// trailing bytes.
void check_tiling(const std::string& path, const std::vector<Entry>& entries, uint64_t data_size) {
  std::vector<const Entry*> order;
  for (const Entry& e : entries) order.push_back(&e);
  std::stable_sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t pos = 0;
  const Entry* prev = nullptr;
  for (const Entry* e : order) {
    const std::string range = range_text(e->begin, e->end);
    if (e->end > data_size)
      fail(path, "tensor '" + e->name + "' data_offsets " + range + " exceed the data buffer of " +
                     std::to_string(data_size) + " bytes (truncated file?)");
    if (e->begin < pos)
      fail(path, "tensor '" + e->name + "' data_offsets " + range + " overlap tensor '" +
                     prev->name + "'");
    if (e->begin > pos)
      fail(path, "bytes " + range_text(pos, e->begin) +
                     " of the data buffer belong to no tensor (before '" + e->name + "')");
    pos = e->end;
    prev = e;
  }
  if (pos != data_size)
    fail(path, std::to_string(data_size - pos) +
                   " trailing bytes after the last tensor (data buffer is " +
                   std::to_string(data_size) + " bytes, tensors cover " + std::to_string(pos) +
                   ")");
}

}  // namespace

SafeTensors load_safetensors(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail(path, "no such file");
  if (!std::filesystem::is_regular_file(path, ec)) fail(path, "not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open: " + errno_text());
  uint64_t header_len = 0, file_size = 0;
  const json header = read_header(path, in, &header_len, &file_size);
  SafeTensors st;
  st.path = path;
  std::vector<Entry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__")
      st.metadata = parse_metadata(path, value);
    else
      entries.push_back(parse_entry(path, name, value));
  }
  check_tiling(path, entries, file_size - 8 - header_len);
  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    in.seekg(std::streamoff(8 + header_len + e.begin));
    if (e.end > e.begin &&
        !in.read(static_cast<char*>(t.raw_data()), std::streamsize(e.end - e.begin)))
      fail(path, "read of tensor '" + e.name + "' failed");
    st.tensors.emplace(e.name, t);
  }
  return st;
}

void save_safetensors(const std::string& path, const SafeTensors& st) {
  NoGradGuard guard;
  json header = json::object();
  if (!st.metadata.empty()) header["__metadata__"] = st.metadata;
  std::vector<Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, t] : st.tensors) {
    if (name == "__metadata__") fail(path, "a tensor may not be named \"__metadata__\"");
    if (!t.defined()) fail(path, "tensor '" + name + "' is undefined");
    Tensor c = (t.device() == Device::CPU ? t : t.to(Device::CPU)).contiguous();
    const uint64_t bytes = uint64_t(c.numel()) * dtype_size(c.dtype());
    header[name] = {{"dtype", dtype_name(c.dtype())},
                    {"shape", c.shape()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(c);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t header_len = text.size();

  data::write_file_atomic(
      path,
      [&](const data::ByteSink& sink) {
        sink(&header_len, 8);
        sink(text.data(), text.size());
        for (const Tensor& c : data) sink(c.raw_data(), size_t(c.numel()) * dtype_size(c.dtype()));
      },
      "safetensors");
}

}  // namespace lmlab::train
