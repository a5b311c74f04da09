// SHA-256 of a byte string as lower-case hex (OpenSSL's EVP interface).
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace switchboard::detail {

std::string sha256_hex(std::string_view data);

// The 32 bytes of the same digest.
std::array<unsigned char, 32> sha256_digest(std::string_view data);

}  // namespace switchboard::detail
