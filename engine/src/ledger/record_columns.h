// The columns of a call and of a decision record, read back in the order
// both databases' readers select them (sqlite.cpp and postgres.cpp: their
// kSelectColumns / kCallColumns and kDecisionColumns, after the id and, in
// PostgreSQL, the record key). One decoder, so the two ledgers cannot come
// to read the same row differently.
//
// Row is the reader of one database's current row: integer(), text(),
// optional_integer() and optional_text() each take the next column.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "switchboard/decision.h"
#include "switchboard/ledger.h"
#include "switchboard/status.h"
#include "switchboard/step.h"
#include "json/dump.h"

namespace switchboard::ledger_columns {

// The decision columns of a judged verdict (both schemas), after the active
// decision's, in the order read_decision reads them and the writers bind them.
inline constexpr const char* kVerdictColumns =
    "verdict, verdict_reason, judge_model, routed_model, routed_call_id, target_tier, target_model, "
    "shadow_trace_id, routed_cost_micro_usd, target_cost_micro_usd, judge_cost_micro_usd";
inline constexpr int kVerdictColumnCount = 11;
// What a reader selects instead from a ledger older than those columns.
inline constexpr const char* kNoVerdictColumns =
    "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL";

// Binds a decision record's verdict columns through `w` (text(), integer(),
// null()): all null unless the record is a judged one.
template <typename Writer>
void write_verdict(Writer& w, const DecisionRecord& r) {
  if (!r.judged) {
    for (int k = 0; k < kVerdictColumnCount; ++k) w.null();
    return;
  }
  const JudgedVerdict& v = *r.judged;
  w.text(to_string(v.outcome));
  for (const std::string* s : {&v.reason, &v.judge_model, &v.routed_model, &v.routed_call_id, &v.target_tier,
                               &v.target_model, &v.shadow_trace_id}) {
    w.text(*s);
  }
  w.integer(v.routed_cost);
  w.integer(v.target_cost);
  w.integer(v.judge_cost);
}

// The budget_scopes column: the scope names as a JSON array, the text
// nlohmann writes for the same array.
inline std::string scopes_column(const std::vector<std::string>& scopes) {
  std::string out = "[";
  for (std::size_t i = 0; i < scopes.size(); ++i) {
    if (i > 0) out += ',';
    append_json_string(out, scopes[i]);
  }
  out += ']';
  return out;
}

// A stored time (milliseconds since 1970) as a time point.
inline std::chrono::system_clock::time_point time_from_ms(std::int64_t ms) {
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
}

// The call record with id `id` whose remaining columns `row` reads next:
// time, the ids and names, latency, usage, cost, status, error,
// usage_estimated, budget_scopes (a JSON array), reserved, output_cap,
// output_cap_lowered, counted_input_tokens. Errors name `where` and the id.
template <typename Row>
Result<CostRecord> read_call(Row& row, std::int64_t id, const std::string& where) {
  CostRecord r;
  r.id = id;
  r.time = time_from_ms(row.integer());
  for (std::string* s : {&r.trace_id, &r.parent_id, &r.call_id, &r.workload, &r.role, &r.tier, &r.model,
                         &r.provider, &r.rules_version, &r.catalog_version}) {
    *s = row.text();
  }
  r.latency_ms = row.integer();
  r.usage.input_tokens = row.integer();
  r.usage.cached_input_tokens = row.integer();
  r.usage.cache_write_5m_tokens = row.integer();
  r.usage.cache_write_1h_tokens = row.integer();
  r.usage.output_tokens = row.integer();
  r.usage.reasoning_tokens = row.integer();
  r.cost = row.integer();
  const std::string status = row.text();
  const auto parsed = parse_call_status(status);
  if (!parsed) {
    return Status::invalid_argument(where + ": record " + std::to_string(id) + " has an unknown status '" + status +
                                    "'");
  }
  r.status = *parsed;
  r.error = row.text();
  r.usage_estimated = row.integer() != 0;
  const nlohmann::json scopes = nlohmann::json::parse(row.text(), nullptr, false);
  if (!scopes.is_array()) {
    return Status::invalid_argument(where + ": record " + std::to_string(id) +
                                    " has budget_scopes that are not a JSON array");
  }
  for (const auto& scope : scopes) {
    if (scope.is_string()) r.budget_scopes.push_back(scope.get<std::string>());
  }
  r.reserved = row.integer();
  r.output_cap = row.integer();
  r.output_cap_lowered = row.integer() != 0;
  r.counted_input_tokens = row.integer();
  return r;
}

// The decision record with id `id` whose remaining columns `row` reads next:
// time, trace, kind, workload, role, rules version, step JSON, the decision's
// fields, admission, agrees (null: no active decision), the active
// decision's fields (null without one), then the judged verdict's columns
// (kVerdictColumns: null but on a judged row). Errors name `where` and the id.
template <typename Row>
Result<DecisionRecord> read_decision(Row& row, std::int64_t id, const std::string& where) {
  DecisionRecord r;
  Decision& d = r.decision;
  r.id = id;
  const auto bad = [&](const std::string& what) {
    return Status::invalid_argument(where + ": decision " + std::to_string(id) + " " + what);
  };
  r.time = time_from_ms(row.integer());
  r.trace_id = row.text();
  const std::string kind = row.text();
  d.workload = row.text();
  const std::string role = row.text();
  d.rules_version = row.text();
  auto step = parse_step_json(row.text());
  if (!step.ok()) return bad("has an unreadable step: " + step.status().message());
  r.step = std::move(step).value();
  d.tier = row.text();
  d.model = row.text();
  const std::string reasoning = row.text();
  d.fanout = static_cast<int>(row.integer());
  d.aggregate = row.text();
  d.max_output_tokens = row.optional_integer();
  d.reason = row.text();
  d.error = row.optional_text();
  d.context_spent = row.integer();
  d.context_budget_left = row.optional_integer();
  d.estimated_input_tokens = row.integer();
  d.estimated_output_tokens = row.integer();
  d.estimated_cost = row.integer();
  const std::string admission = row.text();
  const auto agrees = row.optional_integer();

  const auto parsed_kind = parse_decision_kind(kind);
  if (!parsed_kind) return bad("has an unknown kind '" + kind + "'");
  r.kind = *parsed_kind;
  d.requested = r.kind == DecisionKind::kRequested;
  const auto parsed_admission = parse_admission_outcome(admission);
  if (!parsed_admission) return bad("has an unknown admission '" + admission + "'");
  r.admission = *parsed_admission;
  const auto level = [&](const std::string& name) -> Result<Reasoning> {
    if (name.empty()) return Reasoning::kDefault;
    const auto parsed = parse_reasoning(name);
    if (!parsed) return bad("has an unknown reasoning level '" + name + "'");
    return *parsed;
  };
  auto parsed_reasoning = level(reasoning);
  if (!parsed_reasoning.ok()) return parsed_reasoning.status();
  d.reasoning = *parsed_reasoning;
  if (agrees) {
    r.agrees = *agrees != 0;
    Decision a;
    a.workload = d.workload;
    a.rules_version = row.text();
    a.tier = row.text();
    a.model = row.text();
    auto active_reasoning = level(row.text());
    if (!active_reasoning.ok()) return active_reasoning.status();
    a.reasoning = *active_reasoning;
    a.fanout = static_cast<int>(row.integer());
    a.aggregate = row.text();
    a.max_output_tokens = row.optional_integer();
    r.active = std::move(a);
  } else {
    for (int k = 0; k < 7; ++k) row.optional_text();  // the active decision's columns, null
  }
  // The verdict's columns: verdict, reason, judge, routed model and call,
  // target tier and model, the shadow trace, and the three costs.
  if (const std::optional<std::string> verdict = row.optional_text()) {
    const auto outcome = parse_judged_outcome(*verdict);
    if (!outcome) return bad("has an unknown verdict '" + *verdict + "'");
    JudgedVerdict v;
    v.outcome = *outcome;
    for (std::string* s : {&v.reason, &v.judge_model, &v.routed_model, &v.routed_call_id, &v.target_tier,
                           &v.target_model, &v.shadow_trace_id}) {
      *s = row.optional_text().value_or("");
    }
    v.routed_cost = row.optional_integer().value_or(0);
    v.target_cost = row.optional_integer().value_or(0);
    v.judge_cost = row.optional_integer().value_or(0);
    r.judged = std::move(v);
  }
  if (r.step.role.empty()) r.step.role = role;
  return r;
}

}  // namespace switchboard::ledger_columns
