// The SQLite ledger: the one file that calls SQLite. Every SQLite failure
// becomes a Status naming the database file; nothing throws across the C API.
//
// A record goes through two queues, each worked by whichever thread holds its
// role, in order:
//  - the journal (appender role, appending_): a flush() caller appends every
//    record written so far with one write (group commit, leader and
//    followers: when no append is running it appends on its own thread at
//    once; when one is running it waits for it, and the next append takes
//    every record queued meanwhile, so concurrent flushes share one write and
//    never wait a fixed delay); the background writer appends the records
//    nobody flushes after max_delay. A record is acknowledged (durable) once
//    its append returned: a write, a crash of the process cannot lose it;
//    with durability "power" also fdatasync, a power loss cannot.
//  - the database (ingester role, ingesting_): journaled records move in,
//    batch_size to a transaction (bench_ledger measured the cost per record
//    by batch size: flat past 512), and journal_state (generation, byte
//    offset) moves on in the same transaction. The idle ingester, a thread at
//    the scheduler's idle priority (SCHED_IDLE), does this when it is due, so
//    a batch's CPU (a few milliseconds, a WAL checkpoint's copy among them)
//    never delays a request's thread waking on the same core: at one
//    connection the gateway's p99 fell by 0.1 to 1.0 ms in nine pairs when
//    its thread was moved to idle priority (at a cost in the I/O thread's
//    CPU per request: README). The idle ingester may be starved while every
//    core is busy; once a batch is late (idle_late_after past max_delay, or
//    kLateBatches batches waiting) the background writer, at normal
//    priority, moves it in instead. A batch the idle ingester has begun
//    finishes on it (the ones after wait for it: the ingester role is one);
//    nothing else waits on it: acknowledgements are the journal's.
// Replays (replay_journal: at open, for readers, and when the memory bound
// overflowed) read the journal under the database's write lock and move in
// what lies past journal_state, so every record gets in exactly once;
// rotation (start_next_generation) renames a new journal over the old under
// that lock too, once the database holds everything.
// Without the journal (another writer holds it) write() queues for the
// database and a flush() commits the queue as a transaction, the ingester
// role then being the committer: the sink as it was before the journal.
// The database is in WAL mode, synchronous=NORMAL, or FULL with durability
// "power" (a commit that moves journal_state on must be as durable as the
// journal lines it stands for).
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>

#include <nlohmann/json.hpp>

#include "async/fiber.h"
#include "async/waits.h"
#include "ledger/journal.h"
#include "ledger/record_columns.h"
#include "ledger/record_json.h"
#include "ledger/sqlite.h"
#include "switchboard/calibration.h"
#include "switchboard/ledger.h"
#include "util/idle_priority.h"
#include "util/thread_name.h"

namespace switchboard {

namespace {

using Clock = std::chrono::steady_clock;

struct DbClose {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbClose>;

struct StmtFinalize {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalize>;

// Schema migrations, applied in order inside one transaction; the file's
// `PRAGMA user_version` is the last one applied. Append, never edit.
struct Migration {
  int version;
  const char* sql;
};
constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE calls (
  id                     INTEGER PRIMARY KEY,
  time_ms                INTEGER NOT NULL,  -- milliseconds since 1970-01-01T00:00:00Z
  trace_id               TEXT    NOT NULL,
  parent_id              TEXT    NOT NULL,
  call_id                TEXT    NOT NULL,
  workload               TEXT    NOT NULL,
  role                   TEXT    NOT NULL,
  tier                   TEXT    NOT NULL,
  model                  TEXT    NOT NULL,
  provider               TEXT    NOT NULL,
  rules_version          TEXT    NOT NULL,
  catalog_version        TEXT    NOT NULL,
  latency_ms             INTEGER NOT NULL,
  input_tokens           INTEGER NOT NULL,
  cached_input_tokens    INTEGER NOT NULL,
  cache_write_5m_tokens  INTEGER NOT NULL,
  cache_write_1h_tokens  INTEGER NOT NULL,
  output_tokens          INTEGER NOT NULL,
  reasoning_tokens       INTEGER NOT NULL,
  cost_micro_usd         INTEGER NOT NULL,
  status                 TEXT    NOT NULL,  -- ok | error | fallback | refused_by_budget
  error                  TEXT    NOT NULL
);
CREATE INDEX calls_by_time ON calls(time_ms);
CREATE INDEX calls_by_workload ON calls(workload, time_ms);
)sql"},
    // Decisions: one row per decision (the rules' own, a caller's request, or
    // a shadow evaluation), with the step fields the rules saw as JSON in the
    // STEPS.jsonl form; joined to `calls` by trace_id.
    {2, R"sql(
CREATE TABLE decisions (
  id                        INTEGER PRIMARY KEY,
  time_ms                   INTEGER NOT NULL,
  trace_id                  TEXT    NOT NULL,
  kind                      TEXT    NOT NULL,  -- rules | requested | shadow | eval | judged
  workload                  TEXT    NOT NULL,
  role                      TEXT    NOT NULL,
  rules_version             TEXT    NOT NULL,
  step_json                 TEXT    NOT NULL,
  tier                      TEXT    NOT NULL,
  model                     TEXT    NOT NULL,
  reasoning                 TEXT    NOT NULL,  -- '' = the model's default
  fanout                    INTEGER NOT NULL,
  aggregate                 TEXT    NOT NULL,
  max_output_tokens         INTEGER,           -- NULL = not set by the rules
  reason                    TEXT    NOT NULL,
  error                     TEXT,              -- NULL = the rules did not fail
  ctx_spent_micro_usd       INTEGER NOT NULL,
  ctx_budget_left_micro_usd INTEGER,           -- NULL = no budget
  estimated_input_tokens    INTEGER NOT NULL,
  estimated_output_tokens   INTEGER NOT NULL,
  estimated_cost_micro_usd  INTEGER NOT NULL,
  admission                 TEXT    NOT NULL,  -- admitted | rerouted | refused | not_admitted
  agrees                    INTEGER,           -- shadow rows: 1 when the same choice as active_*
  active_rules_version      TEXT,
  active_tier               TEXT,
  active_model              TEXT,
  active_reasoning          TEXT,
  active_fanout             INTEGER,
  active_aggregate          TEXT,
  active_max_output_tokens  INTEGER
);
CREATE INDEX decisions_by_time ON decisions(time_ms);
CREATE INDEX decisions_by_workload ON decisions(workload, time_ms);
CREATE INDEX decisions_by_trace ON decisions(trace_id);
CREATE INDEX calls_by_trace ON calls(trace_id);
)sql"},
    // Cancelled attempts: status 'cancelled' (no schema change), and whether a
    // call's usage is the engine's estimate rather than the provider's figures.
    {3, R"sql(
ALTER TABLE calls ADD COLUMN usage_estimated INTEGER NOT NULL DEFAULT 0;  -- 1 = usage is an estimate
)sql"},
    // Budgets that hold and survive: the scopes each call was charged to (a
    // restarted host loads every scope's spend from them), what was reserved
    // for it (a cost above it is an overrun), and the output cap it was sent.
    {4, R"sql(
ALTER TABLE calls ADD COLUMN budget_scopes TEXT NOT NULL DEFAULT '[]';  -- JSON array of scope names
ALTER TABLE calls ADD COLUMN reserved_micro_usd INTEGER NOT NULL DEFAULT 0;  -- 0 = no cap applied
ALTER TABLE calls ADD COLUMN output_cap INTEGER NOT NULL DEFAULT 0;  -- 0 = none sent
ALTER TABLE calls ADD COLUMN output_cap_lowered INTEGER NOT NULL DEFAULT 0;  -- 1 = lowered to what the budget affords
)sql"},
    // Calibrated token counts (calibration.h): the engine's own count of each
    // answered call's input, and the factors `switchboard calibrate` learned
    // from them, in parts per million (no floating point in the ledger).
    {5, R"sql(
ALTER TABLE calls ADD COLUMN counted_input_tokens INTEGER NOT NULL DEFAULT 0;  -- 0 = not counted
CREATE TABLE token_factors (
  model       TEXT    PRIMARY KEY,
  calls       INTEGER NOT NULL,
  p50_ppm     INTEGER NOT NULL,  -- median of billed / counted input, x 1,000,000
  p99_ppm     INTEGER NOT NULL,
  factor_ppm  INTEGER NOT NULL,  -- max(p99, the model's calibration_floor)
  time_ms     INTEGER NOT NULL
);
)sql"},
    // The acknowledgement journal (journal.h): how far its records have been
    // moved into this database, updated in the transaction that moves them,
    // so a replay after a crash moves each exactly once.
    {6, R"sql(
CREATE TABLE journal_state (
  id              INTEGER PRIMARY KEY CHECK (id = 1),
  generation      TEXT    NOT NULL,  -- the journal generation the offset is in; '' before any
  ingested_bytes  INTEGER NOT NULL   -- the generation's bytes whose records are in this database
);
INSERT INTO journal_state (id, generation, ingested_bytes) VALUES (1, '', 0);
)sql"},
    // Judged shadow calls (dispatch.h): a decision of kind 'judged' carries
    // the judge's verdict on the live answer against the shadow target's, and
    // both sides' costs; NULL on every other decision.
    {7, R"sql(
ALTER TABLE decisions ADD COLUMN verdict TEXT;  -- win | tie | loss | error | skipped
ALTER TABLE decisions ADD COLUMN verdict_reason TEXT;
ALTER TABLE decisions ADD COLUMN judge_model TEXT;
ALTER TABLE decisions ADD COLUMN routed_model TEXT;
ALTER TABLE decisions ADD COLUMN routed_call_id TEXT;  -- the live step's answering call
ALTER TABLE decisions ADD COLUMN target_tier TEXT;
ALTER TABLE decisions ADD COLUMN target_model TEXT;
ALTER TABLE decisions ADD COLUMN shadow_trace_id TEXT;  -- the target's and the judge's calls
ALTER TABLE decisions ADD COLUMN routed_cost_micro_usd INTEGER;
ALTER TABLE decisions ADD COLUMN target_cost_micro_usd INTEGER;
ALTER TABLE decisions ADD COLUMN judge_cost_micro_usd INTEGER;
)sql"},
};
constexpr int kLatestSchema = kMigrations[std::size(kMigrations) - 1].version;

// Every column but id, in the order the insert binds them (from 1).
constexpr const char* kInsertSql =
    "INSERT INTO calls (time_ms, trace_id, parent_id, call_id, workload, role, tier, model, provider, "
    "rules_version, catalog_version, latency_ms, input_tokens, cached_input_tokens, "
    "cache_write_5m_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, cost_micro_usd, "
    "status, error, usage_estimated, budget_scopes, reserved_micro_usd, output_cap, output_cap_lowered, "
    "counted_input_tokens) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
// The columns read back, in the order read_sqlite_ledger reads them; then
// usage_estimated, a constant 0 in a ledger older than version 3, the
// budget columns (kBudgetColumns), constants in one older than version 4,
// and counted_input_tokens, a constant 0 in one older than version 5
// (readers do not migrate).
constexpr const char* kSelectColumns =
    "SELECT id, time_ms, trace_id, parent_id, call_id, workload, role, tier, model, provider, "
    "rules_version, catalog_version, latency_ms, input_tokens, cached_input_tokens, "
    "cache_write_5m_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, cost_micro_usd, "
    "status, error, ";
constexpr int kUsageEstimatedSchema = 3;  // the first version with calls.usage_estimated
constexpr int kBudgetColumnsSchema = 4;    // the first version with the budget columns
constexpr const char* kBudgetColumns = ", budget_scopes, reserved_micro_usd, output_cap, output_cap_lowered";
constexpr const char* kNoBudgetColumns = ", '[]', 0, 0, 0";
constexpr int kCountedInputSchema = 5;    // the first with calls.counted_input_tokens and token_factors
constexpr int kJournalStateSchema = 6;    // the first with journal_state

constexpr const char* kDecisionColumns =
    "time_ms, trace_id, kind, workload, role, rules_version, step_json, tier, model, reasoning, fanout, "
    "aggregate, max_output_tokens, reason, error, ctx_spent_micro_usd, ctx_budget_left_micro_usd, "
    "estimated_input_tokens, estimated_output_tokens, estimated_cost_micro_usd, admission, agrees, "
    "active_rules_version, active_tier, active_model, active_reasoning, active_fanout, active_aggregate, "
    "active_max_output_tokens";
constexpr int kDecisionColumnCount = 29;
constexpr int kVerdictSchema = 7;  // the first with the verdict columns (ledger_columns::kVerdictColumns)

std::string decision_insert_sql() {
  std::string sql = std::string("INSERT INTO decisions (") + kDecisionColumns + ", " +
                    ledger_columns::kVerdictColumns + ") VALUES (";
  for (int i = 0; i < kDecisionColumnCount + ledger_columns::kVerdictColumnCount; ++i) sql += i == 0 ? "?" : ",?";
  return sql + ")";
}

constexpr int kBusyTimeoutMs = 5000;

std::int64_t to_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

Status db_error(const std::string& path, sqlite3* db, std::string_view doing) {
  return Status::io_error(path + ": " + std::string(doing) + ": " +
                          (db != nullptr ? sqlite3_errmsg(db) : "out of memory"));
}

Status exec(sqlite3* db, const std::string& path, const char* sql, std::string_view doing) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status();
  const std::string message = err != nullptr ? err : sqlite3_errstr(rc);
  sqlite3_free(err);
  return Status::io_error(path + ": " + std::string(doing) + ": " + message);
}

Result<StmtPtr> prepare(sqlite3* db, const std::string& path, std::string_view sql, bool persistent = false) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                    persistent ? SQLITE_PREPARE_PERSISTENT : 0, &stmt, nullptr);
  StmtPtr owned(stmt);
  if (rc != SQLITE_OK) return db_error(path, db, "cannot prepare a statement");
  return owned;
}

