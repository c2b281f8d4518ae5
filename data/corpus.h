// Text corpora: one UTF-8 file, or a directory of them read in sorted order and concatenated.
// The default corpus is Debian's `fortunes` package (/usr/share/games/fortunes).
#pragma once
#include <string>
#include <vector>

namespace lmlab::data {

// Where the default corpus lives once `apt-get install fortunes` has run.
inline constexpr const char* kDefaultCorpusPath = "/usr/share/games/fortunes";

// A loaded corpus: the concatenated text and the files it came from, in reading order.
struct Corpus {
  std::string text;
  std::vector<std::string> files;    // read, in order (byte-wise sorted by file name)
  std::vector<size_t> starts;        // where each file's text begins in `text`
  std::vector<std::string> skipped;  // directory entries passed over (symlinks, .dat, dirs, ...)
};

// Reads `path`. A regular file (or a symlink to one) is read whole. A directory contributes every
// regular file directly inside it, sorted by name, concatenated byte for byte with no separator;
// it skips subdirectories, symlinks (fortunes' `X.u8 -> X` would duplicate text), other
// non-regular entries, hidden files (".name") and `.dat` files (strfile's binary indexes).
// Every file read must be UTF-8 text without NUL bytes. Throws lmlab::Error "[corpus] ..." naming
// the file: missing path, unreadable file, NUL byte or malformed UTF-8 (with the byte offset),
// and an empty corpus (an empty file, or a directory with no text after skipping).
Corpus read_corpus(const std::string& path);

// read_corpus(path).text.
std::string load_corpus(const std::string& path);

// Throws "[corpus] <name> ..." when `text` holds a NUL byte or is not well-formed UTF-8, naming
// the offset of the first bad byte: "[corpus] x is not UTF-8 text: invalid byte 0xff at offset 12
// (invalid start byte)".
void check_text(const std::string& text, const std::string& name);

}  // namespace lmlab::data
