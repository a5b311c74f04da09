// dump_json (json_dump.h): bytes that need no escape are found a block (16
// bytes with SSE2, else 8) at a time and copied a block at a time through a
// buffer on the stack; escapes and UTF-8 checks byte by byte only where they
// are needed, each found from its block's mask.
#include "json/dump.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstdint>
#include <cstddef>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace switchboard {
namespace {

using nlohmann::json;

std::string nlohmann_dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// The length of the well-formed UTF-8 sequence (RFC 3629: no overlong
// forms, no surrogates, nothing past U+10FFFF) that starts `s` at `i`, a
// byte of 0x80 or more; 0 when it is not one.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b = at(i);
  const std::size_t left = s.size() - i;
  const auto cont = [&](std::size_t k) { return (at(k) & 0xC0) == 0x80; };
  if (b >= 0xC2 && b <= 0xDF) return left >= 2 && cont(i + 1) ? 2 : 0;
  if (b >= 0xE0 && b <= 0xEF) {
    if (left < 3 || !cont(i + 1) || !cont(i + 2)) return 0;
    if (b == 0xE0 && at(i + 1) < 0xA0) return 0;   // overlong
    if (b == 0xED && at(i + 1) >= 0xA0) return 0;  // a surrogate
    return 3;
  }
  if (b >= 0xF0 && b <= 0xF4) {
    if (left < 4 || !cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
    if (b == 0xF0 && at(i + 1) < 0x90) return 0;   // overlong
    if (b == 0xF4 && at(i + 1) >= 0x90) return 0;  // past U+10FFFF
    return 4;
  }
  return 0;
}

// The bytes of the 8 in `w` that may need more than a copy, as their high
// bits: a control character (below 0x20), '"', '\\', or a byte of 0x80 or
// more (UTF-8 to check). Zero exactly when none does (the bit tricks of "Bit
// Twiddling Hacks": a byte below n, n <= 128; a zero byte after an XOR); a
// borrow can also flag a byte above a flagged one, but the lowest flagged
// byte always needs care.
[[maybe_unused]] std::uint64_t care_mask(std::uint64_t w) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
  const std::uint64_t quote = w ^ (kOnes * '"');
  const std::uint64_t backslash = w ^ (kOnes * '\\');
  const std::uint64_t control = (w - kOnes * 0x20) & ~w;
  const std::uint64_t is_quote = (quote - kOnes) & ~quote;
  const std::uint64_t is_backslash = (backslash - kOnes) & ~backslash;
  return (w | control | is_quote | is_backslash) & kHigh;
}

// The scan's block: kBlock bytes are looked at together, and first_care(p)
// is the place (0..kBlock-1) in p[0..kBlock) of the first byte that needs
// care (as care_mask), or kBlock when none does. SSE2 (every x86-64) takes
// 16 bytes: one signed compare finds both the control characters and the
// bytes of 0x80 or more (negative as signed); elsewhere 8, with care_mask.
#if defined(__SSE2__)
constexpr std::size_t kBlock = 16;
std::size_t first_care(const char* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i care = _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                                    _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                                 _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));
  const auto mask = static_cast<unsigned>(_mm_movemask_epi8(care));
  return mask == 0 ? kBlock : static_cast<std::size_t>(std::countr_zero(mask));
}
#else
constexpr std::size_t kBlock = 8;
// Whether a byte needs more than a copy (care_mask's bytes).
bool needs_care(unsigned char c) { return c < 0x20 || c >= 0x80 || c == '"' || c == '\\'; }
std::size_t first_care(const char* p) {
  std::uint64_t word;
  std::memcpy(&word, p, sizeof word);
  const std::uint64_t mask = care_mask(word);
  if (mask == 0) return kBlock;
  if constexpr (std::endian::native == std::endian::little) {
    return static_cast<std::size_t>(std::countr_zero(mask)) / 8;  // the first byte in memory is the lowest
  }
  std::size_t k = 0;
  while (!needs_care(static_cast<unsigned char>(p[k]))) ++k;
  return k;
}
#endif

