// Durations and shell quoting for progress lines and printed commands.
#include "train/common/text.h"

#include <cstdio>

namespace lmlab::train {

std::string format_duration(double s) {
  char buf[32];
  if (s < 60)
    std::snprintf(buf, sizeof buf, "%.0fs", s);
  else if (s < 3600)
    std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
  else
    std::snprintf(buf, sizeof buf, "%dh%02dm", int(s) / 3600, int(s) / 60 % 60);
  return buf;
}

std::string shell_quote(const std::string& a) {
  if (!a.empty() && a.find_first_of(" '\"\\$`\n\t;&|<>()[]{}*?!#~^") == std::string::npos) return a;
  std::string q = "'";
  for (char c : a) {
    if (c == '\'')
      q.append("'\\''");
    else
      q.push_back(c);
  }
  q.push_back('\'');
  return q;
}

std::string shell_quote(const std::vector<std::string>& args) {
  std::string s;
  for (const std::string& a : args) {
    if (!s.empty()) s.push_back(' ');
    s.append(shell_quote(a));
  }
  return s;
}

}  // namespace lmlab::train
