// Decision records in the ledger: every field through SQLite and JSONL,
// interleaved with cost records, version 1 and 2 ledgers migrated in place, the
// dispatcher's record of each step (the prompt kept only when configured).
#include <doctest/doctest.h>

#include <sqlite3.h>

#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ledger/record_json.h"
#include "ledger/sqlite.h"
#include "switchboard/dispatch.h"
#include "switchboard/ledger.h"
#include "test_util.h"

using namespace switchboard;
using switchboard::testing::TempDir;

namespace {

constexpr std::int64_t kBaseMs = 1'793'536'496'789;  // 2026-11-01T12:34:56.789Z

std::chrono::system_clock::time_point at_ms(std::int64_t ms) {
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
}

Decision sample_decision(int n) {
  Decision d;
  d.workload = "code_fix";
  d.rules_version = std::string(64, 'b');
  d.tier = "premium";
  d.model = "claude-opus-4-1";
  d.reasoning = Reasoning::kHigh;
  d.fanout = 3;
  d.aggregate = "balanced";
  d.max_output_tokens = 4000 + n;
  d.reason = "plan: needs chain of thought \"quoted\"";
  d.error = "rules/code_fix.lua:12: boom";
  d.context_spent = 1'500'000 + n;
  d.context_budget_left = 98'500'000 - n;
  d.estimated_input_tokens = 3327 + n;
  d.estimated_output_tokens = 518;
  d.estimated_cost = 77'000 + n;
  return d;
}

DecisionRecord sample_decision_record(int n, bool shadow) {
  DecisionRecord r;
  r.time = at_ms(kBaseMs + n);
  r.trace_id = "trace-" + std::to_string(n);
  r.kind = shadow ? DecisionKind::kShadow : DecisionKind::kRules;
  r.step.role = "plan";
  r.step.input_tokens = 3327 + n;
  r.step.expected_output_tokens = 518;
  r.step.needs_chain_of_thought = true;
  r.step.untrusted_input = true;
  r.step.tool_depth = 2;
  r.step.meta = {{"task", std::string("t-001")}, {"step", std::int64_t{1}}, {"score", 0.25}, {"web", true}};
  r.decision = sample_decision(n);
  r.admission = shadow ? AdmissionOutcome::kNotAdmitted : AdmissionOutcome::kRerouted;
  if (shadow) {
    Decision active = sample_decision(n);
    active.tier = "balanced";
    active.model = "claude-sonnet-4-5";
    active.reasoning = Reasoning::kDefault;
    active.fanout = 1;
    active.aggregate.clear();
    active.max_output_tokens.reset();
    active.rules_version = std::string(64, 'c');
    r.active = active;
    r.agrees = false;
  }
  return r;
}

// A judged shadow call's record (dispatch.h): the live step's decision and the verdict.
DecisionRecord judged_record(int n, JudgedVerdict::Outcome outcome) {
  DecisionRecord r = sample_decision_record(n, false);
  r.kind = DecisionKind::kJudged;
  r.admission = AdmissionOutcome::kNotAdmitted;
  JudgedVerdict v;
  v.outcome = outcome;
  v.reason = "routed as A: tie; routed as B: A, \"quoted\" reason";
  v.judge_model = "claude-sonnet-4-5";
  v.routed_model = "claude-haiku-4-5";
  v.routed_call_id = "call-" + std::to_string(n);
  v.target_tier = "premium";
  v.target_model = "claude-opus-4-1";
  v.shadow_trace_id = "shadow-" + std::to_string(n);
  v.routed_cost = 1200 + n;
  v.target_cost = 34'000 + n;
  v.judge_cost = 5600;
  r.judged = v;
  return r;
}

// The calls table as version 1 wrote it, with one call.
constexpr const char* kVersion1Calls = R"sql(
CREATE TABLE calls (id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, trace_id TEXT NOT NULL,
  parent_id TEXT NOT NULL, call_id TEXT NOT NULL, workload TEXT NOT NULL, role TEXT NOT NULL,
  tier TEXT NOT NULL, model TEXT NOT NULL, provider TEXT NOT NULL, rules_version TEXT NOT NULL,
  catalog_version TEXT NOT NULL, latency_ms INTEGER NOT NULL, input_tokens INTEGER NOT NULL,
  cached_input_tokens INTEGER NOT NULL, cache_write_5m_tokens INTEGER NOT NULL,
  cache_write_1h_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
  reasoning_tokens INTEGER NOT NULL, cost_micro_usd INTEGER NOT NULL, status TEXT NOT NULL,
  error TEXT NOT NULL);
INSERT INTO calls VALUES (1, 1793536496789, 't', '', 'c', 'code_fix', 'plan', 'premium',
  'claude-opus-4-1', 'sim', 'v', 'cat', 10, 100, 0, 0, 0, 50, 0, 9000, 'ok', '');
)sql";

