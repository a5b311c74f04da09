#include "util/file_text.h"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace switchboard::detail {

Result<std::string> read_text_file(const std::string& path, const std::string& error_message) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return Status::io_error(error_message);
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::io_error(error_message);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string_view> text_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c != '\n' && c != '\r') continue;
    lines.push_back(text.substr(start, i - start));
    // llex.c's inclinenumber: "\r\n" and "\n\r" are one line break.
    if (i + 1 < text.size() && (text[i + 1] == '\n' || text[i + 1] == '\r') && text[i + 1] != c) ++i;
    start = i + 1;
  }
  lines.push_back(text.substr(start));
  return lines;
}

}  // namespace switchboard::detail
