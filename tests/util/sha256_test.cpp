// SHA-256 (util/sha256.h): the standard's test vectors at once and fed in
// pieces, and a digest read midway that leaves the hash going.
#include <doctest/doctest.h>

#include <string>

#include "util/sha256.h"

using switchboard::detail::Sha256;
using switchboard::detail::sha256_hex;

namespace {

const std::string kEmpty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const std::string kAbc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
// FIPS 180-2's two-block message.
const std::string kTwoBlocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
const std::string kTwoBlocksHex = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";

}  // namespace

TEST_CASE("sha256_hex gives the standard's digests") {
  CHECK(sha256_hex("") == kEmpty);
  CHECK(sha256_hex("abc") == kAbc);
  CHECK(sha256_hex(kTwoBlocks) == kTwoBlocksHex);
}

TEST_CASE("Sha256 fed in pieces gives the digest of the whole, and reading it midway changes nothing") {
  Sha256 empty;
  CHECK(empty.hex() == kEmpty);

  Sha256 h;
  h.update("a");
  CHECK(h.hex() == sha256_hex("a"));
  h.update("");
  h.update("bc");
  CHECK(h.hex() == kAbc);
  CHECK(h.hex() == kAbc);  // reading twice reads the same
  h.update(kTwoBlocks.substr(3));
  CHECK(h.hex() == sha256_hex("abc" + kTwoBlocks.substr(3)));

  // Every split of a long text.
  std::string text;
  for (int i = 0; i < 300; ++i) text += static_cast<char>('a' + i % 26);
  for (std::size_t cut = 0; cut <= text.size(); cut += 37) {
    Sha256 pieces;
    pieces.update(text.substr(0, cut));
    pieces.update(text.substr(cut));
    CHECK(pieces.digest() == switchboard::detail::sha256_digest(text));
  }
}
