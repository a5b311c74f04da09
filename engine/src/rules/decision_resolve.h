// Turns what classify() returned into a Decision checked against the config.
#pragma once

#include <string>

#include "lua/sandbox.h"
#include "switchboard/config.h"
#include "switchboard/decision.h"

namespace switchboard::detail {

// Fills tier, model, reasoning, max_output_tokens, fanout, aggregate, reason,
// and returns the chosen model. Fails with "rules/x.lua: classify returned ..."
// when the answer is invalid.
Result<const ModelSpec*> resolve_decision(const Config& config, std::string_view chunk_name,
                                          const RawDecision& raw, Decision& out);

// The workload's fallback: its fallback tier's first model, with `error` set.
const ModelSpec* fall_back(const Config& config, const Workload& workload, std::string error,
                           Decision& out);

}  // namespace switchboard::detail
