// One reading vocabulary over a tree and a DOM (json/node.h): for the
// same text every function answers the same on read_json's tree and on
// JsonDom's elements, duplicates, numbers at their edges and escapes
// included; and a JsonDom read while another lives keeps both intact.
#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "json/dump.h"
#include "json/node.h"
#include "json/read.h"

using namespace switchboard;
namespace node = switchboard::json_node;

namespace {

// What the vocabulary says of `v`, as one line, recursing into members
// named in `keys` and into array items.
template <typename Node>
std::string describe(const Node& v, const std::vector<const char*>& keys) {
  std::string out;
  out += node::is_null(v) ? "null " : "";
  out += node::is_object(v) ? "object " : "";
  out += node::is_array(v) ? "array " : "";
  if (node::is_string(v)) out += "string:" + std::string(node::string_of(v)) + " ";
  if (node::is_integer(v)) {
    out += "integer:" + std::to_string(node::int_of(v)) + " ";
    if (node::is_unsigned(v)) out += "unsigned:" + std::to_string(node::uint_of(v)) + " ";
  }
  out += "text:" + node::text_of(v) + " ";
  out += "tree:" + dump_json(node::tree_of(v)) + " ";
  if (node::is_object(v)) {
    for (const char* key : keys) {
      const auto m = node::member(v, key);
      out += std::string("[") + key + "]=" + (m ? "{" + describe(*m, keys) + "}" : "absent") + " ";
      out += "string_at:" + node::string_at(v, key) + " ";
      out += node::object_at(v, key) ? "has-object " : "";
      out += node::array_at(v, key) ? "has-array " : "";
    }
  }
  if (node::is_array(v)) {
    const auto f = node::first(v);
    out += f ? "first{" + describe(*f, keys) + "} " : "empty ";
    for (const auto& item : node::items(v)) out += "item{" + describe(item, keys) + "} ";
  }
  return out;
}

}  // namespace

TEST_CASE("the vocabulary reads a tree and a DOM alike") {
  const std::vector<const char*> keys = {"a", "b", "s", "n", "missing", "arr", "obj"};
  const char* texts[] = {
      R"({"a": 1, "a": 2})",  // the last duplicate wins
      R"({"n": -9223372036854775808, "b": 9223372036854775807, "s": "x"})",
      R"({"n": 18446744073709551615, "b": 9223372036854775808})",  // past int64: unsigned
      R"({"n": 0, "b": -0, "a": -1})",
      R"({"n": 1.0, "b": 1e2, "a": -0.5})",  // fractions and exponents are not integers
      R"({"s": "t\u00e9\"\\\n\u0001 \ud83d\ude00", "a": null, "b": true})",
      R"({"arr": [], "obj": {}, "a": [1, "two", [3], {"a": 4}], "b": {"s": "in", "arr": [null]}})",
      R"([{"a": 1}, 2, "three"])",
      R"("just a string")",
      R"(42)",
      R"({"obj": {"obj": {"obj": {"a": [[[[[]]]]]}}}})",
  };
  for (const char* text : texts) {
    CAPTURE(std::string(text));
    const nlohmann::json tree = read_json(text);
    REQUIRE_FALSE(tree.is_discarded());
    const std::optional<JsonDom> dom = JsonDom::parse(text);
    REQUIRE(dom.has_value());
    CHECK(describe(tree, keys) == describe(dom->root(), keys));
    CHECK(node::tree_of(dom->root()) == tree);
  }
}

TEST_CASE("first() of anything but a non-empty array is none, on both") {
  for (const char* text : {R"({"a": [1]})", R"("abc")", "7", "null", "[]"}) {
    CAPTURE(std::string(text));
    const nlohmann::json tree = read_json(text);
    const std::optional<JsonDom> dom = JsonDom::parse(text);
    REQUIRE(dom.has_value());
    CHECK_FALSE(node::first(tree));
    CHECK_FALSE(node::first(dom->root()));
  }
}

TEST_CASE("JsonDom refuses what simdjson refuses, and read_json then gives nlohmann's verdict") {
  for (const char* text : {"{", "", "[1,]", "{\"a\": 123456789012345678901234567890}", "\"\xff\""}) {
    CAPTURE(std::string(text));
    CHECK_FALSE(JsonDom::parse(text).has_value());
    const nlohmann::json verdict = nlohmann::json::parse(text, nullptr, false);
    const nlohmann::json read = read_json(text);
    CHECK(read.is_discarded() == verdict.is_discarded());
    if (!verdict.is_discarded()) CHECK(read == verdict);  // the big integer, as a double
  }
}

TEST_CASE("a JsonDom read while another lives on the same thread leaves both whole") {
  std::optional<JsonDom> outer = JsonDom::parse(R"({"name": "outer", "items": [1, 2, 3]})");
  REQUIRE(outer.has_value());
  {
    std::optional<JsonDom> inner = JsonDom::parse(R"({"name": "inner", "items": []})");
    REQUIRE(inner.has_value());
    // read_json in between, too (it reads through a JsonDom of its own).
    CHECK(read_json(R"({"name": "third"})")["name"] == "third");
    CHECK(node::string_at(inner->root(), "name") == "inner");
    CHECK(node::string_at(outer->root(), "name") == "outer");
  }
  CHECK(node::string_at(outer->root(), "name") == "outer");
  CHECK(node::text_of(*node::member(outer->root(), "items")) == "[1,2,3]");
  // The thread's parser is free again once both are gone.
  outer.reset();
  std::optional<JsonDom> again = JsonDom::parse(R"({"name": "again"})");
  REQUIRE(again.has_value());
  CHECK(node::string_at(again->root(), "name") == "again");
}

TEST_CASE("a subtree nested past the copy's depth still comes out as its tree") {
  std::string deep;
  for (std::size_t i = 0; i < kFastDepth + 10; ++i) deep += "[";
  deep += "1";
  for (std::size_t i = 0; i < kFastDepth + 10; ++i) deep += "]";
  const std::string text = R"({"deep": )" + deep + "}";
  const std::optional<JsonDom> dom = JsonDom::parse(text);
  REQUIRE(dom.has_value());
  const auto member = node::member(dom->root(), "deep");
  REQUIRE(member.has_value());
  CHECK(node::tree_of(*member) == nlohmann::json::parse(deep));
  CHECK(node::text_of(*member) == deep);
}
