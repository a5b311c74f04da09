// dump_json (json_dump.h): runs of bytes that need no escape are appended
// whole, found 8 bytes at a time; escapes and UTF-8 checks byte by byte only
// where they are needed, each found from its word's mask.
#include "util/json_dump.h"

#include <bit>
#include <charconv>
#include <cstdint>
#include <cstring>

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
std::uint64_t care_mask(std::uint64_t w) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
  const std::uint64_t quote = w ^ (kOnes * '"');
  const std::uint64_t backslash = w ^ (kOnes * '\\');
  const std::uint64_t control = (w - kOnes * 0x20) & ~w;
  const std::uint64_t is_quote = (quote - kOnes) & ~quote;
  const std::uint64_t is_backslash = (backslash - kOnes) & ~backslash;
  return (w | control | is_quote | is_backslash) & kHigh;
}

// Appends the escaped text of valid-UTF-8 `s`; false (with `out` partly
// written) at the first byte that is not valid UTF-8. Reads 8 bytes at a
// time and goes straight to the first that needs care (most text, code and
// prose and JSON arguments, has none in most words; code has an escape every
// line or so, and each costs a few steps, not a byte-by-byte walk).
bool append_escaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::size_t run = 0;  // the start of the bytes not yet appended
  std::size_t i = 0;
  while (i < s.size()) {
    if (s.size() - i >= 8) {
      std::uint64_t word;
      std::memcpy(&word, s.data() + i, sizeof word);
      const std::uint64_t mask = care_mask(word);
      if (mask == 0) {
        i += 8;
        continue;
      }
      if constexpr (std::endian::native == std::endian::little) {
        i += static_cast<std::size_t>(std::countr_zero(mask)) / 8;  // the first byte in memory is the lowest
      }
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      const std::size_t n = utf8_sequence(s, i);
      if (n == 0) return false;
      i += n;
      continue;
    }
    out.append(s.data() + run, i - run);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: {
        const char u[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out.append(u, sizeof u);
      }
    }
    run = ++i;
  }
  out.append(s.data() + run, s.size() - run);
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
  std::size_t i = 0;
  for (; i + 8 <= value.size(); i += 8) {
    std::uint64_t word;
    std::memcpy(&word, value.data() + i, sizeof word);
    if (care_mask(word) != 0) return false;
  }
  for (; i < value.size(); ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') return false;
  }
  return true;
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