// The single integer a one-row statement such as a PRAGMA returns.
Result<std::int64_t> query_int(sqlite3* db, const std::string& path, const char* sql, std::string_view doing) {
  auto stmt = prepare(db, path, sql);
  if (!stmt.ok()) return stmt.status();
  if (sqlite3_step(stmt->get()) != SQLITE_ROW) return db_error(path, db, doing);
  return static_cast<std::int64_t>(sqlite3_column_int64(stmt->get(), 0));
}

// Turns SQLite's memory statistics off for the process, once, before its
// first connection: with them on (Debian's default), every allocation and
// every sqlite3_bind_* takes one process-wide mutex, about 7% of a ledger
// insert's instructions (README), shared with any other thread using
// SQLite. A host that initialized SQLite before (sqlite3_initialize(), or a
// connection of its own) keeps its configuration: sqlite3_config then
// refuses, which is fine.
void configure_sqlite_once() {
  static const bool configured = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK;
  (void)configured;
}

Result<DbPtr> open_db(const std::string& path, int flags) {
  configure_sqlite_once();
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  DbPtr db(raw);  // owned even when the open failed
  if (rc != SQLITE_OK) return db_error(path, db.get(), "cannot open the ledger database");
  sqlite3_extended_result_codes(db.get(), 1);
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  return db;
}

// Brings the schema to kLatestSchema. BEGIN IMMEDIATE takes the write lock
// before reading the version, so two processes opening a new file do not
// both migrate; a file already at the latest version is left untouched.
Status migrate(sqlite3* db, const std::string& path) {
  if (Status s = exec(db, path, "BEGIN IMMEDIATE", "cannot start the schema migration"); !s.ok()) return s;
  const auto fail = [&](Status s) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    return s;
  };
  auto version = query_int(db, path, "PRAGMA user_version", "cannot read the schema version");
  if (!version.ok()) return fail(version.status());
  if (*version > kLatestSchema) {
    return fail(Status::invalid_argument(path + ": ledger schema version " + std::to_string(*version) +
                                         " is newer than this build's (" + std::to_string(kLatestSchema) + ")"));
  }
  for (const Migration& m : kMigrations) {
    if (m.version <= *version) continue;
    const std::string step = "schema migration to version " + std::to_string(m.version) + " failed";
    if (Status s = exec(db, path, m.sql, step); !s.ok()) return fail(s);
    const std::string set_version = "PRAGMA user_version = " + std::to_string(m.version);
    if (Status s = exec(db, path, set_version.c_str(), step); !s.ok()) return fail(s);
  }
  return exec(db, path, "COMMIT", "cannot commit the schema migration");
}

// Checks a ledger being read has a schema this build knows.
Status check_readable_schema(sqlite3* db, const std::string& path) {
  auto version = query_int(db, path, "PRAGMA user_version", "cannot read the schema version");
  if (!version.ok()) return version.status();
  if (*version < 1) return Status::invalid_argument(path + ": not a Switchboard ledger (no schema version)");
  if (*version > kLatestSchema) {
    return Status::invalid_argument(path + ": ledger schema version " + std::to_string(*version) +
                                    " is newer than this build's (" + std::to_string(kLatestSchema) + ")");
  }
  return Status();
}

