// Folder cost/: money and tokens. It owns the price catalog (pricing.cpp),
// the normalisation of each provider's usage report (usage.cpp), estimates
// before a call (estimate.cpp: input tokens, output expectations, a
// decision's worst case), the upper bounds budgets hold calls to
// (call_bound.cpp) and budget books (budget.cpp). It may use util/ and
// the public headers; it includes nothing from rules/, providers/ or ledger/.
//
// Cost estimates for a decision, before any model is called.
#pragma once

#include <cstdint>
#include <string_view>

#include "switchboard/config.h"
#include "switchboard/decision.h"
#include "switchboard/embedding.h"
#include "switchboard/request.h"
#include "switchboard/step.h"

namespace switchboard::detail {

using switchboard::estimate_tokens;  // step.h

// estimate_tokens for a text of `bytes` bytes (one token per three bytes, rounded up).
std::int64_t estimate_tokens_for_bytes(std::int64_t bytes);

// (The input tokens of a request: switchboard::estimate_input_tokens, in
// derive_step.h; what ModelClient::count_tokens answers by default.)

// The input tokens of an embeddings request: estimate_tokens of each text
// input, one per token id.
std::int64_t estimate_embedding_tokens(const EmbeddingRequest& request);

// The step's input tokens: counted by the caller, else estimated from the prompt.
std::int64_t input_tokens_of(const Step& step);

// The step as a DecisionRecord keeps it: input tokens always set (counted or
// estimated, as the rules saw them), the prompt only with [ledger] keep_prompts.
Step step_for_ledger(Step step, const Config& config);

// Fills decision.estimated_* from the step and the chosen model's list price:
// input × input price + expected output × output price, where expected output
// is the step's expected_output_tokens, else the decision's max_output_tokens,
// else the model's default_output_tokens. `cached_tokens` of the input (the
// session's figure for the model: sessions.h; at most the input) are
// expected to hit the model's prompt cache and are priced at its
// cached-input rate instead.
void estimate_cost(const ModelSpec& model, const Step& step, std::int64_t input_tokens,
                   Decision& decision, std::int64_t cached_tokens = 0);

// The most `decision` can cost: input × input price + output cap × output
// price per branch (output cap = max_output_tokens, else the model's
// default_output_tokens), times fanout, plus the aggregation call reading the
// branches' capped outputs.
MicroUsd worst_case_cost(const Config& config, const Decision& decision);

}  // namespace switchboard::detail