// Appends the escaped text of valid-UTF-8 `s`; false (with `out` partly
// written) at the first byte that is not valid UTF-8. The text goes through
// a buffer on the stack, appended to `out` when nearly full: each block is
// copied into it whole, and the buffer's end then moves past the block's
// plain bytes only, so the byte that needs care (most text has none in most
// blocks; code has an escape every line or so) is written over with its
// escape or its checked UTF-8 sequence. No call per run, none per escape.
bool append_escaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  constexpr std::size_t kRoom = 1024;
  // Past kRoom: a block's copy (kBlock) and then an escape (6 bytes).
  char buf[kRoom + kBlock + 8];
  std::size_t n = 0;  // bytes in buf
  const char* p = s.data();
  const char* const end = p + s.size();
  while (p < end) {
    if (n > kRoom) {
      out.append(buf, n);
      n = 0;
    }
    std::size_t plain;
    if (static_cast<std::size_t>(end - p) >= kBlock) {
      std::memcpy(buf + n, p, kBlock);
      plain = first_care(p);
    } else {  // the last bytes, in a block padded with plain spaces
      const auto left = static_cast<std::size_t>(end - p);
      char last[kBlock];
      std::memset(last, ' ', kBlock);
      std::memcpy(last, p, left);
      std::memcpy(buf + n, last, kBlock);
      plain = std::min(first_care(last), left);
    }
    n += plain;
    p += plain;
    if (p == end || plain == kBlock) continue;
    const auto c = static_cast<unsigned char>(*p);  // the first byte that needs care
    if (c >= 0x80) {
      const std::size_t len = utf8_sequence(std::string_view(p, static_cast<std::size_t>(end - p)), 0);
      if (len == 0) return false;
      for (std::size_t k = 0; k < len; ++k) buf[n++] = *p++;
      continue;
    }
    ++p;
    buf[n++] = '\\';
    switch (c) {
      case '"': buf[n++] = '"'; break;
      case '\\': buf[n++] = '\\'; break;
      case '\b': buf[n++] = 'b'; break;
      case '\f': buf[n++] = 'f'; break;
      case '\n': buf[n++] = 'n'; break;
      case '\r': buf[n++] = 'r'; break;
      case '\t': buf[n++] = 't'; break;
      default:
        buf[n++] = 'u';
        buf[n++] = '0';
        buf[n++] = '0';
        buf[n++] = kHex[c >> 4];
        buf[n++] = kHex[c & 0xF];
    }
  }
  out.append(buf, n);
  return true;
}

template <typename Int>
void append_integer(std::string& out, Int n) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, end);
}

void append(std::string& out, const json& j) {
  switch (j.type()) {
    case json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, value] : j.get_ref<const json::object_t&>()) {
        if (!first) out += ',';
        first = false;
        append_json_string(out, key);
        out += ':';
        append(out, value);
      }
      out += '}';
      return;
    }
    case json::value_t::array: {
      out += '[';
      bool first = true;
      for (const json& item : j.get_ref<const json::array_t&>()) {
        if (!first) out += ',';
        first = false;
        append(out, item);
      }
      out += ']';
      return;
    }
    case json::value_t::string:
      append_json_string(out, j.get_ref<const json::string_t&>());
      return;
    case json::value_t::number_integer:
      append_integer(out, j.get<json::number_integer_t>());
      return;
    case json::value_t::number_unsigned:
      append_integer(out, j.get<json::number_unsigned_t>());
      return;
    case json::value_t::boolean:
      out += j.get<bool>() ? "true" : "false";
      return;
    case json::value_t::null:
      out += "null";
      return;
    case json::value_t::number_float:
    case json::value_t::binary:
    case json::value_t::discarded:
      out += nlohmann_dump(j);
      return;
  }
}

}  // namespace

bool json_plain(std::string_view value) {
  const char* p = value.data();
  const char* const end = p + value.size();
  for (; end - p >= static_cast<std::ptrdiff_t>(kBlock); p += kBlock) {
    if (first_care(p) != kBlock) return false;
  }
  if (p == end) return true;
  char last[kBlock];  // the last bytes, padded with plain spaces
  std::memset(last, ' ', kBlock);
  std::memcpy(last, p, static_cast<std::size_t>(end - p));
  return first_care(last) == kBlock;
}

void append_json_string(std::string& out, std::string_view value) {
  const std::size_t start = out.size();
  out += '"';
  if (append_escaped(out, value)) {
    out += '"';
    return;
  }
  out.resize(start);
  out += nlohmann_dump(json(value));  // invalid UTF-8: U+FFFD nlohmann's way
}

std::string dump_json(const json& value) {
  std::string out;
  append(out, value);
  return out;
}

void append_json(std::string& out, const json& value) { append(out, value); }

}  // namespace switchboard