// Opens an existing ledger for reading: read-write when possible, so a WAL
// left by a crashed writer is recovered, else read-only.
Result<DbPtr> open_existing(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return Status::not_found(path + ": no such ledger database");
  auto db = open_db(path, SQLITE_OPEN_READWRITE);
  if (!db.ok()) db = open_db(path, SQLITE_OPEN_READONLY);
  return db;
}

// A ledger opened to be read: its schema checked (check_readable_schema) and
// its version, which says which columns and tables it has.
struct ReadableLedger {
  DbPtr db;
  std::int64_t version = 0;
};
Status replay_for_reader(sqlite3* db, const std::string& path);

// Also moves into the database what a writer acknowledged in its journal and
// did not move in yet (a crash, or a live writer's batch still waiting), so a
// reader sees every acknowledged record; unless the file is read-only to us.
Result<ReadableLedger> open_readable(const std::string& path) {
  auto db = open_existing(path);
  if (!db.ok()) return db.status();
  if (Status s = check_readable_schema(db->get(), path); !s.ok()) return s;
  auto version = query_int(db->get(), path, "PRAGMA user_version", "cannot read the schema version");
  if (!version.ok()) return version.status();
  if (*version >= kJournalStateSchema) {
    if (Status s = replay_for_reader(db->get(), path); !s.ok()) return s;
  }
  return ReadableLedger{std::move(*db), *version};
}

// The prepared statements one connection writes records with: the inserts,
// the transaction's begin and commit, and the journal_state row (how far the
// acknowledgement journal has been moved in). Not thread-safe: one thread at
// a time (the sink's ingester role, or a reader replaying the journal).
class RowWriter {
 public:
  static Result<RowWriter> prepare_for(sqlite3* db, const std::string& path) {
    RowWriter w(db, path);
    for (auto [stmt, sql] : {std::pair<StmtPtr*, std::string>{&w.insert_, kInsertSql},
                             {&w.insert_decision_, decision_insert_sql()},
                             {&w.begin_, "BEGIN IMMEDIATE"},
                             {&w.commit_, "COMMIT"},
                             {&w.read_state_, "SELECT generation, ingested_bytes FROM journal_state WHERE id = 1"},
                             {&w.write_state_, "UPDATE journal_state SET generation = ?1, ingested_bytes = ?2 WHERE id = 1"}}) {
      auto prepared = prepare(db, path, sql, /*persistent=*/true);
      if (!prepared.ok()) return prepared.status();
      *stmt = std::move(prepared).value();
    }
    return w;
  }

  // How far the journal has been moved into this database.
  struct JournalState {
    std::string generation;  // "" before any record came through a journal
    std::uint64_t ingested = 0;  // byte offset in that generation
  };

  Status begin() { return step_done(begin_.get(), "cannot begin a transaction"); }
  Status commit(std::string_view what) {
    Status s = step_done(commit_.get(), what);
    if (!s.ok()) rollback();
    return s;
  }
  void rollback() {
    if (sqlite3_get_autocommit(db_) == 0) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }

