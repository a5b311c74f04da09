// read_json_within (json_read.h): the engine's JsonDom, bounded, copied into
// nlohmann::json; and a body's value count.
#include "api/json_read.h"

#include <bit>
#include <cstdint>
#include <optional>

#include "json/read.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace switchboard::gateway::detail {

bool read_json_within(std::string_view text, std::size_t max_depth, nlohmann::json& out) {
  const std::optional<JsonDom> dom = JsonDom::parse(text);
  if (!dom || !nests_within(dom->root(), max_depth)) return false;
  out = to_json(dom->root());
  return true;
}

std::int64_t count_json_values(std::string_view text) {
  std::int64_t values = 0;
  bool in_string = false;
  const char* p = text.data();
  const char* const end = p + text.size();
#if defined(__SSE2__)
  // A block at a time: outside a string, its structural bytes before its
  // first quote; inside, a jump to its first quote or backslash.

  // The set bits of a block's 16-bit mask, without a library call where
  // the target has no POPCNT instruction (std::popcount calls libgcc there).
  const auto count16 = [](unsigned m) {
    m = m - ((m >> 1) & 0x5555u);
    m = (m & 0x3333u) + ((m >> 2) & 0x3333u);
    m = (m + (m >> 4)) & 0x0F0Fu;
    return static_cast<std::int64_t>((m + (m >> 8)) & 0x1Fu);
  };
  const auto bits = [](__m128i v, char c) {
    return static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(c))));
  };
  while (end - p >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const unsigned quotes = bits(v, '"');
    if (!in_string) {
      const unsigned structural = bits(v, '{') | bits(v, '[') | bits(v, ',');
      if (quotes == 0) {
        values += count16(structural);
        p += 16;
        continue;
      }
      const int q = std::countr_zero(quotes);
      values += count16(structural & ((1u << q) - 1));
      p += q + 1;
      in_string = true;
      continue;
    }
    const unsigned backslashes = bits(v, '\\');
    const unsigned stops = quotes | backslashes;
    if (stops == 0) {
      p += 16;
      continue;
    }
    const int k = std::countr_zero(stops);
    if ((backslashes >> k) & 1u) {
      p = end - p > k + 2 ? p + k + 2 : end;  // past the escaped byte
    } else {
      p += k + 1;
      in_string = false;
    }
  }
#endif
  for (std::size_t i = static_cast<std::size_t>(p - text.data()); i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '{' || c == '[' || c == ',') {
      ++values;
    } else if (c == '"') {
      in_string = true;
    }
  }
  return values;
}

}  // namespace switchboard::gateway::detail
