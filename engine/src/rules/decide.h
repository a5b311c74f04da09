// The decision path: one classify() call on leased rules, validated, priced.
// Shared by Engine::decide, the rule test runner and reload's test gate.
#pragma once

#include <cstdint>
#include <optional>

#include "rules/rule_set.h"
#include "switchboard/config.h"
#include "switchboard/decision.h"
#include "switchboard/engine.h"
#include "switchboard/sessions.h"
#include "switchboard/step.h"

namespace switchboard::detail {

// Never fails: a rules failure yields the workload's fallback tier with
// Decision::error set. REQUIRES: `workload.fallback_tier` names a tier of `config`.
// `budgets` (may be null) fills what `ctx` leaves unset. `probe` (may be
// null) instruments the classify() call (tools only: see CallProbe).
// `health` (may be null: every model healthy, no figures) is what
// ctx.models reports. `session` (may be null) is what ctx.session reports,
// and what the estimate expects the chosen model's cache to hold
// (session_view gives it); when it is null, `sessions` (may be null: then
// ctx.session is nil) gives both for the step's session_id, ctx.session's
// view taken only if the rules read it, and the estimate reading the figure
// the rules read of the chosen model, if they read it (one lookup for both).
// `config_epoch`: RulesContext::config_epoch (nonzero only when every call of
// `rules`' sandboxes that passes it passes this `config`).
Decision decide_with(const Config& config, const Workload& workload, WorkloadRules& rules,
                     const Step& step, const CallContext& ctx, const BudgetBook* budgets = nullptr,
                     CallProbe* probe = nullptr, const HealthBook* health = nullptr,
                     const SessionView* session = nullptr, const SessionBook* sessions = nullptr,
                     std::uint64_t config_epoch = 0);

// The session `step` belongs to as `book` knows it now: nullopt when the
// step names none (or `book` is null); a new session (no last model, 0
// turns, every cache cold) when the book has none of that id.
std::optional<SessionView> session_view(const SessionBook* book, const Step& step);

// The budget book scope of a workload.
inline std::string budget_scope(std::string_view workload) { return workload_budget_scope(workload); }

}  // namespace switchboard::detail