  // REQUIRES: inside a transaction begun by begin().
  Result<JournalState> read_state() {
    sqlite3_stmt* st = read_state_.get();
    JournalState state;
    const int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      const auto* g = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
      state.generation = g != nullptr ? g : "";
      state.ingested = static_cast<std::uint64_t>(sqlite3_column_int64(st, 1));
    }
    Status s = rc == SQLITE_ROW ? Status() : db_error(path_, db_, "cannot read the journal state");
    sqlite3_reset(st);
    if (!s.ok()) return s;
    return state;
  }
  Status write_state(const std::string& generation, std::uint64_t ingested) {
    sqlite3_stmt* st = write_state_.get();
    sqlite3_bind_text(st, 1, generation.data(), static_cast<int>(generation.size()), SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, static_cast<sqlite3_int64>(ingested));
    Status s = step_done(st, "cannot store the journal state");
    sqlite3_clear_bindings(st);
    return s;
  }

  Status insert(const CostRecord& r) {
    sqlite3_stmt* st = insert_.get();
    int i = 0;
    const auto text = [&](const std::string& s) {
      sqlite3_bind_text(st, ++i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
    };
    const auto integer = [&](std::int64_t v) { sqlite3_bind_int64(st, ++i, v); };
    const std::string_view status = to_string(r.status);
    integer(to_ms(r.time));
    text(r.trace_id);
    text(r.parent_id);
    text(r.call_id);
    text(r.workload);
    text(r.role);
    text(r.tier);
    text(r.model);
    text(r.provider);
    text(r.rules_version);
    text(r.catalog_version);
    integer(r.latency_ms);
    integer(r.usage.input_tokens);
    integer(r.usage.cached_input_tokens);
    integer(r.usage.cache_write_5m_tokens);
    integer(r.usage.cache_write_1h_tokens);
    integer(r.usage.output_tokens);
    integer(r.usage.reasoning_tokens);
    integer(r.cost);
    sqlite3_bind_text(st, ++i, status.data(), static_cast<int>(status.size()), SQLITE_STATIC);
    text(r.error);
    integer(r.usage_estimated ? 1 : 0);
    const std::string scopes = ledger_columns::scopes_column(r.budget_scopes);
    text(scopes);
    integer(r.reserved);
    integer(r.output_cap);
    integer(r.output_cap_lowered ? 1 : 0);
    integer(r.counted_input_tokens);
    return insert_bound(st, i, "cannot insert a record");
  }

  Status insert(const DecisionRecord& r) {
    sqlite3_stmt* st = insert_decision_.get();
    const Decision& d = r.decision;
    const std::string step = step_to_json(r.step);
    const std::string_view kind = to_string(r.kind);
    const std::string_view admission = to_string(r.admission);
    const std::string_view reasoning = to_string(d.reasoning);
    int i = 0;
    const auto text = [&](std::string_view s) {
      sqlite3_bind_text(st, ++i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
    };
    const auto integer = [&](std::int64_t v) { sqlite3_bind_int64(st, ++i, v); };
    const auto null = [&] { sqlite3_bind_null(st, ++i); };
    integer(to_ms(r.time));
    text(r.trace_id);
    text(kind);
    text(d.workload);
    text(r.step.role);
    text(d.rules_version);
    text(step);
    text(d.tier);
    text(d.model);
    text(reasoning);
    integer(d.fanout);
    text(d.aggregate);
    d.max_output_tokens ? integer(*d.max_output_tokens) : null();
    text(d.reason);
    d.error ? text(*d.error) : null();
    integer(d.context_spent);
    d.context_budget_left ? integer(*d.context_budget_left) : null();
    integer(d.estimated_input_tokens);
    integer(d.estimated_output_tokens);
    integer(d.estimated_cost);
    text(admission);
    if (r.active) {
      const Decision& a = *r.active;
      integer(r.agrees ? 1 : 0);
      text(a.rules_version);
      text(a.tier);
      text(a.model);
      text(to_string(a.reasoning));
      integer(a.fanout);
      text(a.aggregate);
      a.max_output_tokens ? integer(*a.max_output_tokens) : null();
    } else {
      for (int k = 0; k < 8; ++k) null();
    }
    struct Binder {  // the verdict's columns, bound after the others
      sqlite3_stmt* st;
      int& i;
      void text(std::string_view s) {
        sqlite3_bind_text(st, ++i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
      }
      void integer(std::int64_t v) { sqlite3_bind_int64(st, ++i, v); }
      void null() { sqlite3_bind_null(st, ++i); }
    } verdict{st, i};
    ledger_columns::write_verdict(verdict, r);
    return insert_bound(st, i, "cannot insert a decision record");
  }

 private:
  RowWriter(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  // Runs an insert whose `bound` parameters were all just bound, and resets
  // it. The bindings are left as they are, not cleared: every insert binds
  // every parameter again (checked here), so none outlives its record.
  Status insert_bound(sqlite3_stmt* st, int bound, std::string_view doing) {
    if (bound != sqlite3_bind_parameter_count(st)) {
      return Status::internal(path_ + ": " + std::string(doing) + ": " + std::to_string(bound) + " of " +
                              std::to_string(sqlite3_bind_parameter_count(st)) + " columns bound");
    }
    return step_done(st, doing);
  }

  // Runs a statement that returns no row, and resets it.
  Status step_done(sqlite3_stmt* st, std::string_view doing) {
    const int rc = sqlite3_step(st);
    Status s = rc == SQLITE_DONE ? Status() : db_error(path_, db_, doing);
    sqlite3_reset(st);
    return s;
  }

  sqlite3* db_;  // not owned
  std::string path_;
  StmtPtr insert_, insert_decision_, begin_, commit_, read_state_, write_state_;
};

// What replay_journal found.
struct JournalReplay {
  size_t replayed = 0;          // records moved into the database
  size_t unreadable = 0;        // complete lines that are no record (skipped)
  std::uint64_t torn_bytes = 0; // a trailing line without its newline (left out)
  std::uint64_t complete_end = 0;  // the end of the last complete line
  bool bad_header = false;      // the journal's first line is no journal header
};

// Moves every record of the journal at `journal_path` that the database does
// not hold yet (journal_state says how far it got) into it, in one
// transaction that also moves journal_state on: exactly once, however many
// times it runs and whoever runs it (the sink on open or when its memory
// overflowed, a reader). The journal is read under the database's write lock,
// so a writer rotating it (under that lock too) is never half seen.
Result<JournalReplay> replay_journal(RowWriter& rows, const std::string& journal_path) {
  JournalReplay replay;
  if (Status s = rows.begin(); !s.ok()) return s;
  auto state = rows.read_state();
  if (!state.ok()) {
    rows.rollback();
    return state.status();
  }
  auto contents = read_journal(journal_path, state->generation, state->ingested);
  if (!contents.ok() || !contents->exists || contents->generation.empty()) {
    rows.rollback();
    if (!contents.ok()) return contents.status();
    replay.bad_header = contents->bad_header;
    return replay;
  }
  replay.torn_bytes = contents->torn_bytes;
  replay.complete_end = contents->complete_end;
  for (const JournalLine& line : contents->lines) {
    if (line.text.empty()) continue;  // the end of a failed append, cut short
    auto record = parse_journal_line(line.text);
    if (!record.ok()) {
      ++replay.unreadable;
      continue;
    }
    Status s = std::visit([&](const auto& r) { return rows.insert(r); }, *record);
    if (!s.ok()) {
      rows.rollback();
      return s;
    }
    ++replay.replayed;
  }
  if (contents->generation != state->generation || contents->complete_end != state->ingested) {
    if (Status s = rows.write_state(contents->generation, contents->complete_end); !s.ok()) {
      rows.rollback();
      return s;
    }
  }
  if (Status s = rows.commit("cannot commit the records replayed from the journal"); !s.ok()) return s;
  return replay;
}

// Starts the journal's next generation, once the database holds every record
// of this one up to `complete_end` (what lies past it is a torn line): the
// rename and the new journal_state under the database's write lock, so a
// reader replaying sees the old file with the old state or the new with the
// new. A crash between the two leaves the new file with the old state: a
// generation mismatch, which replays the new file whole (nothing yet).
// Returns false, not an error, when the database does not hold everything.
Result<bool> start_next_generation(RowWriter& rows, JournalFile& journal, std::uint64_t complete_end) {
  if (Status s = rows.begin(); !s.ok()) return s;
  auto state = rows.read_state();
  if (!state.ok()) {
    rows.rollback();
    return state.status();
  }
  const bool all_in = journal.generation().empty() || complete_end <= journal.header_size() ||
                      (state->generation == journal.generation() && state->ingested >= complete_end);
  if (!all_in) {
    rows.rollback();
    return false;
  }
  if (Status s = journal.rotate(); !s.ok()) {
    rows.rollback();
    return s;
  }
  if (Status s = rows.write_state(journal.generation(), journal.header_size()); !s.ok()) {
    rows.rollback();
    return true;  // rotated; the old state is a mismatch, which is right
  }
  (void)rows.commit("cannot commit the journal's new generation");  // likewise
  return true;
}

// Replays a journal left behind (a crash) into the ledger a reader opened,
// when the connection may write: so readers see every acknowledged record.
// A quick look first, so a reader takes the write lock only when there is
// something to move.
Status replay_for_reader(sqlite3* db, const std::string& path) {
  if (sqlite3_db_readonly(db, "main") == 1) return Status();
  const std::string journal_path = journal_path_for(path);
  std::error_code ec;
  if (!std::filesystem::exists(journal_path, ec)) return Status();
  auto state = prepare(db, path, "SELECT generation, ingested_bytes FROM journal_state WHERE id = 1");
  if (!state.ok()) return state.status();
  if (sqlite3_step(state->get()) != SQLITE_ROW) return db_error(path, db, "cannot read the journal state");
  const auto* g = reinterpret_cast<const char*>(sqlite3_column_text(state->get(), 0));
  const std::string generation = g != nullptr ? g : "";
  const auto ingested = static_cast<std::uint64_t>(sqlite3_column_int64(state->get(), 1));
  state->reset();
  auto contents = read_journal(journal_path, generation, ingested);
  if (!contents.ok()) return contents.status();
  if (contents->lines.empty() && (contents->generation == generation || contents->generation.empty())) {
    return Status();
  }
  auto rows = RowWriter::prepare_for(db, path);
  if (!rows.ok()) return rows.status();
  auto replayed = replay_journal(*rows, journal_path);
  return replayed.ok() ? Status() : replayed.status();
}

// The SQLite sink. Its mutex guards the queues, the counters and the roles;
// the journal file and the database are each used by the one thread holding
// their role (appending_, ingesting_), with the mutex released.
class SqliteLedger final : public LedgerSink {
 public:
  SqliteLedger(const SqliteLedgerOptions& options, DbPtr db, RowWriter rows, std::optional<JournalFile> journal)
      : path_(options.path),
        capacity_(std::max<size_t>(options.queue_capacity, 1)),
        batch_size_(std::max<size_t>(options.batch_size, 1)),
        max_delay_(std::max(options.max_delay, std::chrono::milliseconds(0))),
        when_full_(options.when_full),
        journal_limit_(options.journal_limit_bytes),
        late_after_(std::max(options.idle_late_after, std::chrono::milliseconds(0))),
        db_(std::move(db)),
        rows_(std::move(rows)),
        journal_(std::move(journal)) {
    writer_ = std::thread([this] {
      detail::name_this_thread("sb-ledger");
      run();
    });
    if (journal_) {
      idle_ingester_ = std::thread([this] {
        detail::name_this_thread("sb-ledger-idle");
        detail::run_this_thread_at_idle_priority();
        run_idle_ingester();
      });
    }
  }

  // Journals and moves into the database everything still queued, starts a
  // new journal generation (the journal is left empty), then closes.
  ~SqliteLedger() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    work_cv_.notify_all();
    idle_cv_.notify_all();
    room_cv_.notify_all();
    if (idle_ingester_.joinable()) idle_ingester_.join();
    writer_.join();
    // Nobody is left to return these to; a lost record must not pass silently.
    for (const Failure& f : failures_) {
      if (f.last > reported_) std::fprintf(stderr, "switchboard: %s\n", f.message.c_str());
    }
  }

  SqliteLedger(const SqliteLedger&) = delete;
  SqliteLedger& operator=(const SqliteLedger&) = delete;

  std::string name() const override { return "sqlite:" + path_; }
  std::uint64_t commits() const { return commits_.load(std::memory_order_relaxed); }
  std::uint64_t transactions() const { return transactions_.load(std::memory_order_relaxed); }
  std::uint64_t background_transactions() const { return background_transactions_.load(std::memory_order_relaxed); }
  bool journaled() const { return journal_.has_value(); }

  Status write(const CostRecord& record) override { return enqueue(pending(record)); }
  Status write(const DecisionRecord& record) override { return enqueue(pending(record)); }

  Status flush() override {
    std::unique_lock<std::mutex> lock(mu_);
    const std::uint64_t target = accepted_;
    if (acked_ >= target && failures_.empty()) return Status();  // the common case under no load
    const std::uint64_t floor = reported_;
    ++flushing_;
    // Leader or follower: acknowledge the queue here (one journal append, or
    // one transaction without a journal) when nobody is; else wait for the
    // running one (the records it does not hold go in the next, which this
    // thread or another waiter leads). A leader on a fiber with siblings
    // first lets its loop run what is ready, once: fibers on one thread
    // cannot wait for each other's append, but the requests finishing in the
    // same turn write their records meanwhile, this append (or transaction)
    // takes them too, and their flushes find them acknowledged.
    bool yielded = false;
    while (acked_ < target) {
      if (journal_ ? appending_ : ingesting_) {
        acked_cv_.wait(lock);
      } else if (!yielded && shares_loop()) {
        yielded = true;
        lock.unlock();
        async::yield_to_ready();
        lock.lock();  // and look again: the state may have moved meanwhile
      } else if (journal_) {
        append_next(lock);
      } else {
        ingest_next(lock);
      }
    }
    // Report every failed batch holding a record this flush covers, unless a
    // flush that returned before this one began already reported it.
    std::string message;
    std::uint64_t lost = 0;
    for (const Failure& f : failures_) {
      if (f.last <= floor || f.first > target) continue;
      lost += f.last - f.first + 1;
      if (!message.empty()) message += "; ";
      message += f.message;
    }
    reported_ = std::max(reported_, target);
    if (--flushing_ == 0) {
      std::erase_if(failures_, [&](const Failure& f) { return f.last <= reported_; });
    }
    if (message.empty()) return Status();
    return Status::io_error(std::to_string(lost) + " ledger record(s) were not written: " + message);
  }

 private:
  using AnyRecord = std::variant<CostRecord, DecisionRecord>;
  // Small, so that moving one through the queues (the entry queue, the
  // appender's batch, the ingest queue, the ingester's batch) moves a pointer
  // and a deque node holds several, not a record's hundreds of bytes each.
  struct Pending {
    std::unique_ptr<const AnyRecord> record;  // never null
    std::string line;            // its journal line with the newline; freed once appended
    std::uint64_t seq = 0;       // numbered from 1 in the order write() accepts records
    std::uint64_t end = 0;       // the journal offset just past its line, once appended
    Clock::time_point queued_at;
  };
  struct Failure {
    std::uint64_t first, last;  // sequence numbers of the lost batch
    std::string message;
  };

  // On a fiber whose loop runs others: one that may write records in this
  // turn, to share the next append.
  static bool shares_loop() {
    const async::Fiber* fiber = async::Fiber::current();
    return fiber != nullptr && fiber->loop().fibers() > 1;
  }

  // Copies the record and, with a journal, makes its line: on the writing
  // thread and outside the lock, so concurrent writers serialise in parallel.
  template <typename Record>
  Pending pending(const Record& record) const {
    Pending p{.record = std::make_unique<const AnyRecord>(record), .line = {}, .seq = 0, .end = 0, .queued_at = {}};
    if (journal_) {
      if constexpr (std::is_same_v<Record, CostRecord>) {
        p.line = cost_record_to_json(record);
      } else {
        p.line = decision_record_to_json(record);
      }
      p.line += '\n';
    }
    return p;
  }

  // With a journal, write() queues for the journal (the acknowledgement) and
  // the journal's appender queues for the database; without one, write()
  // queues for the database, whose commit is the acknowledgement.
  std::deque<Pending>& entry_queue() { return journal_ ? unjournaled_ : ingest_; }

  Status enqueue(Pending pending) {
    std::unique_lock<std::mutex> lock(mu_);
    std::deque<Pending>& queue = entry_queue();
    if (queue.size() >= capacity_) {
      if (when_full_ == QueueFullPolicy::kFail) {
        return Status::io_error(path_ + ": the ledger queue is full (" + std::to_string(capacity_) +
                                " records waiting); record not written");
      }
      ++room_waiters_;
      wake_writer();  // drain now, not after max_delay
      room_cv_.wait(lock, [&] { return queue.size() < capacity_ || stopping_; });
      --room_waiters_;
    }
    if (stopping_) return Status::internal(path_ + ": the ledger is closing; record not written");
    pending.queued_at = Clock::now();
    pending.seq = ++accepted_;
    queue.push_back(std::move(pending));
    // Wakes the writer only when this record is due before it would wake
    // anyway: the first of a queue it sleeps through, or a full batch.
    wake_writer();
    return Status();
  }

  // The background writer: journals the records nobody flushes, moves
  // journaled records into the database in batches (batch_size records, or
  // once the oldest has waited max_delay) when there is no idle ingester or
  // the batch is late, starts a new journal generation after an ingest when
  // the journal has grown past its limit, and at the end (stopping) drains
  // everything and leaves the journal empty.
  void run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      const auto now = Clock::now();
      if (append_due(now)) {
        append_next(lock);
        continue;
      }
      if (writer_ingest_due(now)) {
        ingest_next(lock);
        continue;
      }
      if (rotate_wanted_) {
        rotate_wanted_ = false;
        rotate_if_due(lock);
        continue;
      }
      if (stopping_ && idle()) break;
      sleep(lock, work_cv_, next_deadline(), writer_sleeps_until_);
    }
    rotate_if_due(lock);
  }

  // The idle ingester (with a journal): moves batches into the database while
  // they are due and not late, at idle priority; sleeps otherwise.
  void run_idle_ingester() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      if (idle_ingest_due(Clock::now())) {
        ingest_next(lock, /*idle_thread=*/true);
        continue;
      }
      sleep(lock, idle_cv_, idle_deadline(), idle_sleeps_until_);
    }
  }

  // Waits on `cv` until `deadline` (without one, until woken), with
  // `sleeps_until` saying meanwhile when the sleeper wakes on its own (max:
  // only when woken), and min once it is awake again: see wake_writer().
  static void sleep(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                    std::optional<Clock::time_point> deadline, Clock::time_point& sleeps_until) {
    sleeps_until = deadline ? *deadline : Clock::time_point::max();
    if (deadline) {
      cv.wait_until(lock, *deadline);
    } else {
      cv.wait(lock);
    }
    sleeps_until = Clock::time_point::min();
  }

  bool idle() const {
    return unjournaled_.empty() && ingest_.empty() && !overflowed_ && !appending_ && !ingesting_;
  }

  bool append_due(Clock::time_point now) const {
    if (!journal_ || appending_ || unjournaled_.empty()) return false;
    return stopping_ || room_waiters_ > 0 || unjournaled_.size() >= batch_size_ ||
           now >= unjournaled_.front().queued_at + max_delay_;
  }

  bool ingest_due(Clock::time_point now) const {
    if (ingesting_ || (ingest_.empty() && !overflowed_)) return false;
    if (stopping_) return true;
    if (now < retry_at_) return false;
    return overflowed_ || room_waiters_ > 0 || ingest_.size() >= batch_size_ ||
           now >= ingest_.front().queued_at + max_delay_;
  }

  // A due batch the idle ingester has not taken in time (it is starved: the
  // cores are busy), or one that must not wait at all.
  bool ingest_late(Clock::time_point now) const {
    return stopping_ || overflowed_ || room_waiters_ > 0 || ingest_.size() >= kLateBatches * batch_size_ ||
           (!ingest_.empty() && now >= ingest_.front().queued_at + max_delay_ + late_after_);
  }

  // The background writer ingests: always without an idle ingester (no
  // journal), else only what is late.
  bool writer_ingest_due(Clock::time_point now) const {
    return ingest_due(now) && (!journal_ || ingest_late(now));
  }

  // The idle ingester's turn: due and not late.
  bool idle_ingest_due(Clock::time_point now) const { return ingest_due(now) && !ingest_late(now); }

  // When the writer has something to do next, if nobody wakes it before.
  std::optional<Clock::time_point> next_deadline() const {
    std::optional<Clock::time_point> at;
    const auto consider = [&](Clock::time_point t) { at = at ? std::min(*at, t) : t; };
    if (journal_ && !appending_ && !unjournaled_.empty()) consider(unjournaled_.front().queued_at + max_delay_);
    if (!ingesting_ && overflowed_) consider(retry_at_);
    if (!ingesting_ && !ingest_.empty()) {
      const std::chrono::milliseconds late = journal_ ? max_delay_ + late_after_ : max_delay_;
      consider(std::max(retry_at_, ingest_.front().queued_at + late));
    }
    return at;
  }

  // When the idle ingester has something to do next, if nobody wakes it before.
  std::optional<Clock::time_point> idle_deadline() const {
    if (ingesting_ || ingest_.empty()) return std::nullopt;
    return std::max(retry_at_, ingest_.front().queued_at + max_delay_);
  }

  // Wakes the background writer, and the idle ingester, when it sleeps past
  // the moment it has something to do (a state change made work due sooner),
  // and only then: under a steady load each wakes on its own deadlines, not
  // once per record, which would cost a futex wake and a context switch per
  // write and flush.
  // REQUIRES: mu_ held.
  void wake_writer() {
    const auto now = Clock::now();
    if (writer_sleeps_until_ != Clock::time_point::min()) {  // else awake: it looks again before sleeping
      const bool due_now = stopping_ || rotate_wanted_ || append_due(now) || writer_ingest_due(now);
      const auto deadline = next_deadline();
      if (due_now || (deadline && *deadline < writer_sleeps_until_)) work_cv_.notify_one();
    }
    if (idle_sleeps_until_ != Clock::time_point::min()) {
      const auto deadline = idle_deadline();
      if (idle_ingest_due(now) || (deadline && *deadline < idle_sleeps_until_)) idle_cv_.notify_one();
    }
  }

  // Takes the appender role, appends every record waiting for the journal
  // with one write (then fdatasync with durability power) with the lock
  // released, hands them to the ingester and the role back.
  // REQUIRES: `lock` holds mu_, a journal, !appending_, unjournaled_ not empty.
  void append_next(std::unique_lock<std::mutex>& lock) {
    appending_ = true;
    std::vector<Pending> batch(std::make_move_iterator(unjournaled_.begin()),
                               std::make_move_iterator(unjournaled_.end()));
    unjournaled_.clear();
    room_cv_.notify_all();
    lock.unlock();
    std::vector<std::string_view> lines;
    lines.reserve(batch.size());
    for (const Pending& p : batch) lines.push_back(p.line);
    auto start = journal_->append(lines);
    if (start.ok()) {
      std::uint64_t end = *start;
      for (Pending& p : batch) {
        end += p.line.size();
        p.end = end;
        std::string().swap(p.line);
      }
    }
    lock.lock();
    if (start.ok()) {
      commits_.fetch_add(1, std::memory_order_relaxed);
      // Past this many, the records are read back from the journal instead
      // of kept in memory (the database is not keeping up).
      if (ingest_.size() + batch.size() > capacity_ + batch_size_) {
        ingest_.clear();
        overflowed_ = true;
      } else {
        for (Pending& p : batch) ingest_.push_back(std::move(p));
      }
    } else {
      failures_.push_back({batch.front().seq, batch.back().seq, start.status().message()});
    }
    acked_ = batch.back().seq;
    appending_ = false;
    acked_cv_.notify_all();
    wake_writer();  // the records for the database, or the writer waiting for the role
  }

  // Takes the ingester role, moves the oldest records (at most batch_size)
  // into the database in one transaction with the lock released, and hands
  // the role back. With a journal a failed batch stays queued and is tried
  // again after a pause (it is durable in the journal); without one, it is
  // dropped and reported through flush(), which waits for it.
  // REQUIRES: `lock` holds mu_, !ingesting_, and ingest_ not empty or overflowed_.
  void ingest_next(std::unique_lock<std::mutex>& lock, bool idle_thread = false) {
    ingesting_ = true;
    const bool from_file = overflowed_;
    const std::uint64_t journaled = acked_;  // the journal holds these once an append finished
    overflowed_ = false;
    batch_.clear();
    if (!from_file) {
      const size_t n = std::min(ingest_.size(), batch_size_);
      for (size_t i = 0; i < n; ++i) {
        batch_.push_back(std::move(ingest_.front()));
        ingest_.pop_front();
      }
      if (!journal_) room_cv_.notify_all();
    }
    lock.unlock();
    Status s;
    if (from_file) {
      auto replayed = replay_journal(rows_, journal_->path());
      if (!replayed.ok()) s = replayed.status();
    } else {
      s = commit_batch();
    }
    lock.lock();
    if (s.ok()) {
      transactions_.fetch_add(1, std::memory_order_relaxed);
      if (!idle_thread) background_transactions_.fetch_add(1, std::memory_order_relaxed);
    }
    if (!journal_) {
      if (!s.ok()) failures_.push_back({batch_.front().seq, batch_.back().seq, s.message()});
      if (s.ok()) commits_.fetch_add(1, std::memory_order_relaxed);
      acked_ = batch_.back().seq;
      acked_cv_.notify_all();
    } else if (s.ok()) {
      if (from_file) {
        while (!ingest_.empty() && ingest_.front().seq <= journaled) ingest_.pop_front();
      }
      if (ingest_failing_) std::fprintf(stderr, "switchboard: %s: the ledger database takes records again\n",
                                        path_.c_str());
      ingest_failing_ = false;
      rotate_wanted_ = true;  // the writer looks whether the journal can start afresh
    } else {
      if (!ingest_failing_) {
        std::fprintf(stderr, "switchboard: %s (the records are safe in the journal; trying again)\n",
                     s.message().c_str());
      }
      ingest_failing_ = true;
      retry_at_ = Clock::now() + std::max<Clock::duration>(max_delay_, kIngestRetry);
      if (from_file) {
        overflowed_ = true;
      } else if (!overflowed_) {
        for (auto it = batch_.rbegin(); it != batch_.rend(); ++it) ingest_.push_front(std::move(*it));
      }
      if (stopping_) {
        // Closing: the next open replays them from the journal.
        std::fprintf(stderr, "switchboard: %s: records left in the journal %s for the next open\n",
                     path_.c_str(), journal_->path().c_str());
        ingest_.clear();
        overflowed_ = false;
      }
    }
    batch_.clear();
    ingesting_ = false;
    wake_writer();
  }

  // One transaction for batch_. With a journal, records a reader already
  // replayed (journal_state past their line) are left out, and journal_state
  // moves past the last line written.
  Status commit_batch() {
    if (Status s = rows_.begin(); !s.ok()) return s;
    std::string generation;
    RowWriter::JournalState state;
    if (journal_) {
      generation = journal_->generation();
      auto read = rows_.read_state();
      if (!read.ok()) {
        rows_.rollback();
        return read.status();
      }
      state = std::move(read).value();
    }
    std::uint64_t last_end = 0;
    auto slice_start = Clock::now();
    for (const Pending& p : batch_) {
      if (journal_ && state.generation == generation && p.end <= state.ingested) continue;
      Status s = std::visit([this](const auto& record) { return rows_.insert(record); }, *p.record);
      if (!s.ok()) {
        rows_.rollback();
        return s;
      }
      last_end = p.end;
      yield_if_due(slice_start);
    }
    if (journal_ && last_end > 0) {
      if (Status s = rows_.write_state(generation, last_end); !s.ok()) {
        rows_.rollback();
        return s;
      }
    }
    return rows_.commit("cannot commit " + std::to_string(batch_.size()) + " record(s)");
  }

  // Starts a new journal generation when every journaled record is in the
  // database and the journal has grown past its limit, or at the end
  // (stopping) when it holds any record. Takes both roles: no append and no
  // ingest meanwhile.
  void rotate_if_due(std::unique_lock<std::mutex>& lock) {
    if (!journal_ || appending_ || ingesting_ || !ingest_.empty() || overflowed_) return;
    const bool grown = journal_->size() > journal_limit_;
    const bool closing = stopping_ && unjournaled_.empty() && journal_->size() > journal_->header_size();
    if (!grown && !closing) return;
    appending_ = ingesting_ = true;
    lock.unlock();
    auto rotated = start_next_generation(rows_, *journal_, journal_->size());
    lock.lock();
    appending_ = ingesting_ = false;
    acked_cv_.notify_all();
    wake_writer();
    if (!rotated.ok() && !rotate_failing_) {
      std::fprintf(stderr, "switchboard: %s\n", rotated.status().message().c_str());
    }
    rotate_failing_ = !rotated.ok();
  }

  // Gives the CPU to any thread waiting for it once this one has run
  // kWriterSlice since `slice_start`, and restarts the slice. A batch is a
  // millisecond or two of CPU; the scheduler would let it run to the end of
  // its time slice while a request's thread, woken on the same core (an
  // answer arrived), waits: that wait was most of the gateway's p99 at one
  // connection (2.2 ms, against 0.3 ms with the writer pinned to a core of
  // its own; 0.8 ms with this yield). Yielding every kWriterSlice bounds it;
  // with nothing else runnable a yield returns at once.
  static void yield_if_due(Clock::time_point& slice_start) {
    const auto now = Clock::now();
    if (now - slice_start < kWriterSlice) return;
    std::this_thread::yield();
    slice_start = Clock::now();
  }
  static constexpr std::chrono::microseconds kWriterSlice{100};

  // How long the ingester waits before trying a failed batch again.
  static constexpr std::chrono::milliseconds kIngestRetry{200};

  // A batch is late, and the background writer moves it in instead of the
  // idle ingester, once this many batches wait (or idle_late_after).
  static constexpr size_t kLateBatches = 4;

  const std::string path_;
  const size_t capacity_;
  const size_t batch_size_;
  const std::chrono::milliseconds max_delay_;
  const QueueFullPolicy when_full_;
  const std::uint64_t journal_limit_;
  const std::chrono::milliseconds late_after_;  // idle_late_after

  // Used by the thread holding the ingester role only. Declared before the
  // statements so they are finalized before it closes.
  DbPtr db_;
  RowWriter rows_;
  // Its file by the appender-role holder only; absent when another writer
  // holds the journal (the sink then commits every flush to the database).
  std::optional<JournalFile> journal_;

  std::mutex mu_;
  std::condition_variable work_cv_;   // the writer: records queued, a role free, stopping
  std::condition_variable room_cv_;   // writers blocked on a full queue
  std::condition_variable acked_cv_;  // flushes: an acknowledgement (append or commit) finished
  std::deque<Pending> unjournaled_;   // written, not yet in the journal (journal only)
  std::deque<Pending> ingest_;        // acknowledged, not yet in the database (or, without a journal, written)
  std::uint64_t accepted_ = 0;        // the last accepted record
  std::uint64_t acked_ = 0;           // the last record journaled (or committed, without one) or lost
  std::uint64_t reported_ = 0;        // failures up to here were returned by a finished flush()
  int flushing_ = 0;                  // flush() calls waiting
  int room_waiters_ = 0;              // write() calls waiting for room
  bool appending_ = false;            // a thread holds the appender role (uses journal_)
  bool ingesting_ = false;            // a thread holds the ingester role (uses db_, rows_, batch_)
  bool overflowed_ = false;           // journaled records were dropped from memory: replay them from the file
  bool ingest_failing_ = false;       // the last ingest failed (reported once per streak)
  bool rotate_failing_ = false;       // the last rotation failed (reported once per streak)
  Clock::time_point retry_at_{};      // no ingest before this, after a failure
  std::vector<Pending> batch_;        // the ingester's batch
  std::atomic<std::uint64_t> commits_{0};       // acknowledgements: journal appends, or transactions without one
  std::atomic<std::uint64_t> transactions_{0};  // transactions that moved records into the database
  std::atomic<std::uint64_t> background_transactions_{0};  // of them, not the idle ingester's
  std::vector<Failure> failures_;     // lost batches not yet reported by every flush that needs them
  bool stopping_ = false;
  bool rotate_wanted_ = false;        // an ingest finished: the writer looks whether to rotate
  // When the writer (the idle ingester) wakes on its own (max: only when
  // woken), or min while it is awake or absent; see wake_writer().
  Clock::time_point writer_sleeps_until_ = Clock::time_point::min();
  Clock::time_point idle_sleeps_until_ = Clock::time_point::min();
  std::condition_variable idle_cv_;   // the idle ingester: a batch due, stopping
  // Last: they start once everything above is built.
  std::thread writer_;
  std::thread idle_ingester_;  // with a journal only
};

