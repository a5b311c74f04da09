/// @file
/// Decision: what the rules chose for one step, after validation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "switchboard/money.h"

namespace switchboard {

/// The reasoning effort a decision asks of the model; kDefault asks for none in particular.
enum class Reasoning { kDefault, kLow, kMedium, kHigh };

/// "low" | "medium" | "high"; kDefault has no name and maps to "".
std::string_view to_string(Reasoning r);
/// The inverse of to_string(Reasoning): nullopt for any other name, "" included.
std::optional<Reasoning> parse_reasoning(std::string_view name);

/// What the rules chose for one step, after validation (Engine::decide).
struct Decision {
  std::string workload;             ///< the workload whose rules decided
  std::string tier;                 ///< always set: the tier the model is served from
  std::string model;                ///< always set: the first model to call
  Reasoning reasoning = Reasoning::kDefault;  ///< the reasoning level to ask the model for
  /// The rules pinned `reasoning` (`pin_reasoning = true`): it applies even
  /// when the caller asked for its own effort or thinking budget, which then
  /// is not sent. Unpinned, the caller's explicit setting wins.
  bool reasoning_pinned = false;
  std::optional<std::int64_t> max_output_tokens;  ///< output cap; unset: the model's default_output_tokens
  int fanout = 1;                   ///< parallel calls ("contemplating" mode) when > 1
  std::string aggregate;            ///< tier of the aggregation call, when fanout > 1
  std::string reason;               ///< the rule's own words, sanitised and bounded
  std::string rules_version;        ///< sha256 of the rules file the decision ran on
  /// Set when the rules failed (error, timeout, memory cap, invalid result): the
  /// decision is then the workload's fallback tier. One line, "file:line: message"
  /// where Lua gave a position.
  std::optional<std::string> error;

  /// True when a host served the caller's own choice of model or tier (an
  /// HTTP client naming a model) instead of the rules'; reason then says what
  /// the rules chose. The ledger keeps the flag, and replays leave such steps be.
  bool requested = false;

  /// What the rules saw as ctx: spent in the period, and what was left of the
  /// budget (unset when the workload has none). Kept so a replay shows the
  /// candidate rules the same ctx.
  MicroUsd context_spent = 0;
  std::optional<MicroUsd> context_budget_left;  ///< what was left of the budget, as the rules saw it
  /// ctx.rate_requests_left and ctx.rate_tokens_left as the rules saw them (CallContext);
  /// not kept in the ledger: a replay (whatif) shows the rules nil.
  std::optional<std::int64_t> context_rate_requests_left;
  std::optional<std::int64_t> context_rate_tokens_left;  ///< see context_rate_requests_left

  /// Input tokens of one call: the step's input_tokens, else estimate_tokens() of its prompt.
  std::int64_t estimated_input_tokens = 0;
  /// Output tokens of one call: the step's expected_output_tokens, else max_output_tokens, else
  /// the model's default_output_tokens.
  std::int64_t estimated_output_tokens = 0;
  MicroUsd estimated_cost = 0;      ///< input + expected output at the model's list price
};

}  // namespace switchboard
