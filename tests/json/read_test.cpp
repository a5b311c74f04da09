// The two simdjson readers, the engine's read_json (json/read.h) and the
// gateway's read_json_within (api/json_read.h): the tree nlohmann's own
// reader builds for the same text, node type for node type (nlohmann's ==
// compares numbers across types, so the check here does not use it), for
// valid, edge-case, invalid, deep, large and randomly generated and mutated
// texts; and the gateway's declines what it must leave to nlohmann.
#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/json_read.h"
#include "support/random_json.h"
#include "json/read.h"

using nlohmann::json;
using switchboard::read_json;

namespace {

// True when `a` and `b` are the same tree with the same node types and the
// same members in the same order.
bool same(const json& a, const json& b) {
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case json::value_t::object: {
      if (a.size() != b.size()) return false;
      auto i = a.begin();
      auto j = b.begin();
      for (; i != a.end(); ++i, ++j) {
        if (i.key() != j.key() || !same(i.value(), j.value())) return false;
      }
      return true;
    }
    case json::value_t::array:
      if (a.size() != b.size()) return false;
      for (std::size_t k = 0; k < a.size(); ++k) {
        if (!same(a[k], b[k])) return false;
      }
      return true;
    case json::value_t::number_float: {
      const double x = a.get<double>();
      const double y = b.get<double>();
      return x == y && std::signbit(x) == std::signbit(y);
    }
    case json::value_t::discarded:
      return true;
    default:
      return a == b;
  }
}

json reference(const std::string& text) { return json::parse(text, nullptr, /*allow_exceptions=*/false); }

// Both readers against nlohmann's: the engine's gives the same verdict; the
// gateway's takes every valid text nested within its bound, declines every
// invalid one, and what it takes is the same tree.
void check_same_as_nlohmann(const std::string& text) {
  const json expected = reference(text);
  const json got = read_json(text);
  INFO("text: " << text.substr(0, 200));
  CHECK(got.is_discarded() == expected.is_discarded());
  CHECK(same(got, expected));

  json within;
  const bool taken = switchboard::gateway::detail::read_json_within(text, 64, within);
  if (expected.is_discarded()) {
    CHECK_FALSE(taken);
  } else if (taken) {
    CHECK(same(within, expected));
  }
}

}  // namespace

TEST_SUITE("json_read") {

TEST_CASE("a provider's answer reads as nlohmann reads it") {
  check_same_as_nlohmann(R"({
  "id": "chatcmpl-1", "object": "chat.completion", "created": 1763790000, "model": "gpt-5-mini",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi \"there\"\n", "refusal": null,
               "annotations": []}, "logprobs": null, "finish_reason": "stop"}],
  "usage": {"prompt_tokens": 16, "completion_tokens": 16, "total_tokens": 32,
            "prompt_tokens_details": {"cached_tokens": 4}}, "temperature": 0.7, "score": -1.5e-3
})");
}

TEST_CASE("edge cases: numbers, strings, duplicates, whitespace") {
  const std::vector<std::string> cases = {
      "0", "-1", "1.0", "1e2", "-0.0", "[-0.0]", "1E-2", "0.1", "9223372036854775807", "9223372036854775808",
      "18446744073709551615", "-9223372036854775808", "[1e-400]", "true", "false", "null", "\"\"",
      R"({"a":1,"a":2})", R"({"a":{"b":1},"a":[2]})", R"({"b":1,"a":2,"c":3})", "  {\"a\" : [ 1 , 2 ] }  \n",
      R"(["\u00e9\ud83d\ude00\u0000\/"])", "\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\"", R"({"":""})",
      "[[[[[[[[[[]]]]]]]]]]", "{}", "[]"};
  for (const std::string& text : cases) check_same_as_nlohmann(text);
}

TEST_CASE("\"-0\" is the one difference: unsigned 0, written the same") {
  const json got = read_json("-0");
  CHECK(got.is_number_integer());
  CHECK(got.get<std::int64_t>() == 0);
  CHECK(got.dump() == reference("-0").dump());
}

TEST_CASE("what simdjson refuses gets nlohmann's verdict") {
  const std::vector<std::string> cases = {
      "",        " ",          "[1,]",     "{\"a\":}",   "[01]",          "1e400",  "-1e400",
      "[1] x",   "{\"a\" 1}",  "\"x\ny\"", "\"\\ud800\"", "\"\\ud800x\"", "\"\xff\"", "\"\xc3\"",
      "nul",     "[1,2",       "{\"a\":1", "'a'",        "[1 2]",         "/*c*/1", "+1",
      "18446744073709551616",  "-9223372036854775809",   "123456789012345678901234567890",
      "\xEF\xBB\xBF{\"bom\":1}",  // nlohmann skips a byte order mark
      "[.5]",    "[5.]",       "[1e]",     "NaN",        "Infinity"};
  for (const std::string& text : cases) check_same_as_nlohmann(text);
}

TEST_CASE("nesting past kFastDepth, and past anything recursion would survive") {
  for (std::size_t depth : {switchboard::kFastDepth - 1, switchboard::kFastDepth, switchboard::kFastDepth + 1,
                            std::size_t{5000}}) {
    const std::string text = std::string(depth, '[') + "1" + std::string(depth, ']');
    const json got = read_json(text);
    REQUIRE_FALSE(got.is_discarded());
    const json* inner = &got;
    std::size_t seen = 0;
    while (inner->is_array()) {
      inner = &(*inner)[0];
      ++seen;
    }
    CHECK(seen == depth);
    CHECK(*inner == 1);
  }
}

