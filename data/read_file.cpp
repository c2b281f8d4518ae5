// Whole-file reads (data/read_file.h).
#include "data/read_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace lmlab::data {

namespace fs = std::filesystem;

std::optional<std::string> read_whole_file(const std::string& path, std::string* why) {
  auto failed = [&](const std::string& reason) -> std::optional<std::string> {
    if (why) *why = reason;
    return std::nullopt;
  };
  std::error_code ec;
  if (!fs::exists(path, ec)) return failed("no such file");
  if (fs::is_directory(path, ec)) return failed("it is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) return failed(std::strerror(errno));
  const auto size = fs::file_size(path, ec);
  if (ec) return failed(ec.message());
  std::string text(size, '\0');
  if (size > 0 && !in.read(text.data(), std::streamsize(size)))
    return failed("read " + std::to_string(in.gcount()) + " of " + std::to_string(size) + " bytes");
  text.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) return failed(std::strerror(errno));
  return text;
}

}  // namespace lmlab::data