// Reports what opening found in the journal (a crash left it), on stderr as
// the sink reports a lost record: it must not pass silently.
void report_replay(const std::string& journal_path, const JournalReplay& replay) {
  if (replay.replayed > 0) {
    std::fprintf(stderr, "switchboard: %s: %zu acknowledged record(s) replayed into the ledger\n",
                 journal_path.c_str(), replay.replayed);
  }
  if (replay.torn_bytes > 0) {
    std::fprintf(stderr, "switchboard: warning: %s: a torn last line (%llu bytes, never acknowledged) ignored\n",
                 journal_path.c_str(), static_cast<unsigned long long>(replay.torn_bytes));
  }
  if (replay.unreadable > 0) {
    std::fprintf(stderr, "switchboard: warning: %s: %zu unreadable line(s) skipped\n", journal_path.c_str(),
                 replay.unreadable);
  }
  if (replay.bad_header) {
    std::fprintf(stderr, "switchboard: warning: %s: not a ledger journal (no header); started afresh\n",
                 journal_path.c_str());
  }
}

}  // namespace

Result<std::shared_ptr<LedgerSink>> open_sqlite_ledger(const SqliteLedgerOptions& options) {
  const std::string& path = options.path;
  if (path.empty()) return Status::invalid_argument("the SQLite ledger needs a database path");
  auto db = open_db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  if (!db.ok()) return db.status();
  sqlite3* raw = db->get();

  // journal_mode answers with the mode in force, which is not WAL on, say, a
  // file system without shared memory.
  auto mode = prepare(raw, path, "PRAGMA journal_mode=WAL");
  if (!mode.ok()) return mode.status();
  if (sqlite3_step(mode->get()) != SQLITE_ROW) return db_error(path, raw, "cannot switch to WAL mode");
  const auto* answer = reinterpret_cast<const char*>(sqlite3_column_text(mode->get(), 0));
  if (answer == nullptr || std::string_view(answer) != "wal") {
    return Status::io_error(path + ": cannot switch to WAL mode (journal mode is " +
                            (answer != nullptr ? answer : "unknown") + ")");
  }
  mode->reset();
  const bool power = options.durability == LedgerDurability::kPower;
  // NORMAL: a commit is a write to the WAL (survives a crash of the process);
  // FULL: every commit also fsyncs the WAL (survives a power loss). With the
  // journal, what a flush acknowledged is durable in the journal already, but
  // a commit that moves journal_state past it must be as durable as the
  // journal, or a power loss could lose the records the journal then drops.
  const char* synchronous = power ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL";
  if (Status s = exec(raw, path, synchronous, std::string("cannot set ") + (synchronous + 7)); !s.ok()) return s;
  if (Status s = migrate(raw, path); !s.ok()) return s;

  auto rows = RowWriter::prepare_for(raw, path);
  if (!rows.ok()) return rows.status();

  // The journal, unless another writer holds it: then this sink commits each
  // flush to the database as it did before there was a journal.
  const std::string journal_path = journal_path_for(path);
  auto journal = JournalFile::open_locked(journal_path, power);
  if (!journal.ok()) return journal.status();
  if (journal->has_value()) {
    // What a crashed writer acknowledged and did not move in, exactly once;
    // then a fresh generation, which also drops a torn last line.
    auto replay = replay_journal(*rows, journal_path);
    if (!replay.ok()) return replay.status();
    report_replay(journal_path, *replay);
    JournalFile& file = **journal;
    if (file.size() > file.header_size() || file.generation().empty()) {
      auto rotated = start_next_generation(*rows, file, replay->complete_end);
      if (!rotated.ok()) return rotated.status();
      if (!*rotated) return Status::internal(journal_path + ": the journal was not replayed whole");
    }
  }
  return std::shared_ptr<LedgerSink>(std::make_shared<SqliteLedger>(
      options, std::move(db).value(), std::move(rows).value(), std::move(journal).value()));
}

