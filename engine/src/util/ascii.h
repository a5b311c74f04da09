// Case-insensitive comparison of ASCII text, for HTTP header names and media
// types: bytes outside A-Z compare as they are (no locale, no table lookup;
// std::tolower is a call per byte, and the call path compares every header of
// every answer against the names it reads).
#pragma once

#include <string_view>

namespace switchboard {

constexpr char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

constexpr bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

constexpr bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

}  // namespace switchboard
