#include "rules/decide.h"

#include "cost/estimate.h"
#include "rules/decision_resolve.h"

namespace switchboard::detail {

Decision decide_with(const Config& config, const Workload& workload, WorkloadRules& rules,
                     const Step& step, const CallContext& ctx, const BudgetBook* budgets,
                     CallProbe* probe, const HealthBook* health, const SessionView* session,
                     const SessionBook* sessions, std::uint64_t config_epoch) {
  Decision decision;
  decision.workload = workload.name;
  decision.rules_version = rules.version();
  const std::int64_t input_tokens = input_tokens_of(step);

  RulesContext rules_ctx;
  rules_ctx.workload = workload.name;
  rules_ctx.rules_version = rules.version();
  rules_ctx.config = &config;
  rules_ctx.config_epoch = config_epoch;
  rules_ctx.health = health;
  rules_ctx.session = session;
  if (session == nullptr && sessions != nullptr) {  // taken only if the rules read ctx.session
    rules_ctx.sessions = sessions;
    rules_ctx.session_id = step.session_id;
  }
  std::optional<BudgetBook::Snapshot> book;
  // Only a budgeted workload consults the book (a lock): the rest stay lock-free.
  if (budgets != nullptr && workload.budget && (!ctx.spent || !ctx.budget_left)) {
    book = budgets->snapshot(budget_scope(workload.name));
  }
  const MicroUsd spent = ctx.spent ? *ctx.spent : (book ? book->spent : 0);
  if (ctx.budget_left) {
    decision.context_budget_left = *ctx.budget_left;
  } else if (workload.budget) {
    // Reservations in flight count as spent: the rules see what is really left.
    decision.context_budget_left = (book && !ctx.spent) ? book->left().value_or(*workload.budget - spent)
                                                        : *workload.budget - spent;
  }
  if (decision.context_budget_left) rules_ctx.budget_left_usd = to_usd(*decision.context_budget_left);
  decision.context_spent = spent;
  rules_ctx.spent_usd = to_usd(spent);
  decision.context_rate_requests_left = rules_ctx.rate_requests_left = ctx.rate_requests_left;
  decision.context_rate_tokens_left = rules_ctx.rate_tokens_left = ctx.rate_tokens_left;

  const ModelSpec* model = nullptr;
  std::optional<std::int64_t> cached;  // the chosen model's cache as the rules read it, if they did
  {
    auto lease = rules.lease();
    Status status;
    if (!lease.ok()) {
      status = lease.status();
    } else {
      auto raw = lease->get()->classify(step, input_tokens, rules_ctx, probe);
      if (!raw.ok()) {
        status = raw.status();
      } else {  // the views in *raw are read before the lease ends
        auto resolved = resolve_decision(config, rules.chunk_name(), *raw, decision);
        if (resolved.ok()) {
          model = *resolved;
        } else {
          status = resolved.status();
        }
      }
    }
    if (model == nullptr) model = fall_back(config, workload, status.message(), decision);
    if (lease.ok() && session == nullptr) cached = lease->get()->cached_tokens_read(model->name);
  }

  if (!cached) {
    cached = session != nullptr    ? session->cached_for(model->name)
             : sessions != nullptr ? sessions->cached_for(step.session_id, model->name)
                                   : 0;
  }
  estimate_cost(*model, step, input_tokens, decision, *cached);
  if (decision.fanout > 1) {
    // N branches, then one aggregation call that reads the N answers.
    decision.estimated_cost *= decision.fanout;
    const ModelSpec& aggregator = *config.find_model(config.find_tier(decision.aggregate)->models.front());
    decision.estimated_cost += estimate_call_cost(
        aggregator, input_tokens + decision.estimated_output_tokens * decision.fanout,
        decision.estimated_output_tokens);
  }
  return decision;
}

std::optional<SessionView> session_view(const SessionBook* book, const Step& step) {
  if (book == nullptr || step.session_id.empty()) return std::nullopt;
  std::optional<SessionView> view = book->snapshot(step.session_id);
  if (!view) {
    view.emplace();
    view->id = step.session_id;
  }
  return view;
}

}  // namespace switchboard::detail