// `select` (a SELECT ... FROM table) with the query's filters, oldest first,
// bound and ready to step. Only the filters asked for, so SQLite can use the
// time and workload indexes.
Result<StmtPtr> prepare_query(sqlite3* db, const std::string& path, std::string sql, const LedgerQuery& query) {
  std::vector<std::string> where;
  if (query.since) where.push_back("time_ms >= :since");
  if (query.until) where.push_back("time_ms < :until");
  if (query.workload) where.push_back("workload = :workload");
  for (size_t i = 0; i < where.size(); ++i) sql += (i == 0 ? " WHERE " : " AND ") + where[i];
  sql += " ORDER BY time_ms, id";
  auto stmt = prepare(db, path, sql);
  if (!stmt.ok()) return stmt.status();
  sqlite3_stmt* st = stmt->get();
  if (query.since) sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":since"), to_ms(*query.since));
  if (query.until) sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":until"), to_ms(*query.until));
  if (query.workload) {
    // SQLITE_TRANSIENT: the statement outlives this function's view of the query.
    sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":workload"), query.workload->data(),
                      static_cast<int>(query.workload->size()), SQLITE_TRANSIENT);
  }
  return stmt;
}

// Reads the columns of the current row left to right.
struct RowReader {
  sqlite3_stmt* st;
  int i = 0;
  std::int64_t integer() { return static_cast<std::int64_t>(sqlite3_column_int64(st, i++)); }
  std::string text() {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, i));
    const int n = sqlite3_column_bytes(st, i++);
    return p != nullptr ? std::string(p, static_cast<size_t>(n)) : std::string();
  }
  bool null() const { return sqlite3_column_type(st, i) == SQLITE_NULL; }
  std::optional<std::int64_t> optional_integer() {
    if (null()) return ++i, std::nullopt;
    return integer();
  }
  std::optional<std::string> optional_text() {
    if (null()) return ++i, std::nullopt;
    return text();
  }
};

