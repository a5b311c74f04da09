// dump_json (json/dump.h): byte for byte nlohmann's
// dump(-1, ' ', false, replace) of the same tree, for every escape, valid and
// invalid UTF-8 at every place in a string, numbers of every kind, and random
// trees; JsonWriter's strings are the same text.
#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/random_json.h"
#include "json/dump.h"

using nlohmann::json;
using switchboard::dump_json;

namespace {

std::string reference(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

TEST_SUITE("json_dump") {

TEST_CASE("every escape, and UTF-8 valid and invalid, as nlohmann writes them") {
  std::vector<std::string> cases = {"", "plain", "\"", "\\", "/", "\x7f", "é", "中", "😀", "\xF4\x8F\xBF\xBF",
                                    std::string("\0", 1)};
  for (int c = 0; c < 0x20; ++c) cases.push_back("a" + std::string(1, static_cast<char>(c)) + "b");
  // Not UTF-8: a lone continuation, a cut sequence, overlong forms, surrogates, past U+10FFFF, 0xC0/0xC1/0xF5+.
  for (const char* bad : {"\x80", "\xBF", "\xC2", "\xE4\xB8", "\xF0\x9F\x98", "\xC0\xAF", "\xC1\xBF", "\xE0\x80\xAF",
                          "\xE0\x9F\xBF", "\xED\xA0\x80", "\xED\xBF\xBF", "\xF0\x8F\xBF\xBF", "\xF4\x90\x80\x80",
                          "\xF5\x80\x80\x80", "\xFF", "\xFE"}) {
    for (const std::string& around : {std::string(), std::string("x"), std::string("é\"")}) {
      cases.push_back(around + bad);
      cases.push_back(bad + around);
      cases.push_back(around + bad + around);
    }
  }
  for (const std::string& s : cases) {
    CAPTURE(s);
    CHECK(dump_json(json(s)) == reference(json(s)));
    json keyed = json::object();
    keyed[s] = s;
    CHECK(dump_json(keyed) == reference(keyed));
  }
}

TEST_CASE("a byte that needs care is found at every place of a block, and past the last whole block") {
  // append_escaped skips a block (16 bytes, or 8) at a time while none needs care: each kind
  // of byte at every offset of a longer ASCII text, beside its neighbours
  // (0x1f and 0x20, 0x21 and 0x23 around '"', 0x5b and 0x5d around '\\',
  // 0x7f and 0x80), must still be written as nlohmann writes it.
  std::vector<std::string> specials = {"\"", "\\", "\x1f", std::string("\0", 1), "\n", "\x7f", "\x20", "!", "#",
                                       "[", "]", "é", "中", "😀", "\x80", "\xC2", "\xFF", "\xED\xA0\x80"};
  for (const std::string& special : specials) {
    for (std::size_t length : {7, 8, 9, 15, 16, 17, 23, 31, 32, 33, 47, 48}) {
      for (std::size_t at = 0; at < length; ++at) {
        std::string text(length, 'a');
        text.replace(at, 1, special);
        CAPTURE(text);
        CHECK(dump_json(json(text)) == reference(json(text)));
      }
    }
  }
  // Every byte value at every place of one block, beside plain text.
  for (int byte = 0; byte < 256; ++byte) {
    for (std::size_t at = 0; at < 16; ++at) {
      std::string text(28, 'z');
      text[at + 4] = static_cast<char>(byte);
      CAPTURE(byte);
      CHECK(dump_json(json(text)) == reference(json(text)));
    }
  }
}

TEST_CASE("escapes side by side and every few bytes, as code has them, as nlohmann writes them") {
  // The first byte that needs care in a word is found from its mask; the
  // bytes after it are looked at afresh (a borrow can flag a neighbour).
  const std::string alphabet[] = {"\"", "\\", "\n", "\x1f", "\x20", "a", "#", "\x7f", "é", "\t"};
  std::uint64_t state = 7;
  const auto next = [&state] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::size_t>(state >> 33);
  };
  for (int i = 0; i < 3000; ++i) {
    std::string text;
    const std::size_t length = next() % 40;
    for (std::size_t k = 0; k < length; ++k) text += alphabet[next() % std::size(alphabet)];
    CAPTURE(text);
    CHECK(dump_json(json(text)) == reference(json(text)));
  }
  const std::string line = "def f(x):\n    return x * 2  # \"doubled\"\n";
  std::string code;
  for (int i = 0; i < 15; ++i) code += line;
  CHECK(dump_json(json(code)) == reference(json(code)));
}

TEST_CASE("long texts cross the escaper's buffer anywhere: escapes, UTF-8 and plain runs at its end") {
  // append_escaped writes through a 1 KiB buffer on the stack, appended to
  // the output when full: an escape, a UTF-8 sequence (checked or not valid)
  // or a block at every place around that end, and random long texts.
  const std::string specials[] = {"\"", "\n", "\x01", "é", "中", "😀", "\xF0\x9F\x98", "\xFF"};
  for (const std::string& special : specials) {
    for (std::size_t at = 990; at < 1060; ++at) {
      for (const std::size_t length : {at + special.size(), at + 40, std::size_t{2100}}) {
        std::string text(length, 'q');
        text.replace(at, special.size(), special);
        CAPTURE(special);
        CAPTURE(at);
        CHECK(dump_json(json(text)) == reference(json(text)));
      }
    }
  }
  const std::string alphabet[] = {"\"", "\\", "\n", "\x1f", "a", "abcdefghijklmnopq", "é", "中", "😀", "\xC2"};
  std::uint64_t state = 11;
  const auto next = [&state] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::size_t>(state >> 33);
  };
  for (int i = 0; i < 300; ++i) {
    std::string text;
    const std::size_t pieces = next() % 900;
    // Every fifth text may hold the cut sequence "\xC2" (not UTF-8), the rest not.
    const std::size_t kinds = i % 5 == 0 ? std::size(alphabet) : std::size(alphabet) - 1;
    for (std::size_t k = 0; k < pieces; ++k) text += alphabet[next() % kinds];
    CAPTURE(text.size());
    CHECK(dump_json(json(text)) == reference(json(text)));
    std::string appended = "[";
    switchboard::append_json_string(appended, text);
    CHECK(appended == "[" + reference(json(text)));
  }
}

TEST_CASE("json_plain: printable ASCII without quote or backslash, any byte at any place") {
  CHECK(switchboard::json_plain(""));
  CHECK(switchboard::json_plain("gpt-4o-mini 2025-01-01 {}[]:,~"));
  for (int byte = 0; byte < 256; ++byte) {
    const bool plain = byte >= 0x20 && byte < 0x80 && byte != '"' && byte != '\\';
    for (std::size_t size : {1, 7, 8, 9, 15, 16, 17, 19, 32, 33}) {
      for (std::size_t at = 0; at < size; ++at) {
        std::string text(size, 'a');
        text[at] = static_cast<char>(byte);
        CAPTURE(byte);
        CAPTURE(at);
        REQUIRE(switchboard::json_plain(text) == plain);
      }
    }
  }
}

TEST_CASE("numbers, literals and containers as nlohmann writes them") {
  const json cases[] = {json(0),
                        json(-1),
                        json(std::numeric_limits<std::int64_t>::min()),
                        json(std::numeric_limits<std::int64_t>::max()),
                        json(std::numeric_limits<std::uint64_t>::max()),
                        json(0.1),
                        json(-0.0),
                        json(1e300),
                        json(100.0),
                        json(std::numeric_limits<double>::quiet_NaN()),
                        json(true),
                        json(false),
                        json(nullptr),
                        json::array(),
                        json::object(),
                        json::parse(R"({"b":[1,{"c":null}],"a":"x"})"),
                        json::binary({1, 2, 3})};
  for (const json& j : cases) CHECK(dump_json(j) == reference(j));
}

TEST_CASE("random trees, invalid UTF-8 included, as nlohmann writes them") {
  std::mt19937_64 rng(20261205);
  for (int round = 0; round < 500; ++round) {
    const json tree = switchboard::testing::random_json(rng, 0, /*invalid_utf8=*/true);
    CHECK(dump_json(tree) == reference(tree));
  }
}

TEST_CASE("append_json_string appends one string, as dump_json writes it") {
  std::string out = "[";
  switchboard::append_json_string(out, "a\"b\xff");
  CHECK(out == "[" + reference(json("a\"b\xff")));
}

}  // TEST_SUITE
