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
#pragma once

#include <cstddef>
#include <string_view>

#include <nlohmann/json.hpp>

namespace switchboard {

// Containers nested deeper than this are read by nlohmann's reader.
inline constexpr std::size_t kFastDepth = 128;

nlohmann::json read_json(std::string_view text);

}  // namespace switchboard
