/// @file
/// Provider usage figures, normalised into Usage (pricing.h).
///
///  - OpenAI (and OpenAI-compatible): `prompt_tokens` includes
///    `prompt_tokens_details.cached_tokens`; `completion_tokens` includes
///    `completion_tokens_details.reasoning_tokens`. Responses API bodies
///    (`input_tokens`/`output_tokens` with the same details) are read too.
///  - Anthropic: `input_tokens` excludes `cache_read_input_tokens` and
///    `cache_creation_input_tokens`; the creation is split into 5-minute and
///    1-hour writes under `cache_creation` (absent: all 5-minute).
///    `output_tokens` includes thinking, which the API does not report apart.
///  - Gemini: `promptTokenCount` includes `cachedContentTokenCount`;
///    `thoughtsTokenCount` is reported beside `candidatesTokenCount`;
///    `toolUsePromptTokenCount` (built-in tool results) is billed as input.
///
/// Where the usage object is looked for: OpenAI `usage` (chat completions, a
/// final streamed chunk, a Responses body) or `response.usage` (the Responses
/// `response.completed` event); Anthropic `usage` (a message, message_delta) or
/// `message.usage` (message_start); Gemini `usageMetadata`. Counts a provider
/// leaves out are 0, except the ones every body carries: OpenAI prompt and
/// completion (input and output) tokens, Anthropic `output_tokens` and Gemini
/// `promptTokenCount`.
#pragma once

#include <string_view>

#include "switchboard/pricing.h"
#include "switchboard/status.h"

namespace switchboard {

/// Which provider's usage object parse_usage() reads.
enum class UsageFormat { kOpenAI, kAnthropic, kGemini };

/// Reads the usage object from a whole response body (or the final streamed
/// event that carries it). Errors name the missing or malformed field; a
/// negative or inconsistent count (cached above prompt) is an error, never
/// silently clamped.
Result<Usage> parse_usage(UsageFormat format, std::string_view response_json);

}  // namespace switchboard
