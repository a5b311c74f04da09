// Reading a whole text file: the one way the engine does it.
#pragma once

#include <string>

#include "switchboard/status.h"

namespace switchboard::detail {

// The bytes of `path`, or an io_error carrying `error_message` verbatim. Only
// a regular file (after symlinks) is read: a directory would read as "" and a
// FIFO would block the caller.
Result<std::string> read_text_file(const std::string& path, const std::string& error_message);

}  // namespace switchboard::detail
