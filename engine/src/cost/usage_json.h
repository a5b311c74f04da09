// parse_usage for a body that is already parsed, so an adapter that has read
// a response does not read it a second time for its usage.
#pragma once

#include <nlohmann/json.hpp>
#include <simdjson.h>

#include "switchboard/usage.h"

namespace switchboard {

// As parse_usage (usage.h), from the parsed body. Never throws.
Result<Usage> usage_from_json(UsageFormat format, const nlohmann::json& body);
// The same, from a body read in place (json/read.h's JsonDom).
Result<Usage> usage_from_json(UsageFormat format, simdjson::dom::element body);

}  // namespace switchboard
