// parse_usage for a body that is already parsed, so an adapter that has read
// a response does not read it a second time for its usage.
#pragma once

#include <nlohmann/json.hpp>

#include "switchboard/usage.h"

namespace switchboard {

// As parse_usage (usage.h), from the parsed body. Never throws.
Result<Usage> usage_from_json(UsageFormat format, const nlohmann::json& body);

}  // namespace switchboard
