// Lower-case hexadecimal, written without printf: ids and digests, some of
// them on every request.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace switchboard::detail {

inline constexpr char kHexDigits[] = "0123456789abcdef";

// The `digits` low hex digits of `value`, zero-padded, at out[0, digits).
inline void put_hex(char* out, std::uint64_t value, int digits) {
  for (int i = digits - 1; i >= 0; --i, value >>= 4) out[i] = kHexDigits[value & 0xf];
}

// `value` as 16 hex digits.
inline std::string hex64(std::uint64_t value) {
  std::string out(16, '0');
  put_hex(out.data(), value, 16);
  return out;
}

// The first `digits` hex digits of data's bytes (two a byte, the high half
// first) at out[0, digits). REQUIRES: data holds (digits + 1) / 2 bytes.
inline void put_hex_bytes(char* out, const unsigned char* data, std::size_t digits) {
  for (std::size_t i = 0; i < digits; ++i) out[i] = kHexDigits[i % 2 == 0 ? data[i / 2] >> 4 : data[i / 2] & 0xf];
}

// Two hex digits a byte of data[0, size).
inline std::string hex_of_bytes(const unsigned char* data, std::size_t size) {
  std::string out(2 * size, '0');
  put_hex_bytes(out.data(), data, 2 * size);
  return out;
}

}  // namespace switchboard::detail