// What version 2 added: the decisions table and its indexes, with one decision.
constexpr const char* kVersion2Decisions = R"sql(
CREATE TABLE decisions (id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, trace_id TEXT NOT NULL,
  kind TEXT NOT NULL, workload TEXT NOT NULL, role TEXT NOT NULL, rules_version TEXT NOT NULL,
  step_json TEXT NOT NULL, tier TEXT NOT NULL, model TEXT NOT NULL, reasoning TEXT NOT NULL,
  fanout INTEGER NOT NULL, aggregate TEXT NOT NULL, max_output_tokens INTEGER, reason TEXT NOT NULL,
  error TEXT, ctx_spent_micro_usd INTEGER NOT NULL, ctx_budget_left_micro_usd INTEGER,
  estimated_input_tokens INTEGER NOT NULL, estimated_output_tokens INTEGER NOT NULL,
  estimated_cost_micro_usd INTEGER NOT NULL, admission TEXT NOT NULL, agrees INTEGER,
  active_rules_version TEXT, active_tier TEXT, active_model TEXT, active_reasoning TEXT,
  active_fanout INTEGER, active_aggregate TEXT, active_max_output_tokens INTEGER);
CREATE INDEX decisions_by_time ON decisions(time_ms);
CREATE INDEX decisions_by_workload ON decisions(workload, time_ms);
CREATE INDEX decisions_by_trace ON decisions(trace_id);
CREATE INDEX calls_by_trace ON calls(trace_id);
INSERT INTO decisions VALUES (1, 1793536496789, 't', 'rules', 'code_fix', 'plan', 'v',
  '{"role": "plan", "input_tokens": 100}', 'premium', 'claude-opus-4-1', '', 1, '', NULL, 'r', NULL,
  0, NULL, 100, 50, 9000, 'admitted', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
)sql";

// Writes a ledger file the way an older release left it.
void write_old_ledger(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  const std::string message = error != nullptr ? error : "";
  sqlite3_free(error);
  sqlite3_close(db);
  REQUIRE_MESSAGE(rc == SQLITE_OK, message);
}

