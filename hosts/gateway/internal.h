// What gateway.cpp shares with the route files beside it (routes.cpp,
// count_tokens.cpp, embeddings.cpp): who is asking (Caller), and the helpers
// every answer uses, defined in gateway.cpp. Private to the gateway host.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/api.h"
#include "switchboard/switchboard.h"

namespace switchboard::gateway::internal {

inline constexpr std::string_view kJson = "application/json";

// Who asks, and what serves them: Gateway::identify's answer for a request.
struct Caller {
  // The serving runtime's engine and dispatcher; each keeps the runtime alive.
  std::shared_ptr<const Engine> engine;
  std::shared_ptr<const Dispatcher> dispatcher;
  std::string workload;                     // the key's, the x-switchboard-workload header's, or the default
  std::vector<std::string> budget_scopes;   // {"key:NAME"} when the key has a budget
  std::chrono::milliseconds timeout{0};     // the request's deadline, from its last byte read
  std::string timeout_source;               // which setting gave it, for messages
};

// An error in the shape's vocabulary: OpenAI's `type`/`code`, Anthropic's `type`.
ApiError api_error(ApiShape shape, int status, std::string code, std::string message);
// What a finished step's failure means to the client (upstream text redacted).
ApiError step_error(ApiShape shape, const Status& status);
// Micro-dollars as decimal dollars with six places, exactly.
std::string usd(MicroUsd micro);
// Appends the header line "name: value\r\n" (line breaks in the value become spaces).
void add_header(std::string& out, std::string_view name, std::string_view value);
// x-switchboard-model, -tier, -cost-usd (when `cost` is set), -trace-id and x-request-id.
std::string switchboard_headers(std::string_view model, std::string_view tier, std::string_view trace_id,
                                std::optional<MicroUsd> cost);
// "Retry-After: N" (whole seconds, rounded up) for a rate_limited status that
// knows when it would fit; "" for any other.
std::string retry_after_header(const Status& status);
// x-switchboard-overhead-ms's value (gateway.h): milliseconds with three
// decimals ("0.042"); "0.000" when `overhead` is below 0.
std::string overhead_ms(std::chrono::nanoseconds overhead);
std::int64_t unix_seconds();

// GET /v1/models/{id}: the entry of `list_json` (a rendered GET /v1/models
// answer, either shape) whose id is `id`, as JSON text; nullopt when none.
std::optional<std::string> listed_model(std::string_view list_json, std::string_view id);
// `text` with its %XX escapes decoded; nullopt when one is malformed.
std::optional<std::string> percent_decode(std::string_view text);

}  // namespace switchboard::gateway::internal
