// SHA-256 of a byte string as lower-case hex (OpenSSL's EVP interface), at
// once or fed in pieces.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>

namespace switchboard::detail {

std::string sha256_hex(std::string_view data);

// The 32 bytes of the same digest.
std::array<unsigned char, 32> sha256_digest(std::string_view data);

// The digest of bytes fed in pieces. digest()/hex() read the digest of what
// was fed so far and leave the hash going, so one pass over a shared prefix
// serves a hash of the prefix and a hash of the prefix and more. Throws
// std::bad_alloc when OpenSSL cannot make its context.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::string_view data);
  std::array<unsigned char, 32> digest() const;
  std::string hex() const;  // lower-case, 64 digits

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

}  // namespace switchboard::detail
