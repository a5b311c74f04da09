// JsonWriter (util/json_writer.h): its text is nlohmann::json's for the same
// values, byte for byte, the tricky strings included; and a ledger record
// written with it reads back as it was.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/json_writer.h"

using nlohmann::ordered_json;
using switchboard::JsonWriter;

namespace {

std::string reference(const ordered_json& j) { return j.dump(-1, ' ', false, ordered_json::error_handler_t::replace); }

}  // namespace

TEST_SUITE("json_writer") {

TEST_CASE("strings are escaped as nlohmann escapes them, invalid UTF-8 replaced") {
  const std::vector<std::string> cases = {
      "",
      "plain ascii, with spaces and punctuation: {}[]:,",
      "quote \" and backslash \\",
      "controls \b\f\n\r\t and \x01\x1f and DEL \x7f",
      "utf-8: h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80",
      "invalid: \xff\xfe then \xc3 cut",
      "overlong \xc0\xaf and a lone continuation \x80",
      std::string("nul \0 inside", 12),
  };
  for (const std::string& s : cases) {
    std::string out;
    JsonWriter::append_string(out, s);
    CHECK_MESSAGE(out == reference(ordered_json(s)), "for: ", ordered_json(s).dump(-1, ' ', true, ordered_json::error_handler_t::replace));
  }
}

TEST_CASE("an object with every kind of field matches nlohmann's dump of the same object") {
  const std::vector<std::string> names = {"a", "b\"c", "\xe2\x82\xac"};
  std::string out;
  JsonWriter w(out);
  w.string("s", "text\n")
      .integer("i", -42)
      .integer("big", std::numeric_limits<std::int64_t>::max())
      .integer("small", std::numeric_limits<std::int64_t>::min())
      .number("d", 0.1)
      .number("e", 1e300)
      .number("nan", std::nan(""))
      .boolean("t", true)
      .boolean("f", false)
      .null("n")
      .strings("list", names)
      .strings("empty", {});
  w.begin_object("nested").integer("x", 1).begin_object("deeper").end().string("y", "z").end();
  w.raw("raw", R"({"k":[1,2]})");
  w.end();

  ordered_json j = ordered_json::object();
  j["s"] = "text\n";
  j["i"] = -42;
  j["big"] = std::numeric_limits<std::int64_t>::max();
  j["small"] = std::numeric_limits<std::int64_t>::min();
  j["d"] = 0.1;
  j["e"] = 1e300;
  j["nan"] = std::nan("");
  j["t"] = true;
  j["f"] = false;
  j["n"] = nullptr;
  j["list"] = names;
  j["empty"] = std::vector<std::string>{};
  j["nested"] = ordered_json::object();
  j["nested"]["x"] = 1;
  j["nested"]["deeper"] = ordered_json::object();
  j["nested"]["y"] = "z";
  j["raw"] = ordered_json::parse(R"({"k":[1,2]})");
  CHECK(out == reference(j));
  CHECK(ordered_json::parse(out) == ordered_json::parse(reference(j)));
}

TEST_CASE("a field is written the same whether it takes one append or several: value and key lengths, every byte") {
  // Short plain values and keys up to 64 bytes take one append; a longer
  // key or value, or one byte needing care anywhere, the general path.
  const std::vector<std::string> keys = {"k", std::string(64, 'k'), std::string(65, 'k'), std::string(100, 'k')};
  std::vector<std::string> values;
  for (std::size_t n : {0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 80}) values.push_back(std::string(n, 'v'));
  for (int byte = 0; byte < 256; ++byte) {
    for (std::size_t at : {0, 7, 8, 12, 63}) {
      std::string v(at < 12 ? 13 : 64, 'v');
      v[at] = static_cast<char>(byte);
      values.push_back(std::move(v));
    }
  }
  for (const std::string& key : keys) {
    std::string second = key;  // the same length, another name: a field after the first
    second.back() = 's';
    std::string third = key;
    third.back() = 't';
    for (std::size_t i = 0; i < values.size(); ++i) {
      CAPTURE(key.size());
      CAPTURE(i);
      std::string out;
      const std::int64_t n = -1'000'000'007 * static_cast<std::int64_t>(i);
      JsonWriter(out).string(key, values[i]).string(second, values[i]).integer(third, n).end();
      ordered_json j = ordered_json::object();
      j[key] = values[i];
      j[second] = values[i];
      j[third] = n;
      CHECK(out == reference(j));
    }
  }
}

TEST_CASE("appends to what the string already holds") {
  std::string out = "prefix ";
  JsonWriter(out).integer("a", 1).end();
  CHECK(out == R"(prefix {"a":1})");
}

}  // TEST_SUITE
