// Upper bounds on what one model call can cost, for budgets that must hold:
// the input a request can be billed for, and its cost at the model's dearest
// rates with a given output cap; and the reverse, the largest output cap an
// amount affords.
//
// The bound assumes what the providers document: the output cap sent
// upstream (max_completion_tokens, max_tokens, maxOutputTokens) covers the
// visible output and the reasoning together. Whatever a provider bills above
// the bound is an overrun (CostRecord::overrun), recorded and charged.
#pragma once

#include <cstdint>
#include <optional>

#include "switchboard/config.h"
#include "switchboard/money.h"
#include "switchboard/request.h"

namespace switchboard::detail {

// Tokens a request adds besides its content, by the providers' own
// accounting (OpenAI: 3 per message and 3 to prime the reply; Anthropic and
// Gemini: the role and turn markers), taken generously: a bound that must
// hold, not an estimate. Also covers the JSON around the content when a
// provider bills by the wire body (the test fake bills body bytes / 4).
inline constexpr std::int64_t kRequestOverheadTokens = 64;
inline constexpr std::int64_t kMessageOverheadTokens = 16;
inline constexpr std::int64_t kToolOverheadTokens = 32;

// The most input tokens `request` can be billed for on `model`: the larger of
// the model's own count (count_request_tokens: its tokenizer, the provider's
// overheads, its calibrated factor) and the byte estimate (the larger of the
// caller's count and estimate_input_tokens, plus the overheads above per
// request, message and tool). Every budget bound goes through it.
std::int64_t input_token_bound(const ModelSpec& model, const ModelRequest& request);
// The same with the model's count already made: `unscaled` is
// count_request_tokens_unscaled(model, request) (none when it failed).
std::int64_t input_token_bound(const ModelSpec& model, const ModelRequest& request,
                               std::optional<std::int64_t> unscaled);

// The most a call on `model` with `input_tokens` of input and at most
// `output_cap` tokens of output (reasoning included) can cost: the input at
// the dearest input rate of the catalog's entry (uncached, cached, cache
// writes; long-context rates included), the output at the dearest of output
// and reasoning, rounded up. Without a catalog entry: ModelSpec::price.
MicroUsd call_cost_bound(const Config& config, const ModelSpec& model, std::int64_t input_tokens,
                         std::int64_t output_cap);

// The largest output cap in [0, ceiling] whose call_cost_bound with
// `input_tokens` is at most `amount`; -1 when not even a cap of 0 fits.
std::int64_t affordable_output_cap(const Config& config, const ModelSpec& model, std::int64_t input_tokens,
                                   MicroUsd amount, std::int64_t ceiling);

}  // namespace switchboard::detail
