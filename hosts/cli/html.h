// Helpers for the self-contained HTML pages the CLI writes (report, whatif).
#pragma once

#include <string>

namespace switchboard::cli {

// Text safe inside HTML elements and quoted attributes.
std::string escape_html(const std::string& s);

// Writes `page` to `path` (replacing it). Returns "" or the error.
std::string write_page(const std::string& path, const std::string& page);

}  // namespace switchboard::cli