Result<std::vector<CostRecord>> read_sqlite_ledger(const std::string& path, const LedgerQuery& query) {
  auto readable = open_readable(path);
  if (!readable.ok()) return readable.status();
  sqlite3* raw = readable->db.get();
  const std::int64_t version = readable->version;
  const char* usage_estimated = version >= kUsageEstimatedSchema ? "usage_estimated" : "0";
  const char* budget_columns = version >= kBudgetColumnsSchema ? kBudgetColumns : kNoBudgetColumns;
  const char* counted = version >= kCountedInputSchema ? ", counted_input_tokens" : ", 0";
  auto stmt = prepare_query(raw, path,
                            std::string(kSelectColumns) + usage_estimated + budget_columns + counted + " FROM calls",
                            query);
  if (!stmt.ok()) return stmt.status();
  sqlite3_stmt* st = stmt->get();

  std::vector<CostRecord> records;
  for (;;) {
    const int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return db_error(path, raw, "cannot read the ledger");
    RowReader row{st};
    const std::int64_t id = row.integer();
    auto r = ledger_columns::read_call(row, id, path);
    if (!r.ok()) return r.status();
    records.push_back(std::move(r).value());
  }
  return records;
}

Result<std::vector<DecisionRecord>> read_sqlite_decisions(const std::string& path, const LedgerQuery& query) {
  auto readable = open_readable(path);
  if (!readable.ok()) return readable.status();
  sqlite3* raw = readable->db.get();
  const std::int64_t version = readable->version;
  std::vector<DecisionRecord> records;
  if (version < 2) return records;  // written before decisions were kept
  auto stmt = prepare_query(raw, path,
                            std::string("SELECT id, ") + kDecisionColumns + ", " +
                                (version >= kVerdictSchema ? ledger_columns::kVerdictColumns
                                                           : ledger_columns::kNoVerdictColumns) +
                                " FROM decisions",
                            query);
  if (!stmt.ok()) return stmt.status();
  sqlite3_stmt* st = stmt->get();
  for (;;) {
    const int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return db_error(path, raw, "cannot read the ledger's decisions");
    RowReader row{st};
    const std::int64_t id = row.integer();
    auto r = ledger_columns::read_decision(row, id, path);
    if (!r.ok()) return r.status();
    records.push_back(std::move(r).value());
  }
  return records;
}

