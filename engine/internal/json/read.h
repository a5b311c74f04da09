// read_json: JSON text into nlohmann::json, several times faster than
// nlohmann's own reader, for the call path's bodies (a provider's answer,
// each streamed event).
//
// Contract: the result is what json::parse(text, nullptr, false) returns for
// the same text: the same tree (the last of duplicate keys wins, a
// non-negative integer is unsigned, a negative one signed, any number with a
// fraction or exponent a double), or a discarded value when the text is not
// one JSON value. The one difference: "-0" reads as the unsigned integer 0,
// not the signed one (both write "0").
//
// How: simdjson builds its tape and the tree is copied from it. Whatever
// simdjson refuses or cannot mirror exactly goes to nlohmann's reader, so the
// answer never depends on which one read it: invalid JSON of any kind (for
// nlohmann's verdict, which also skips a UTF-8 byte order mark), integers
// past 64 bits, nesting deeper than kFastDepth (the copy recurses; nlohmann's
// reader does not).
//
// JsonDom is the same first step without the copy: simdjson's DOM of the
// text, read in place (json/node.h reads it and a tree alike), for a
// reader that takes a few fields of a body and would throw the tree away.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>
#include <simdjson.h>

namespace switchboard {

// Containers nested deeper than this are read by nlohmann's reader.
inline constexpr std::size_t kFastDepth = 128;

nlohmann::json read_json(std::string_view text);

// A JSON text as simdjson's DOM. Its elements stay valid while it lives.
// It holds the thread's parser while it lives; a second JsonDom on the same
// thread meanwhile (a chunk handler's, another fiber's while this one's
// fiber waits) gets a parser of its own, allocated for it. So keep one only
// as long as one body is read.
class JsonDom {
 public:
  // The text's DOM, or nullopt when simdjson refuses it: not JSON, an
  // integer past 64 bits, nesting deeper than simdjson allows. Read such a
  // text with read_json, whose verdicts are nlohmann's.
  static std::optional<JsonDom> parse(std::string_view text);

  simdjson::dom::element root() const { return root_; }

  JsonDom(JsonDom&& other) noexcept;
  JsonDom& operator=(JsonDom&&) = delete;
  JsonDom(const JsonDom&) = delete;
  JsonDom& operator=(const JsonDom&) = delete;
  ~JsonDom();

 private:
  JsonDom() = default;

  bool holds_thread_parser_ = false;
  std::unique_ptr<simdjson::dom::parser> own_;  // a large text's parser, or a nested reader's
  simdjson::dom::element root_;
};

// `value` as the tree read_json makes of its text.
nlohmann::json to_json(simdjson::dom::element value);

// Whether `value`'s containers nest at most `max_depth` deep (a container
// is 1 deep, a scalar 0). False past kFastDepth whatever `max_depth` is:
// the walk recurses, and stops there.
bool nests_within(simdjson::dom::element value, std::size_t max_depth);

}  // namespace switchboard
