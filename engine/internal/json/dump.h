// dump_json: nlohmann::json written as text, several times faster than
// nlohmann's own serializer on text-heavy trees (a request's messages, sent
// on every call), for the same bytes.
//
// Contract: the text is exactly json.dump(-1, ' ', false,
// error_handler_t::replace) of the same tree: members in the tree's order,
// strings escaped as nlohmann escapes them (\" \\ \b \f \n \r \t, other
// control characters as \u00xx, everything else as it is, valid UTF-8
// included), numbers in nlohmann's forms. A string that is not valid UTF-8,
// a double and a binary value are written by nlohmann's serializer itself
// (invalid UTF-8 then becomes U+FFFD its way).
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "switchboard/json_text.h"

namespace switchboard {

std::string dump_json(const nlohmann::json& value);

// Whether `value` is written as it is between its quotes: printable ASCII,
// no '"' and no '\\'.
bool json_plain(std::string_view value);

// Appends dump_json(value) to `out`.
void append_json(std::string& out, const nlohmann::json& value);

// append_json_string(out, value) (switchboard/json_text.h): a string as
// dump_json writes it.

}  // namespace switchboard
