// SHA-256 of a byte string as lower-case hex (OpenSSL's EVP interface), at
// once or fed in pieces.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX

namespace switchboard::detail {

std::string sha256_hex(std::string_view data);

// The 32 bytes of the same digest.
std::array<unsigned char, 32> sha256_digest(std::string_view data);

// The digest of bytes fed in pieces. digest()/hex() read the digest of what
// was fed so far and leave the hash going, so one pass over a shared prefix
// serves a hash of the prefix and a hash of the prefix and more. Throws
// std::bad_alloc when OpenSSL cannot make its context.
// OpenSSL's contexts are reused: a hash takes the one an earlier hash on its
// thread gave back (a new one allocates twice), so a hash on every request
// allocates only for its digests (one each).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::string_view data);
  std::array<unsigned char, 32> digest() const;
  std::string hex() const;  // lower-case, 64 digits
  // The first `digits` (at most 64) lower-case hex digits of digest() at out[0, digits).
  void write_hex(char* out, std::size_t digits) const;

 private:
  evp_md_ctx_st* ctx_;  // OpenSSL's EVP_MD_CTX, owned
};

}  // namespace switchboard::detail
