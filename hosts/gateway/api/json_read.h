// read_json_within: a client's JSON text read by simdjson, several times
// faster than nlohmann's reader (a 60 KB agent request: about a third of the
// time), for parse_bounded's common case.
//
// Contract: true when the text is one JSON value whose containers nest at
// most `max_depth` deep (the outermost is 1; a `max_depth` past
// kFastReadDepth counts as kFastReadDepth) and simdjson read it; `out` is
// then the tree json::parse would build from the same text (the last of
// duplicate keys wins, an integer without a sign is unsigned; "-0" alone
// reads as unsigned 0 rather than signed, written the same). False for
// anything else (invalid JSON, a byte order mark, integers past 64 bits,
// nesting past `max_depth`), with `out` unspecified: the caller then reads
// the text with nlohmann, whose verdict stands. The engine's JsonDom
// (json/read.h) reads the text, and its nests_within and to_json bound and
// copy it; the request parsers read that DOM in place (read_body_dom).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "json/read.h"

namespace switchboard::gateway::detail {

// The deepest `max_depth` worth passing: the copy recurses once per level.
inline constexpr std::size_t kFastReadDepth = kFastDepth;

bool read_json_within(std::string_view text, std::size_t max_depth, nlohmann::json& out);

// The '{', '[' and ',' of `text` outside its strings: about one per value,
// what a body's tree will cost before it is read (the server's memory
// estimate). A string runs from a '"' to the next '"' not escaped by a
// backslash; a backslash escapes the byte after it, whatever it is. Any text
// is counted, JSON or not. Reads 16 bytes at a time (SSE2, every x86-64).
std::int64_t count_json_values(std::string_view text);

}  // namespace switchboard::gateway::detail
