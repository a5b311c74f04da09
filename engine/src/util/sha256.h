// SHA-256 of a byte string as lower-case hex (OpenSSL's EVP interface).
#pragma once

#include <string>
#include <string_view>

namespace switchboard::detail {

std::string sha256_hex(std::string_view data);

}  // namespace switchboard::detail
