#include "file_text.h"

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

}  // namespace switchboard::detail
