// The PostgreSQL ledger against a real server each test starts itself
// (support/postgres_server.h): records read back as the SQLite ledger reads
// them, the versioned schema, writes made idempotent by record key, and the
// spool that takes the records while the server is down and replays them
// once when it is back.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "ledger/postgres.h"
#include "ledger/record_json.h"
#include "support/postgres_server.h"
#include "switchboard/ledger.h"
#include "test_util.h"

using namespace switchboard;
using switchboard::testing::PostgresServer;
using switchboard::testing::TempDir;

namespace {

constexpr std::int64_t kBaseMs = 1'793'536'496'789;  // 2026-11-01T12:34:56.789Z

std::chrono::system_clock::time_point at_ms(std::int64_t ms) {
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
}

// Every field set, and text PostgreSQL's COPY format must escape (tab,
// newline, backslash, "\N"), non-ASCII text and an invalid UTF-8 byte.
CostRecord sample_call(int n) {
  CostRecord r;
  r.time = at_ms(kBaseMs + n);
  r.trace_id = "trace-" + std::to_string(n);
  r.parent_id = n % 2 ? "parent-" + std::to_string(n) : "";
  r.call_id = "call-" + std::to_string(n);
  r.workload = n % 3 == 0 ? "contract_review" : "code_fix";
  r.role = "summarize";
  r.tier = "premium";
  r.model = "claude-sonnet-4-5";
  r.provider = "anthropic";
  r.rules_version = std::string(64, 'a');
  r.catalog_version = "2026-11-01";
  r.latency_ms = 1200 + n;
  r.usage.input_tokens = 8000 + n;
  r.usage.cached_input_tokens = 2000 + n;
  r.usage.cache_write_5m_tokens = 300 + n;
  r.usage.cache_write_1h_tokens = 40 + n;
  r.usage.output_tokens = 1500 + n;
  r.usage.reasoning_tokens = 700 + n;
  r.usage_estimated = n % 2 == 0;
  r.cost = 123'456'789'012 + n;  // beyond 32 bits
  r.counted_input_tokens = 9500 + n;
  r.status = n % 2 ? CallStatus::kFallback : CallStatus::kOk;
  r.error = "upstream 529:\toverloaded\nline two \\N \\ \"quoted\" \xC3\xA9";
  r.budget_scopes = {"workload:w", "key:team-a", "tag:team=search \"q\""};
  r.reserved = 100'000'000 + n;
  r.output_cap = 2048 + n;
  r.output_cap_lowered = n % 2 == 1;
  return r;
}

DecisionRecord sample_decision(int n, bool shadow) {
  DecisionRecord r;
  r.time = at_ms(kBaseMs + n);
  r.trace_id = "trace-" + std::to_string(n);
  r.kind = shadow ? DecisionKind::kShadow : DecisionKind::kRules;
  r.step.role = "plan";
  r.step.input_tokens = 3327 + n;
  r.step.needs_chain_of_thought = true;
  r.step.tool_depth = 2;
  r.step.meta = {{"task", std::string("t\t001")}, {"step", std::int64_t{1}}, {"score", 0.25}, {"web", true}};
  Decision& d = r.decision;
  d.workload = "code_fix";
  d.rules_version = std::string(64, 'b');
  d.tier = "premium";
  d.model = "claude-opus-4-1";
  d.reasoning = Reasoning::kHigh;
  d.fanout = 3;
  d.aggregate = "balanced";
  d.max_output_tokens = 4000 + n;
  d.reason = "plan: needs chain of thought";
  if (n % 2) d.error = "rules/code_fix.lua:12: boom";
  d.context_spent = 1'500'000 + n;
  if (n % 2) d.context_budget_left = 98'500'000 - n;
  d.estimated_input_tokens = 3327 + n;
  d.estimated_output_tokens = 518;
  d.estimated_cost = 77'000 + n;
  r.admission = shadow ? AdmissionOutcome::kNotAdmitted : AdmissionOutcome::kRerouted;
  if (shadow) {
    Decision active = d;
    active.tier = "balanced";
    active.model = "claude-sonnet-4-5";
    active.reasoning = Reasoning::kDefault;
    active.max_output_tokens.reset();
    r.active = active;
  } else if (n % 3 == 1) {  // a judged shadow call's record, on the step's trace
    r.kind = DecisionKind::kJudged;
    r.admission = AdmissionOutcome::kNotAdmitted;
    JudgedVerdict v;
    v.outcome = n % 2 ? JudgedVerdict::Outcome::kLoss : JudgedVerdict::Outcome::kError;
    v.reason = "routed as A: B, the\ttarget's is complete; routed as B: B";
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
  }
  return r;
}

// A record as its JSON line, the store's id left out: equal lines, equal records.
std::string fields(CostRecord r) {
  r.id = 0;
  return cost_record_to_json(r);
}
std::string fields(DecisionRecord r) {
  r.id = 0;
  return decision_record_to_json(r);
}

PostgresLedgerOptions options_for(const PostgresServer& server, const TempDir& dir) {
  PostgresLedgerOptions o;
  o.url = server.url();
  o.spool_path = (dir.path() / "spool.jsonl").string();
  o.retry_interval = std::chrono::milliseconds(100);
  return o;
}

// Waits (up to 20 s) until `done` holds.
template <typename F>
bool eventually(F done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

size_t stored_calls(const std::string& url) {
  auto records = read_ledger(url);
  return records.ok() ? records->size() : 0;
}

}  // namespace

TEST_SUITE("postgres") {

TEST_CASE("the PostgreSQL ledger reads back every record exactly as the SQLite ledger does") {
  PostgresServer server;
  TempDir dir;
  const std::string sqlite_path = (dir.path() / "ledger.db").string();
  {
    auto pg = open_postgres_ledger(options_for(server, dir));
    REQUIRE_MESSAGE(pg.ok(), pg.status().message());
    auto sqlite = open_sqlite_ledger(SqliteLedgerOptions{sqlite_path});
    REQUIRE(sqlite.ok());
    for (int n = 0; n < 6; ++n) {
      for (const auto& sink : {*pg, *sqlite}) {
        REQUIRE(sink->write(sample_call(n)).ok());
        REQUIRE(sink->write(sample_decision(n, n % 3 == 2)).ok());
      }
    }
    REQUIRE((*pg)->flush().ok());
    REQUIRE((*sqlite)->flush().ok());
    CHECK(postgres_ledger_transactions(**pg) >= 1);
    CHECK(postgres_ledger_spooled(**pg) == 0);
    CHECK((*pg)->name() == "postgresql://postgres@127.0.0.1:" + std::to_string(server.port()) + "/postgres");
  }
  auto pg_calls = read_ledger(server.url());
  REQUIRE_MESSAGE(pg_calls.ok(), pg_calls.status().message());
  auto sqlite_calls = read_ledger(sqlite_path);
  REQUIRE(sqlite_calls.ok());
  REQUIRE(pg_calls->size() == 6);
  REQUIRE(sqlite_calls->size() == 6);
  for (size_t i = 0; i < 6; ++i) {
    CHECK((*pg_calls)[i].id > 0);
    CHECK(fields((*pg_calls)[i]) == fields((*sqlite_calls)[i]));
  }
  // The text came through COPY's escaping whole.
  CHECK((*pg_calls)[1].error == sample_call(1).error);
  CHECK((*pg_calls)[1].budget_scopes == sample_call(1).budget_scopes);
  CHECK((*pg_calls)[1].cost == sample_call(1).cost);

  auto pg_decisions = read_ledger_decisions(server.url());
  REQUIRE_MESSAGE(pg_decisions.ok(), pg_decisions.status().message());
  auto sqlite_decisions = read_ledger_decisions(sqlite_path);
  REQUIRE(sqlite_decisions.ok());
  REQUIRE(pg_decisions->size() == 6);
  for (size_t i = 0; i < 6; ++i) CHECK(fields((*pg_decisions)[i]) == fields((*sqlite_decisions)[i]));
  CHECK((*pg_decisions)[2].active.has_value());
  REQUIRE((*pg_decisions)[1].judged.has_value());
  CHECK((*pg_decisions)[1].kind == DecisionKind::kJudged);
  CHECK((*pg_decisions)[1].judged->outcome == JudgedVerdict::Outcome::kLoss);
  CHECK((*pg_decisions)[1].judged->reason == sample_decision(1, false).judged->reason);
  CHECK((*pg_decisions)[4].judged->target_cost == 34'004);
  CHECK_FALSE((*pg_decisions)[0].judged.has_value());

  // The filters select the same records.
  LedgerQuery q;
  q.since = at_ms(kBaseMs + 1);
  q.until = at_ms(kBaseMs + 5);
  q.workload = "code_fix";
  auto pg_some = read_ledger(server.url(), q);
  auto sqlite_some = read_ledger(sqlite_path, q);
  REQUIRE(pg_some.ok());
  REQUIRE(sqlite_some.ok());
  REQUIRE(pg_some->size() == sqlite_some->size());
  CHECK(pg_some->size() == 3);  // 1, 2 and 4 (3 is contract_review)
  for (size_t i = 0; i < pg_some->size(); ++i) CHECK(fields((*pg_some)[i]) == fields((*sqlite_some)[i]));
}

TEST_CASE("text that is not UTF-8 is stored with U+FFFD in place of each bad byte and never lost") {
  PostgresServer server;
  TempDir dir;
  CostRecord r = sample_call(0);
  static constexpr char kBad[] = "bad \xFF byte, a NUL \0 and a cut \xE2\x82";
  r.error = std::string(kBad, sizeof kBad - 1);
  {
    auto pg = open_postgres_ledger(options_for(server, dir));
    REQUIRE(pg.ok());
    REQUIRE((*pg)->write(r).ok());
    REQUIRE((*pg)->flush().ok());
  }
  auto calls = read_ledger(server.url());
  REQUIRE(calls.ok());
  REQUIRE(calls->size() == 1);
  CHECK((*calls)[0].error == "bad \xEF\xBF\xBD byte, a NUL \xEF\xBF\xBD and a cut \xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_CASE("a new PostgreSQL ledger gets the latest schema version and a newer one is refused") {
  PostgresServer server;
  TempDir dir;
  auto before = postgres_ledger_schema_version(server.url());
  REQUIRE(before.ok());
  CHECK(*before == 0);
  auto missing = read_ledger(server.url());
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message().find("not a Switchboard ledger") != std::string::npos);
  {
    auto pg = open_postgres_ledger(options_for(server, dir));
    REQUIRE(pg.ok());
  }
  auto version = postgres_ledger_schema_version(server.url());
  REQUIRE(version.ok());
  CHECK(*version == postgres_ledger_latest_schema());
  {
    auto again = open_postgres_ledger(options_for(server, dir));  // migrates nothing
    REQUIRE(again.ok());
  }
  server.query("UPDATE switchboard_schema SET version = 99");
  auto newer = open_postgres_ledger(options_for(server, dir));
  REQUIRE_FALSE(newer.ok());
  CHECK(newer.status().message().find("ledger schema version 99 is newer than this build's") != std::string::npos);
  auto read = read_ledger(server.url());
  REQUIRE_FALSE(read.ok());
  CHECK(read.status().message().find("newer than this build's") != std::string::npos);
}

TEST_CASE("a spool replayed twice or holding records already committed leaves one copy of each") {
  PostgresServer server;
  TempDir dir;
  const PostgresLedgerOptions options = options_for(server, dir);
  {  // the schema, and one record committed before the "crash"
    auto pg = open_postgres_ledger(options);
    REQUIRE(pg.ok());
  }
  // A spool as a crashed writer left it: each record twice (a replay cut
  // short and spooled again), and a torn last line, never acknowledged.
  std::string spool;
  for (int n = 0; n < 4; ++n) spool += "crashed-" + std::to_string(n) + "\t" + cost_record_to_json(sample_call(n)) + "\n";
  spool += "crashed-d\t" + decision_record_to_json(sample_decision(7, true)) + "\n";
  spool += spool;
  spool += "crashed-9\t{\"torn";
  std::ofstream(options.spool_path, std::ios::binary) << spool;
  {
    auto pg = open_postgres_ledger(options);
    REQUIRE(pg.ok());
    CHECK(eventually([&] { return std::filesystem::file_size(options.spool_path) == 0; }));
  }
  CHECK(stored_calls(server.url()) == 4);
  auto decisions = read_ledger_decisions(server.url());
  REQUIRE(decisions.ok());
  CHECK(decisions->size() == 1);
  // The same lines again (a crash between the commit and emptying the spool).
  std::ofstream(options.spool_path, std::ios::binary) << spool;
  {
    auto pg = open_postgres_ledger(options);
    REQUIRE(pg.ok());
    CHECK(eventually([&] { return std::filesystem::file_size(options.spool_path) == 0; }));
  }
  auto calls = read_ledger(server.url());
  REQUIRE(calls.ok());
  REQUIRE(calls->size() == 4);
  for (int n = 0; n < 4; ++n) CHECK(fields((*calls)[static_cast<size_t>(n)]) == fields(sample_call(n)));
}

TEST_CASE("while PostgreSQL is down a flush spools the records and they land once when it is back") {
  PostgresServer server;
  TempDir dir;
  const PostgresLedgerOptions options = options_for(server, dir);
  auto pg = open_postgres_ledger(options);
  REQUIRE(pg.ok());
  REQUIRE((*pg)->write(sample_call(0)).ok());
  REQUIRE((*pg)->flush().ok());
  CHECK(stored_calls(server.url()) == 1);

  server.stop();
  for (int n = 1; n <= 20; ++n) {
    REQUIRE((*pg)->write(sample_call(n)).ok());
    if (n % 5 == 0) {
      const auto start = std::chrono::steady_clock::now();
      const Status flushed = (*pg)->flush();
      CHECK_MESSAGE(flushed.ok(), flushed.message());
      // Acknowledged by the spool at once: no wait on a server that is down.
      CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
    }
  }
  CHECK(postgres_ledger_spooled(**pg) == 20);
  CHECK(std::filesystem::file_size(options.spool_path) > 0);

  server.start();
  CHECK(eventually([&] { return postgres_ledger_spooled(**pg) == 0; }));
  CHECK(std::filesystem::file_size(options.spool_path) == 0);
  // New records go straight to the server again.
  REQUIRE((*pg)->write(sample_call(21)).ok());
  REQUIRE((*pg)->flush().ok());
  pg->reset();
  auto calls = read_ledger(server.url());
  REQUIRE(calls.ok());
  REQUIRE(calls->size() == 22);
  for (int n = 0; n <= 21; ++n) CHECK(fields((*calls)[static_cast<size_t>(n)]) == fields(sample_call(n)));
}

TEST_CASE("records spooled by a process that went away are replayed by the next sink on that spool") {
  PostgresServer server;
  TempDir dir;
  const PostgresLedgerOptions options = options_for(server, dir);
  { auto pg = open_postgres_ledger(options); }  // the schema
  server.stop();
  {
    auto pg = open_postgres_ledger(options);  // the server is down: it opens, spooling
    REQUIRE(pg.ok());
    for (int n = 0; n < 5; ++n) REQUIRE((*pg)->write(sample_call(n)).ok());
    REQUIRE((*pg)->flush().ok());
    CHECK(postgres_ledger_spooled(**pg) == 5);
  }
  CHECK(std::filesystem::file_size(options.spool_path) > 0);
  server.start();
  {
    auto pg = open_postgres_ledger(options);
    REQUIRE(pg.ok());
    CHECK(eventually([&] { return std::filesystem::file_size(options.spool_path) == 0; }));
  }
  CHECK(stored_calls(server.url()) == 5);
}

TEST_CASE("a full spool fails the flush of the records it cannot take and the sink keeps working") {
  PostgresServer server;
  TempDir dir;
  PostgresLedgerOptions options = options_for(server, dir);
  options.spool_limit_bytes = cost_record_to_json(sample_call(0)).size() * 3;  // two records fit, not three
  auto pg = open_postgres_ledger(options);
  REQUIRE(pg.ok());
  server.stop();
  REQUIRE((*pg)->write(sample_call(0)).ok());
  REQUIRE((*pg)->write(sample_call(1)).ok());
  REQUIRE((*pg)->flush().ok());
  REQUIRE((*pg)->write(sample_call(2)).ok());
  REQUIRE((*pg)->write(sample_call(3)).ok());
  const Status full = (*pg)->flush();
  REQUIRE_FALSE(full.ok());
  CHECK(full.message().find("is full") != std::string::npos);
  CHECK((*pg)->flush().ok());  // nothing new since: nothing fails
  server.start();
  CHECK(eventually([&] { return postgres_ledger_spooled(**pg) == 0; }));
  REQUIRE((*pg)->write(sample_call(4)).ok());
  REQUIRE((*pg)->flush().ok());
  pg->reset();
  auto calls = read_ledger(server.url());
  REQUIRE(calls.ok());
  REQUIRE(calls->size() == 3);  // the two spooled and the last; the two refused were never acknowledged
  CHECK((*calls)[0].call_id == "call-0");
  CHECK((*calls)[1].call_id == "call-1");
  CHECK((*calls)[2].call_id == "call-4");
}

TEST_CASE("a spool is held by one sink at a time") {
  PostgresServer server;
  TempDir dir;
  auto first = open_postgres_ledger(options_for(server, dir));
  REQUIRE(first.ok());
  auto second = open_postgres_ledger(options_for(server, dir));
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().message().find("held by another process") != std::string::npos);
}

TEST_CASE("concurrent writers and flushers share transactions and every acknowledged record is stored once") {
  PostgresServer server;
  TempDir dir;
  auto pg = open_postgres_ledger(options_for(server, dir));
  REQUIRE(pg.ok());
  constexpr int kThreads = 8, kEach = 50;
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        CostRecord r = sample_call(t * kEach + i);
        if (!(*pg)->write(r).ok() || !(*pg)->flush().ok()) failed++;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(failed.load() == 0);
  CHECK(postgres_ledger_transactions(**pg) < static_cast<std::uint64_t>(kThreads * kEach));
  CHECK(stored_calls(server.url()) == static_cast<size_t>(kThreads * kEach));
}

TEST_CASE("the token factors and re-priced costs are stored in a PostgreSQL ledger") {
  PostgresServer server;
  TempDir dir;
  {
    auto pg = open_postgres_ledger(options_for(server, dir));
    REQUIRE(pg.ok());
    REQUIRE((*pg)->write(sample_call(0)).ok());
    REQUIRE((*pg)->write(sample_call(1)).ok());
    REQUIRE((*pg)->flush().ok());
  }
  TokenCalibration c;
  c.calls = 40;
  c.p50 = 1.05;
  c.p99 = 1.125;
  c.factor = 1.2;
  REQUIRE(store_token_factors(server.url(), {{"claude-sonnet-4-5", c}}).ok());
  auto factors = read_token_factors(server.url());
  REQUIRE(factors.ok());
  REQUIRE(factors->count("claude-sonnet-4-5") == 1);
  CHECK(factors->at("claude-sonnet-4-5").calls == 40);
  CHECK(factors->at("claude-sonnet-4-5").factor == doctest::Approx(1.2));

  auto calls = read_ledger(server.url());
  REQUIRE(calls.ok());
  REQUIRE(reprice_ledger(server.url(), {{(*calls)[0].id, 7}, {(*calls)[1].id, 9}}, "2027-01-01").ok());
  auto repriced = read_ledger(server.url());
  REQUIRE(repriced.ok());
  CHECK((*repriced)[0].cost == 7);
  CHECK((*repriced)[1].cost == 9);
  CHECK((*repriced)[1].catalog_version == "2027-01-01");
}

}  // TEST_SUITE
