// Reading a whole text file, and splitting one into lines: the one way the
// engine does each.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "switchboard/status.h"

namespace switchboard::detail {

// The bytes of `path`, or an io_error carrying `error_message` verbatim. Only
// a regular file (after symlinks) is read: a directory would read as "" and a
// FIFO would block the caller.
Result<std::string> read_text_file(const std::string& path, const std::string& error_message);

// The lines of `text` as Lua numbers them: element i is line i + 1. A line
// ends at "\n", "\r", "\r\n" or "\n\r", which is not part of it.
std::vector<std::string_view> text_lines(std::string_view text);

}  // namespace switchboard::detail