int sqlite_ledger_latest_schema() { return kLatestSchema; }

std::uint64_t sqlite_ledger_commits(const LedgerSink& sink) {
  const auto* sqlite = dynamic_cast<const SqliteLedger*>(&sink);
  return sqlite != nullptr ? sqlite->commits() : 0;
}

std::uint64_t sqlite_ledger_transactions(const LedgerSink& sink) {
  const auto* sqlite = dynamic_cast<const SqliteLedger*>(&sink);
  return sqlite != nullptr ? sqlite->transactions() : 0;
}

std::uint64_t sqlite_ledger_background_transactions(const LedgerSink& sink) {
  const auto* sqlite = dynamic_cast<const SqliteLedger*>(&sink);
  return sqlite != nullptr ? sqlite->background_transactions() : 0;
}

bool sqlite_ledger_journaled(const LedgerSink& sink) {
  const auto* sqlite = dynamic_cast<const SqliteLedger*>(&sink);
  return sqlite != nullptr && sqlite->journaled();
}

Result<int> sqlite_ledger_schema_version(const std::string& path) {
  auto db = open_existing(path);
  if (!db.ok()) return db.status();
  auto version = query_int(db->get(), path, "PRAGMA user_version", "cannot read the schema version");
  if (!version.ok()) return version.status();
  return static_cast<int>(*version);
}

Status check_sqlite_ledger(const std::string& path) {
  auto db = open_existing(path);
  if (!db.ok()) return db.status();
  auto stmt = prepare(db->get(), path, "PRAGMA integrity_check");
  if (!stmt.ok()) return stmt.status();
  std::string found;
  for (;;) {
    const int rc = sqlite3_step(stmt->get());
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return db_error(path, db->get(), "cannot check integrity");
    const auto* line = reinterpret_cast<const char*>(sqlite3_column_text(stmt->get(), 0));
    if (!found.empty()) found += "; ";
    found += line != nullptr ? line : "";
  }
  if (found == "ok") return Status();
  return Status::io_error(path + ": integrity check failed: " + found);
}

namespace {

// Runs `sql` once per row, `bind` binding row `row`'s parameters, in one
// transaction: every row or none (the first failure rolls back). `what`
// names the work ("cannot start " / "cannot commit " + what); `row_error`
// the failure of one row.
Status write_rows(sqlite3* db, const std::string& path, const char* sql, size_t rows, const std::string& what,
                  const char* row_error, const std::function<void(sqlite3_stmt*, size_t)>& bind) {
  if (Status s = exec(db, path, "BEGIN IMMEDIATE", "cannot start " + what); !s.ok()) return s;
  auto stmt = prepare(db, path, sql);
  if (!stmt.ok()) {
    exec(db, path, "ROLLBACK", "cannot roll back");
    return stmt.status();
  }
  sqlite3_stmt* st = stmt->get();
  for (size_t row = 0; row < rows; ++row) {
    sqlite3_reset(st);
    bind(st, row);
    if (sqlite3_step(st) != SQLITE_DONE) {
      Status error = db_error(path, db, row_error);
      exec(db, path, "ROLLBACK", "cannot roll back");
      return error;
    }
  }
  return exec(db, path, "COMMIT", "cannot commit " + what);
}

}  // namespace

Status reprice_sqlite_ledger(const std::string& path,
                             const std::vector<std::pair<std::int64_t, MicroUsd>>& costs,
                             const std::string& catalog_version) {
  auto db = open_db(path, SQLITE_OPEN_READWRITE);
  if (!db.ok()) return db.status();
  sqlite3* raw = db->get();
  if (Status s = check_readable_schema(raw, path); !s.ok()) return s;
  // All or nothing: a crash before COMMIT leaves the old prices whole.
  return write_rows(raw, path, "UPDATE calls SET cost_micro_usd = ?1, catalog_version = ?2 WHERE id = ?3",
                    costs.size(), "the re-pricing", "cannot store a re-priced cost",
                    [&](sqlite3_stmt* st, size_t row) {
                      sqlite3_bind_int64(st, 1, costs[row].second);
                      sqlite3_bind_text(st, 2, catalog_version.data(), static_cast<int>(catalog_version.size()),
                                        SQLITE_STATIC);
                      sqlite3_bind_int64(st, 3, costs[row].first);
                    });
}

namespace {

std::int64_t to_ppm(double v) { return static_cast<std::int64_t>(std::llround(v * 1e6)); }
double from_ppm(std::int64_t ppm) { return static_cast<double>(ppm) / 1e6; }

}  // namespace

Status store_sqlite_token_factors(const std::string& path, const std::map<std::string, TokenCalibration>& factors) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return Status::not_found(path + ": no such ledger database");
  auto db = open_db(path, SQLITE_OPEN_READWRITE);
  if (!db.ok()) return db.status();
  sqlite3* raw = db->get();
  if (Status s = migrate(raw, path); !s.ok()) return s;  // an older ledger gains the table
  const std::vector<std::pair<std::string, TokenCalibration>> rows(factors.begin(), factors.end());
  const std::int64_t now = to_ms(std::chrono::system_clock::now());
  return write_rows(raw, path,
                    "INSERT INTO token_factors (model, calls, p50_ppm, p99_ppm, factor_ppm, time_ms) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(model) DO UPDATE SET calls = ?2, "
                    "p50_ppm = ?3, p99_ppm = ?4, factor_ppm = ?5, time_ms = ?6",
                    rows.size(), "storing token factors", "cannot store a token factor",
                    [&](sqlite3_stmt* st, size_t row) {
                      const auto& [model, c] = rows[row];
                      sqlite3_bind_text(st, 1, model.data(), static_cast<int>(model.size()), SQLITE_STATIC);
                      sqlite3_bind_int64(st, 2, c.calls);
                      sqlite3_bind_int64(st, 3, to_ppm(c.p50));
                      sqlite3_bind_int64(st, 4, to_ppm(c.p99));
                      sqlite3_bind_int64(st, 5, to_ppm(c.factor));
                      sqlite3_bind_int64(st, 6, now);
                    });
}

Result<std::map<std::string, TokenCalibration>> read_sqlite_token_factors(const std::string& path) {
  auto readable = open_readable(path);
  if (!readable.ok()) return readable.status();
  sqlite3* raw = readable->db.get();
  const std::int64_t version = readable->version;
  std::map<std::string, TokenCalibration> factors;
  if (version < kCountedInputSchema) return factors;  // written before factors were kept
  auto stmt = prepare(raw, path, "SELECT model, calls, p50_ppm, p99_ppm, factor_ppm FROM token_factors");
  if (!stmt.ok()) return stmt.status();
  sqlite3_stmt* st = stmt->get();
  for (;;) {
    const int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return db_error(path, raw, "cannot read the token factors");
    RowReader row{st};
    const std::string model = row.text();
    TokenCalibration c;
    c.calls = row.integer();
    c.p50 = from_ppm(row.integer());
    c.p99 = from_ppm(row.integer());
    c.factor = from_ppm(row.integer());
    factors[model] = c;
  }
  return factors;
}

}  // namespace switchboard
