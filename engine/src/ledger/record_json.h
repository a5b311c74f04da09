// CostRecord <-> one JSON object (a JSONL ledger line). Private: the JSONL
// sink writes with it; rebill and the tests read back with it.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "switchboard/ledger.h"

namespace switchboard {

// "2026-11-01T12:34:56.789Z": RFC 3339, UTC, milliseconds (finer is truncated).
std::string format_utc_ms(std::chrono::system_clock::time_point t);
// Reads exactly the form format_utc_ms writes.
Result<std::chrono::system_clock::time_point> parse_utc_ms(std::string_view text);

// One line of JSON, without the newline: every field of `record`, tokens and
// micro-dollars as integers, the time as format_utc_ms, the status by name.
std::string cost_record_to_json(const CostRecord& record);
// The inverse; errors name the field. Every field is required but
// usage_estimated and counted_input_tokens (read as false and 0) and the
// budget fields budget_scopes, reserved_micro_usd, output_cap and
// output_cap_lowered (read as none), which lines written before them lack.
Result<CostRecord> cost_record_from_json(std::string_view line);

// One line of JSON for a decision record: {"record": "decision", ..., "step":
// {the STEPS.jsonl form}, "decision": {...}}, so readers of a JSONL ledger
// tell the two kinds apart by the "record" field (cost lines have none).
std::string decision_record_to_json(const DecisionRecord& record);
// The inverse: every field decision_record_to_json writes (the step through
// parse_step_json); errors name the field ("decision.tier"). reasoning_pinned
// and agrees, absent from lines that do not set them, read as false.
Result<DecisionRecord> decision_record_from_json(std::string_view line);

}  // namespace switchboard