void check_same(const DecisionRecord& got, const DecisionRecord& want) {
  CHECK(got.time == want.time);
  CHECK(got.trace_id == want.trace_id);
  CHECK(got.kind == want.kind);
  CHECK(step_to_json(got.step) == step_to_json(want.step));
  const Decision& g = got.decision;
  const Decision& w = want.decision;
  CHECK(g.workload == w.workload);
  CHECK(g.rules_version == w.rules_version);
  CHECK(same_choice(g, w));
  CHECK(g.reason == w.reason);
  CHECK(g.error == w.error);
  CHECK(g.context_spent == w.context_spent);
  CHECK(g.context_budget_left == w.context_budget_left);
  CHECK(g.estimated_input_tokens == w.estimated_input_tokens);
  CHECK(g.estimated_output_tokens == w.estimated_output_tokens);
  CHECK(g.estimated_cost == w.estimated_cost);
  CHECK(got.admission == want.admission);
  REQUIRE(got.judged.has_value() == want.judged.has_value());
  if (want.judged) {
    const JudgedVerdict& gv = *got.judged;
    const JudgedVerdict& wv = *want.judged;
    CHECK(gv.outcome == wv.outcome);
    CHECK(gv.reason == wv.reason);
    CHECK(gv.judge_model == wv.judge_model);
    CHECK(gv.routed_model == wv.routed_model);
    CHECK(gv.routed_call_id == wv.routed_call_id);
    CHECK(gv.target_tier == wv.target_tier);
    CHECK(gv.target_model == wv.target_model);
    CHECK(gv.shadow_trace_id == wv.shadow_trace_id);
    CHECK(gv.routed_cost == wv.routed_cost);
    CHECK(gv.target_cost == wv.target_cost);
    CHECK(gv.judge_cost == wv.judge_cost);
  }
  REQUIRE(got.active.has_value() == want.active.has_value());
  if (want.active) {
    CHECK(same_choice(*got.active, *want.active));
    CHECK(got.active->rules_version == want.active->rules_version);
    CHECK(got.agrees == want.agrees);
  }
}

}  // namespace

