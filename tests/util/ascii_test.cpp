// ASCII case folding (util/ascii.h): header names compare without regard to
// A-Z case, every other byte (UTF-8 included) as it is, and lengths first.
#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "util/ascii.h"

using switchboard::ascii_lower;
using switchboard::iequals;
using switchboard::istarts_with;

TEST_CASE("ascii_lower folds A-Z and leaves every other byte alone") {
  for (int c = 0; c < 256; ++c) {
    const char ch = static_cast<char>(c);
    const char want = c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : ch;
    CHECK_MESSAGE(ascii_lower(ch) == want, "byte ", c);
  }
}

TEST_CASE("iequals: same letters in any case, nothing else") {
  CHECK(iequals("Content-Type", "content-type"));
  CHECK(iequals("X-RATELIMIT-RESET-TOKENS", "x-ratelimit-reset-tokens"));
  CHECK(iequals("", ""));
  CHECK_FALSE(iequals("content-type", "content-typ"));
  CHECK_FALSE(iequals("content-type", "content_type"));
  // Bytes past ASCII are not folded: 'É' (C3 89) is not 'é' (C3 A9).
  CHECK_FALSE(iequals("\xC3\x89", "\xC3\xA9"));
  CHECK(iequals("\xC3\x89", "\xC3\x89"));
  // '@' and '`' sit next to 'A' and 'a'..'z': they stay themselves.
  CHECK_FALSE(iequals("@", "`"));
  CHECK_FALSE(iequals("[", "{"));
  static_assert(iequals("Retry-After", "retry-after"));
}

TEST_CASE("istarts_with: a case-blind prefix, never longer than the text") {
  CHECK(istarts_with("X-RateLimit-Remaining-Requests", "x-ratelimit-"));
  CHECK(istarts_with("abc", ""));
  CHECK_FALSE(istarts_with("x-rate", "x-ratelimit-"));
  CHECK_FALSE(istarts_with("y-ratelimit-reset", "x-ratelimit-"));
}
