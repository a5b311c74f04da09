// random_json: random nlohmann::json trees for the differential tests of the
// JSON reader and writer (tests/util/json_read_test.cpp, json_dump_test.cpp).
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

namespace switchboard::testing {

// A tree at most about 7 levels deep: objects, arrays, strings with escapes,
// control characters, DEL, NUL and non-ASCII text (and, with
// `invalid_utf8`, byte sequences that are not UTF-8), integers across the
// signed/unsigned line, doubles.
inline nlohmann::json random_json(std::mt19937_64& rng, int depth, bool invalid_utf8 = false) {
  using nlohmann::json;
  std::uniform_int_distribution<int> kind(0, depth > 5 ? 5 : 7);
  switch (kind(rng)) {
    case 0: return nullptr;
    case 1: return rng() % 2 == 0;
    case 2: {
      const std::int64_t values[] = {0, 1, -1, 42, -42, INT64_MAX, INT64_MIN, 1LL << 53};
      return values[rng() % 8];
    }
    case 3: return static_cast<std::uint64_t>(rng());
    case 4: {
      const double values[] = {0.5, -0.0, 1e-300, 1.7976931348623157e308, 3.141592653589793, 1e21, -2.5e-7, 100.0};
      return values[rng() % 8];
    }
    case 5: {
      const std::string values[] = {"",
                                    "plain",
                                    "quote \" slash \\ / tab \t nl \n cr \r bs \b ff \f",
                                    "é ü 中文 😀 \xF4\x8F\xBF\xBF",
                                    "\x01\x1f ctl \x7f del",
                                    "\\u0000 inside",
                                    std::string("nul\0byte", 8),
                                    "bad \xff byte",
                                    "cut \xE4\xB8 sequence",
                                    "surrogate \xED\xA0\x80 and overlong \xC0\xAF and \xF5\x80\x80\x80"};
      const std::size_t n = invalid_utf8 ? 10 : 7;
      return values[rng() % n] + std::to_string(rng() % 3);
    }
    case 6: {
      json a = json::array();
      for (int n = static_cast<int>(rng() % 5); n > 0; --n) a.push_back(random_json(rng, depth + 1, invalid_utf8));
      return a;
    }
    default: {
      json o = json::object();
      for (int n = static_cast<int>(rng() % 5); n > 0; --n) {
        o["k" + std::to_string(rng() % 7)] = random_json(rng, depth + 1, invalid_utf8);
      }
      return o;
    }
  }
}

}  // namespace switchboard::testing
