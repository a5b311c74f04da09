// SHA-256 (util/sha256.h): the standard's test vectors at once and fed in
// pieces, a digest read midway that leaves the hash going, digits written in
// place, and contexts handed from one hash to the next.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

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

TEST_CASE("Sha256::write_hex writes the digest's first digits and nothing past them") {
  Sha256 h;
  h.update("abc");
  for (std::size_t digits : {0, 1, 12, 16, 63, 64}) {
    std::string out(70, '#');
    h.write_hex(out.data(), digits);
    CHECK(out.substr(0, digits) == kAbc.substr(0, digits));
    CHECK(out.substr(digits) == std::string(70 - digits, '#'));
  }
}

TEST_CASE("a hash that takes a context an earlier one gave back starts from nothing") {
  // Each round's hashes give their contexts back, dirty, for the next round;
  // more are alive at once than a thread keeps.
  for (int round = 0; round < 3; ++round) {
    std::vector<std::unique_ptr<Sha256>> alive;
    for (int i = 0; i < 6; ++i) {
      alive.push_back(std::make_unique<Sha256>());
      CHECK(alive.back()->hex() == kEmpty);
      alive.back()->update(i % 2 == 0 ? "abc" : kTwoBlocks);
    }
    for (int i = 0; i < 6; ++i) CHECK(alive[static_cast<std::size_t>(i)]->hex() == (i % 2 == 0 ? kAbc : kTwoBlocksHex));
  }
  // A hash destroyed midway, then a new one.
  { Sha256 left; left.update("left half-way"); }
  Sha256 next;
  next.update("abc");
  CHECK(next.hex() == kAbc);
}