TEST_SUITE("ledger") {

TEST_CASE("decision records keep every field through the SQLite ledger beside the cost records") {
  TempDir dir;
  const std::string path = (dir.path() / "ledger.db").string();
  {
    auto sink = open_sqlite_ledger({.path = path});
    REQUIRE_MESSAGE(sink.ok(), sink.status().message());
    CostRecord call;
    call.time = at_ms(kBaseMs);
    call.trace_id = "trace-0";
    call.workload = "code_fix";
    call.role = "plan";
    REQUIRE((*sink)->write(sample_decision_record(0, false)).ok());
    REQUIRE((*sink)->write(call).ok());
    REQUIRE((*sink)->write(sample_decision_record(1, true)).ok());
    REQUIRE((*sink)->flush().ok());
  }
  auto decisions = read_sqlite_decisions(path);
  REQUIRE_MESSAGE(decisions.ok(), decisions.status().message());
  REQUIRE(decisions->size() == 2);
  check_same((*decisions)[0], sample_decision_record(0, false));
  check_same((*decisions)[1], sample_decision_record(1, true));
  CHECK((*decisions)[0].id > 0);
  auto calls = read_sqlite_ledger(path);
  REQUIRE(calls.ok());
  CHECK(calls->size() == 1);

  LedgerQuery only_later;
  only_later.since = at_ms(kBaseMs + 1);
  auto later = read_sqlite_decisions(path, only_later);
  REQUIRE(later.ok());
  REQUIRE(later->size() == 1);
  CHECK((*later)[0].kind == DecisionKind::kShadow);
}

TEST_CASE("a judged shadow call's verdict and costs read back from the SQLite and JSONL ledgers") {
  TempDir dir;
  const std::string path = (dir.path() / "ledger.db").string();
  const std::vector<DecisionRecord> written = {sample_decision_record(0, false),
                                               judged_record(1, JudgedVerdict::Outcome::kLoss),
                                               sample_decision_record(2, true),
                                               judged_record(3, JudgedVerdict::Outcome::kError)};
  {
    auto sink = open_sqlite_ledger({.path = path});
    REQUIRE_MESSAGE(sink.ok(), sink.status().message());
    for (const DecisionRecord& r : written) REQUIRE((*sink)->write(r).ok());
    REQUIRE((*sink)->flush().ok());
  }
  auto decisions = read_sqlite_decisions(path);
  REQUIRE_MESSAGE(decisions.ok(), decisions.status().message());
  REQUIRE(decisions->size() == written.size());
  for (size_t i = 0; i < written.size(); ++i) check_same((*decisions)[i], written[i]);
  for (const DecisionRecord& r : written) {
    auto back = decision_record_from_json(decision_record_to_json(r));
    REQUIRE_MESSAGE(back.ok(), back.status().message());
    check_same(*back, r);
  }
  CHECK(to_string(JudgedVerdict::Outcome::kSkipped) == "skipped");
  CHECK(parse_judged_outcome("tie") == JudgedVerdict::Outcome::kTie);
  CHECK_FALSE(parse_judged_outcome("draw").has_value());
}

TEST_CASE("a version 1 ledger is migrated in place and keeps its calls") {
  TempDir dir;
  const std::string path = (dir.path() / "old.db").string();
  write_old_ledger(path, std::string(kVersion1Calls) + "PRAGMA user_version = 1;");
  auto before = read_sqlite_decisions(path);
  REQUIRE_MESSAGE(before.ok(), before.status().message());
  CHECK(before->empty());  // a version 1 ledger has no decisions to read
  // Readers do not migrate: the old file reads as it is, its usage the provider's.
  auto calls_before = read_sqlite_ledger(path);
  REQUIRE_MESSAGE(calls_before.ok(), calls_before.status().message());
  REQUIRE(calls_before->size() == 1);
  CHECK_FALSE((*calls_before)[0].usage_estimated);
  CHECK(*sqlite_ledger_schema_version(path) == 1);

  {
    auto sink = open_sqlite_ledger({.path = path});
    REQUIRE_MESSAGE(sink.ok(), sink.status().message());
    REQUIRE((*sink)->write(sample_decision_record(2, false)).ok());
    REQUIRE((*sink)->flush().ok());
  }
  CHECK(*sqlite_ledger_schema_version(path) == sqlite_ledger_latest_schema());
  auto calls = read_sqlite_ledger(path);
  REQUIRE(calls.ok());
  REQUIRE(calls->size() == 1);
  CHECK((*calls)[0].cost == 9000);
  CHECK_FALSE((*calls)[0].usage_estimated);
  auto decisions = read_sqlite_decisions(path);
  REQUIRE(decisions.ok());
  REQUIRE(decisions->size() == 1);
  check_same((*decisions)[0], sample_decision_record(2, false));
  CHECK(check_sqlite_ledger(path).ok());
}

TEST_CASE("a version 2 ledger is migrated in place: its calls read as provider usage, new ones keep an estimate") {
  TempDir dir;
  const std::string path = (dir.path() / "v2.db").string();
  write_old_ledger(path, std::string(kVersion1Calls) + kVersion2Decisions + "PRAGMA user_version = 2;");
  auto before = read_sqlite_ledger(path);  // readers do not migrate
  REQUIRE_MESSAGE(before.ok(), before.status().message());
  REQUIRE(before->size() == 1);
  CHECK_FALSE((*before)[0].usage_estimated);
  CHECK(*sqlite_ledger_schema_version(path) == 2);

  CostRecord cut;
  cut.time = at_ms(kBaseMs + 1);
  cut.trace_id = "t2";
  cut.call_id = "c2";
  cut.workload = "code_fix";
  cut.model = "claude-opus-4-1";
  cut.usage.input_tokens = 100;
  cut.usage.output_tokens = 7;
  cut.usage_estimated = true;
  cut.cost = 2025;
  cut.status = CallStatus::kCancelled;
  cut.error = "cancelled: the client disconnected";
  {
    auto sink = open_sqlite_ledger({.path = path});
    REQUIRE_MESSAGE(sink.ok(), sink.status().message());
    REQUIRE((*sink)->write(cut).ok());
    REQUIRE((*sink)->flush().ok());
  }
  CHECK(*sqlite_ledger_schema_version(path) == sqlite_ledger_latest_schema());
  auto calls = read_sqlite_ledger(path);
  REQUIRE_MESSAGE(calls.ok(), calls.status().message());
  REQUIRE(calls->size() == 2);
  CHECK((*calls)[0].status == CallStatus::kOk);
  CHECK((*calls)[0].cost == 9000);
  CHECK_FALSE((*calls)[0].usage_estimated);  // the new column's default for rows written before it
  CHECK((*calls)[1].status == CallStatus::kCancelled);
  CHECK((*calls)[1].usage_estimated);
  CHECK((*calls)[1].usage == cut.usage);
  CHECK((*calls)[1].cost == 2025);
  CHECK((*calls)[1].error == cut.error);
  auto decisions = read_sqlite_decisions(path);
  REQUIRE_MESSAGE(decisions.ok(), decisions.status().message());
  REQUIRE(decisions->size() == 1);
  CHECK((*decisions)[0].decision.model == "claude-opus-4-1");
  CHECK((*decisions)[0].step.input_tokens == 100);
  CHECK(check_sqlite_ledger(path).ok());
}

TEST_CASE("a JSONL ledger marks decision lines and their step reads back as a step") {
  TempDir dir;
  const std::string path = (dir.path() / "ledger.jsonl").string();
  {
    auto sink = open_jsonl_ledger(path);
    REQUIRE(sink.ok());
    REQUIRE((*sink)->write(sample_decision_record(3, true)).ok());
    REQUIRE((*sink)->flush().ok());
  }
  std::ifstream in(path);
  std::string line;
  REQUIRE(std::getline(in, line));
  const auto j = nlohmann::ordered_json::parse(line);
  CHECK(j["record"] == "decision");
  CHECK(j["kind"] == "shadow");
  CHECK(j["agrees"] == false);
  CHECK(j["decision"]["model"] == "claude-opus-4-1");
  CHECK(j["active"]["model"] == "claude-sonnet-4-5");
  auto step = parse_step_json(j["step"].dump());
  REQUIRE_MESSAGE(step.ok(), step.status().message());
  CHECK(step_to_json(*step) == step_to_json(sample_decision_record(3, true).step));
}

TEST_CASE("the dispatcher records each step's decision with the counted tokens and no prompt unless kept") {
  for (const bool keep : {false, true}) {
    CAPTURE(keep);
    TempDir dir;
    auto engine = testing::engine_with_rules(dir, R"lua(
function classify(step, ctx) return { tier = "cheap", reason = "r:" .. step.input_tokens } end
)lua", keep ? "\n[ledger]\nkeep_prompts = true\n" : "");
    REQUIRE_MESSAGE(engine.ok(), engine.status().message());
    std::vector<DecisionRecord> decisions;
    std::vector<CostRecord> calls;
    DispatcherOptions options;
    options.ledger = std::make_shared<Ledger>(std::vector<std::shared_ptr<LedgerSink>>{
        callback_ledger([&](const CostRecord& r) { calls.push_back(r); },
                        [&](const DecisionRecord& r) { decisions.push_back(r); })});
    auto clients = ModelClients::from_config((*engine)->config());
    REQUIRE(clients.ok());
    Dispatcher dispatcher(**engine, std::move(clients).value(), options);
    StepCall call;
    call.step.role = "format";
    call.step.prompt = std::string(300, 'x');  // 100 tokens by the engine's estimate
    const StepResult result = dispatcher.run("w", call);
    REQUIRE_MESSAGE(result.status.ok(), result.status.message());
    REQUIRE(decisions.size() == 1);
    const DecisionRecord& d = decisions[0];
    CHECK(d.trace_id == result.trace_id);
    CHECK(d.kind == DecisionKind::kRules);
    CHECK(d.admission == AdmissionOutcome::kAdmitted);
    CHECK(d.step.input_tokens == 100);
    CHECK(d.step.prompt.has_value() == keep);
    CHECK(d.decision.reason == "r:100");
    CHECK(same_choice(d.decision, result.decision));
    REQUIRE(!calls.empty());
    CHECK(calls[0].trace_id == d.trace_id);
  }
}

}  // TEST_SUITE("ledger")
