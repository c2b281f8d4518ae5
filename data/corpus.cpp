// Corpus loading: file reads with errno-named failures, directory listing rules, UTF-8 checks.
#include "data/corpus.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "autograd/error.h"
#include "data/read_file.h"
#include "data/utf8.h"

namespace lmlab::data {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string& what) { throw Error("[corpus] " + what); }

// Reads a whole file in one allocation (fine for a single 100 MB line: nothing is line-based).
std::string read_file(const fs::path& path) {
  std::string why;
  std::optional<std::string> text = read_whole_file(path.string(), &why);
  if (!text) fail("cannot read " + path.string() + ": " + why);
  return std::move(*text);
}

// Why a directory entry is skipped, or empty when it is read.
std::string skip_reason(const fs::directory_entry& entry) {
  std::error_code ec;
  if (entry.is_symlink(ec)) return "symlink";
  if (entry.is_directory(ec)) return "directory";
  if (!entry.is_regular_file(ec)) return "not a regular file";
  const std::string name = entry.path().filename().string();
  if (!name.empty() && name[0] == '.') return "hidden file";
  if (entry.path().extension() == ".dat") return "strfile index";
  return "";
}

}  // namespace

void check_text(const std::string& text, const std::string& name) {
  if (const void* nul = std::memchr(text.data(), '\0', text.size()))
    fail(name + " is binary, not text: NUL byte at offset " +
         std::to_string(static_cast<const char*>(nul) - text.data()));
  if (auto problem = utf8::first_problem(text))
    fail(name + " is not UTF-8 text: " + utf8::describe(*problem));
}

Corpus read_corpus(const std::string& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) fail(path + " does not exist");
  if (ec) fail("cannot access " + path + ": " + ec.message());

  Corpus corpus;
  if (!fs::is_directory(status)) {
    corpus.text = read_file(path);
    if (corpus.text.empty()) fail(path + " is empty");
    check_text(corpus.text, path);
    corpus.files.push_back(path);
    corpus.starts.push_back(0);
    return corpus;
  }

  std::vector<fs::path> files;
  try {
    for (const fs::directory_entry& entry : fs::directory_iterator(path)) {
      const std::string reason = skip_reason(entry);
      if (reason.empty())
        files.push_back(entry.path());
      else
        corpus.skipped.push_back(entry.path().string() + " (" + reason + ")");
    }
  } catch (const fs::filesystem_error& e) {
    fail("cannot list " + path + ": " + e.code().message());
  }
  std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) {
    return a.filename().string() < b.filename().string();
  });
  std::sort(corpus.skipped.begin(), corpus.skipped.end());
  for (const fs::path& file : files) {
    std::string text = read_file(file);
    check_text(text, file.string());
    corpus.starts.push_back(corpus.text.size());
    corpus.text += text;
    corpus.files.push_back(file.string());
  }
  if (corpus.text.empty())
    fail(path + " holds no text: files read: " + std::to_string(files.size()) +
         " (all empty); entries skipped: " + std::to_string(corpus.skipped.size()) +
         " (subdirectories, symlinks, hidden and .dat files)");
  return corpus;
}

std::string load_corpus(const std::string& path) { return read_corpus(path).text; }

}  // namespace lmlab::data
