// Anthropic's POST /v1/messages/count_tokens, as @anthropic-ai/sdk sends it
// (messages.countTokens): the request is read by the Messages parser
// (api/anthropic.cpp), the answer is {"input_tokens": N}.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "api/api.h"

namespace switchboard::gateway {

// A count_tokens body: model, messages, system, tools, tool_choice and
// thinking, each read as parse_anthropic_messages reads it (so the count is
// of the call the same fields would make); any other field (max_tokens,
// stream, temperature, mcp_servers...) is a 400 naming it, as Anthropic's
// endpoint refuses them. The step is filled as for a call (metadata aside:
// the endpoint takes none), headers included.
ApiResult<ParsedRequest> parse_anthropic_count_tokens(std::string_view body, const Headers& headers,
                                                      int max_json_depth = kDefaultMaxJsonDepth,
                                                      const Workload* workload = nullptr);

// {"input_tokens":N}
std::string render_token_count(std::int64_t input_tokens);

}  // namespace switchboard::gateway
