// JSON strings written as text, for hosts that write JSON without building a
// tree (the gateway's answers and stream chunks): the engine's own escaper,
// the one its upstream bodies and ledger lines use.
#pragma once

#include <string>
#include <string_view>

namespace switchboard {

/// Appends `value` to `out` as a JSON string, quotes included, byte for byte
/// as nlohmann::json's dump(-1, ' ', false, error_handler_t::replace) writes
/// it: `\"` `\\` `\b` `\f` `\n` `\r` `\t`, other control characters as
/// `\u00xx`, everything else (valid UTF-8 included) as it is; a value that is
/// not valid UTF-8 is written by nlohmann itself, its bad bytes as U+FFFD.
///
/// Reads 16 bytes at a time where the CPU has SSE2 (every x86-64), so text
/// with nothing to escape costs little more than a copy.
void append_json_string(std::string& out, std::string_view value);

}  // namespace switchboard