TEST_CASE("the gateway's reader takes nesting up to its bound, and no deeper than kFastReadDepth") {
  using switchboard::gateway::detail::kFastReadDepth;
  using switchboard::gateway::detail::read_json_within;
  const auto nested = [](std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  json out;
  CHECK(read_json_within(nested(8), 8, out));
  CHECK(same(out, reference(nested(8))));
  CHECK_FALSE(read_json_within(nested(9), 8, out));
  CHECK(read_json_within(R"({"a":{"b":[1]}})", 3, out));
  CHECK_FALSE(read_json_within(R"({"a":{"b":[1]}})", 2, out));
  CHECK(read_json_within(nested(kFastReadDepth), 10000, out));
  CHECK_FALSE(read_json_within(nested(kFastReadDepth + 1), 10000, out));  // left to nlohmann, which does not recurse
  CHECK(read_json_within("[1]", 64, out));
  CHECK(read_json_within("\"text\"", 64, out));
  CHECK(out == "text");
  CHECK_FALSE(read_json_within("18446744073709551616", 64, out));  // nlohmann reads it as a double
  CHECK_FALSE(read_json_within("\xEF\xBB\xBF{}", 64, out));       // nlohmann skips the byte order mark
}

TEST_CASE("a large body, past the thread's kept parser, and a small one after it") {
  json big = json::object();
  for (int i = 0; i < 5000; ++i) big["key" + std::to_string(i)] = std::string(40, static_cast<char>('a' + i % 26));
  const std::string text = big.dump();
  REQUIRE(text.size() > 64 * 1024);
  check_same_as_nlohmann(text);
  check_same_as_nlohmann(R"({"small":true})");
}

TEST_CASE("random trees, and the same texts with a byte changed, read as nlohmann reads them") {
  std::mt19937_64 rng(20261205);
  int invalid = 0;
  for (int round = 0; round < 400; ++round) {
    const std::string text = switchboard::testing::random_json(rng, 0).dump(round % 2 == 0 ? -1 : 2);
    check_same_as_nlohmann(text);
    json within;
    CHECK(switchboard::gateway::detail::read_json_within(text, 64, within));  // valid and shallow: taken
    std::string mutated = text;
    if (mutated.empty()) continue;
    mutated[rng() % mutated.size()] = "{}[]\",:0-e.\\ \x80x"[rng() % 16];
    check_same_as_nlohmann(mutated);
    invalid += reference(mutated).is_discarded() ? 1 : 0;
  }
  CHECK(invalid > 50);  // the mutations did reach the invalid path
}

TEST_CASE("count_json_values: structural bytes outside strings, as a byte-by-byte reading counts them") {
  // The reference: one byte at a time, a backslash in a string escaping the
  // byte after it, whatever it is; the counter reads 16 bytes at a time, so
  // every kind of byte is tried at every place of a block, and across blocks.
  const auto reference = [](std::string_view text) {
    std::int64_t values = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
      const char c = text[i];
      if (in_string) {
        if (c == '\\') {
          ++i;
        } else if (c == '"') {
          in_string = false;
        }
      } else if (c == '{' || c == '[' || c == ',') {
        ++values;
      } else if (c == '"') {
        in_string = true;
      }
    }
    return values;
  };
  using switchboard::gateway::detail::count_json_values;
  CHECK(count_json_values("") == 0);
  CHECK(count_json_values(R"({"a":[1,2,{"b":"x,y{["}],"c":"\\",")") == 7);
  CHECK(count_json_values(R"(["\"],[",1])") == 2);  // an escaped quote does not end the string
  const std::string alphabet = "\"\\{[,a }]:";
  std::uint64_t state = 5;
  const auto next = [&state] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::size_t>(state >> 33);
  };
  for (int i = 0; i < 20000; ++i) {
    std::string text(next() % 70, ' ');
    for (char& c : text) c = alphabet[next() % alphabet.size()];
    CAPTURE(text);
    REQUIRE(count_json_values(text) == reference(text));
  }
  // Each special byte at every place of three blocks, inside and outside a string.
  for (const char special : alphabet) {
    for (const std::string& around : {std::string(48, 'a'), std::string(48, ','), "\"" + std::string(46, 'a') + "\""}) {
      for (std::size_t at = 0; at < around.size(); ++at) {
        std::string text = around;
        text[at] = special;
        for (const std::string& whole : {text, "[" + text, "\"" + text, text + "\\"}) {
          CAPTURE(whole);
          REQUIRE(count_json_values(whole) == reference(whole));
        }
      }
    }
  }
  // An agent's body: code with an escape every few bytes, 60 KB.
  std::string code = R"({"messages":[)";
  for (int turn = 0; turn < 100; ++turn) {
    code += R"({"role":"user","content":"def f(x):\n    return x * 2  # \"doubled\"\n\\"},)";
  }
  code += "{}]}";
  CHECK(count_json_values(code) == reference(code));
  CHECK(count_json_values(code) == 100 * 3 + 3);  // '{' and two ',' a turn; "{[" and the last '{'

}

}  // TEST_SUITE
