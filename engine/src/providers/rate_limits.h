// The providers' rate-limit headers, read into RateLimits (request.h).
//   OpenAI     x-ratelimit-remaining-requests / -tokens (counts) and
//              x-ratelimit-reset-requests / -tokens (durations: "1s", "6m0s",
//              "20ms", "1h2m3.5s")
//   Anthropic  anthropic-ratelimit-requests-remaining / -tokens-remaining
//              (counts; -input-tokens-remaining when no combined figure) and
//              anthropic-ratelimit-requests-reset / -tokens-reset (RFC 3339
//              times, counted from `now`)
// Any other header, or a value that does not parse, changes nothing.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

#include "switchboard/request.h"

namespace switchboard {

// Reads one header into `limits`; true when it was a rate-limit header that parsed.
bool read_rate_limit_header(std::string_view name, std::string_view value, std::chrono::system_clock::time_point now,
                            RateLimits& limits);

// "6m0s", "1.5s", "20ms", "1h2m3s" as milliseconds; nullopt when not such a duration.
std::optional<std::chrono::milliseconds> parse_go_duration(std::string_view text);

}  // namespace switchboard
