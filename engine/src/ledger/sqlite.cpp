// The SQLite ledger: the one file that calls SQLite. Every SQLite failure
// becomes a Status naming the database file; nothing throws across the C API.
//
// Writes go into a bounded queue and are committed in order, one transaction
// at a time, by whichever thread holds the committer role (committing_):
//  - the background writer, for records nobody waits on: a batch closes at
//    batch_size records or once its oldest record has waited max_delay;
//  - a flush() caller, for the records it waits on (group commit, leader and
//    followers): when no commit is running it takes the whole queue (up to
//    batch_size) and commits it on its own thread at once; when one is
//    running it waits for it, and the next commit takes every record queued
//    meanwhile, so concurrent flushes share one transaction and never wait a
//    fixed delay.
// The database is in WAL mode; synchronous=NORMAL (durability "process")
// makes a commit one write to the WAL, which survives a crash of the
// process; synchronous=FULL ("power") also fsyncs the WAL at every commit,
// which survives a power loss. A record is durable once the transaction
// holding it commits, and flush() waits for exactly that.
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
#include <thread>
#include <utility>
#include <variant>

#include <nlohmann/json.hpp>

#include "ledger/sqlite.h"
#include "switchboard/calibration.h"
#include "switchboard/ledger.h"

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
  kind                      TEXT    NOT NULL,  -- rules | requested | shadow
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

constexpr const char* kDecisionColumns =
    "time_ms, trace_id, kind, workload, role, rules_version, step_json, tier, model, reasoning, fanout, "
    "aggregate, max_output_tokens, reason, error, ctx_spent_micro_usd, ctx_budget_left_micro_usd, "
    "estimated_input_tokens, estimated_output_tokens, estimated_cost_micro_usd, admission, agrees, "
    "active_rules_version, active_tier, active_model, active_reasoning, active_fanout, active_aggregate, "
    "active_max_output_tokens";
constexpr int kDecisionColumnCount = 29;

std::string decision_insert_sql() {
  std::string sql = std::string("INSERT INTO decisions (") + kDecisionColumns + ") VALUES (";
  for (int i = 0; i < kDecisionColumnCount; ++i) sql += i == 0 ? "?" : ",?";
  return sql + ")";
}

constexpr int kBusyTimeoutMs = 5000;

std::int64_t to_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::chrono::system_clock::time_point from_ms(std::int64_t ms) {
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
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

Result<DbPtr> open_db(const std::string& path, int flags) {
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
Result<ReadableLedger> open_readable(const std::string& path) {
  auto db = open_existing(path);
  if (!db.ok()) return db.status();
  if (Status s = check_readable_schema(db->get(), path); !s.ok()) return s;
  auto version = query_int(db->get(), path, "PRAGMA user_version", "cannot read the schema version");
  if (!version.ok()) return version.status();
  return ReadableLedger{std::move(*db), *version};
}

class SqliteLedger final : public LedgerSink {
 public:
  SqliteLedger(const SqliteLedgerOptions& options, DbPtr db, StmtPtr insert, StmtPtr insert_decision, StmtPtr begin,
               StmtPtr commit)
      : path_(options.path),
        capacity_(std::max<size_t>(options.queue_capacity, 1)),
        batch_size_(std::max<size_t>(options.batch_size, 1)),
        max_delay_(std::max(options.max_delay, std::chrono::milliseconds(0))),
        when_full_(options.when_full),
        db_(std::move(db)),
        insert_(std::move(insert)),
        insert_decision_(std::move(insert_decision)),
        begin_(std::move(begin)),
        commit_(std::move(commit)) {
    writer_ = std::thread([this] { run(); });
  }

  // Commits everything still queued, then closes the database.
  ~SqliteLedger() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    work_cv_.notify_all();
    room_cv_.notify_all();
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

  Status write(const CostRecord& record) override { return enqueue(Pending{record, Clock::now()}); }
  Status write(const DecisionRecord& record) override { return enqueue(Pending{record, Clock::now()}); }

 private:
  using AnyRecord = std::variant<CostRecord, DecisionRecord>;
  struct Pending {
    AnyRecord record;
    Clock::time_point queued_at;
  };

  // `pending` was copied outside the lock.
  Status enqueue(Pending pending) {
    std::unique_lock<std::mutex> lock(mu_);
    if (queue_.size() >= capacity_) {
      if (when_full_ == QueueFullPolicy::kFail) {
        return Status::io_error(path_ + ": the ledger queue is full (" + std::to_string(capacity_) +
                                " records waiting); record not written");
      }
      room_cv_.wait(lock, [&] { return queue_.size() < capacity_ || stopping_; });
    }
    if (stopping_) return Status::internal(path_ + ": the ledger is closing; record not written");
    pending.queued_at = Clock::now();
    queue_.push_back(std::move(pending));
    ++accepted_;
    // Wake the writer to start its delay (first record) or to commit a full batch.
    if (queue_.size() == 1 || queue_.size() >= batch_size_) work_cv_.notify_one();
    return Status();
  }

 public:
  Status flush() override {
    std::unique_lock<std::mutex> lock(mu_);
    const std::uint64_t target = accepted_;
    if (done_ >= target && failures_.empty()) return Status();  // the common case under no load
    const std::uint64_t floor = reported_;
    ++flushing_;
    // Leader or follower: commit the queue here when nobody is committing;
    // else wait for the running commit (the records it does not hold go in
    // the next one, which this thread or another waiter leads).
    while (done_ < target) {
      if (!committing_) {
        commit_next(lock);
      } else {
        done_cv_.wait(lock);
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
  struct Failure {
    std::uint64_t first, last;  // sequence numbers of the failed batch
    std::string message;
  };

  // The background writer: commits the records nobody waits on, in batches,
  // until it is stopping and the queue is empty.
  void run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      work_cv_.wait(lock, [&] { return !committing_ && (stopping_ || !queue_.empty()); });
      if (queue_.empty()) return;  // stopping, and everything is written
      work_cv_.wait_until(lock, queue_.front().queued_at + max_delay_, [&] {
        return stopping_ || queue_.size() >= batch_size_ || queue_.empty();
      });
      // A flush() may have committed the queue (or be committing it) meanwhile.
      if (committing_ || queue_.empty()) continue;
      commit_next(lock);
    }
  }

  // Takes the committer role, commits the oldest records (at most
  // batch_size) with the lock released, and hands the role back.
  // REQUIRES: `lock` holds mu_, !committing_, and the queue is not empty.
  void commit_next(std::unique_lock<std::mutex>& lock) {
    committing_ = true;
    const size_t n = std::min(queue_.size(), batch_size_);
    batch_.clear();
    for (size_t i = 0; i < n; ++i) {
      batch_.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    room_cv_.notify_all();
    const std::uint64_t first = done_ + 1;
    lock.unlock();
    Status s = commit_batch(batch_);
    batch_.clear();
    lock.lock();
    if (!s.ok()) failures_.push_back({first, first + n - 1, s.message()});
    if (s.ok()) commits_.fetch_add(1, std::memory_order_relaxed);
    done_ += n;
    committing_ = false;
    done_cv_.notify_all();
    work_cv_.notify_one();  // the writer may be waiting for the role
  }

  // One transaction for the whole batch; on any failure it is rolled back and
  // the batch is lost (reported through flush()).
  Status commit_batch(const std::vector<Pending>& batch) {
    sqlite3* db = db_.get();
    if (sqlite3_step(begin_.get()) != SQLITE_DONE) {
      Status s = db_error(path_, db, "cannot begin a transaction");
      sqlite3_reset(begin_.get());
      return s;
    }
    sqlite3_reset(begin_.get());
    for (const Pending& p : batch) {
      Status s = std::visit([this](const auto& record) { return insert(record); }, p.record);
      if (!s.ok()) {
        sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        return s;
      }
    }
    const int rc = sqlite3_step(commit_.get());
    sqlite3_reset(commit_.get());
    if (rc != SQLITE_DONE) {
      Status s = db_error(path_, db, "cannot commit " + std::to_string(batch.size()) + " record(s)");
      if (sqlite3_get_autocommit(db) == 0) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      return s;
    }
    return Status();
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
    const std::string scopes = nlohmann::json(r.budget_scopes).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    text(scopes);
    integer(r.reserved);
    integer(r.output_cap);
    integer(r.output_cap_lowered ? 1 : 0);
    integer(r.counted_input_tokens);
    const int rc = sqlite3_step(st);
    Status s = rc == SQLITE_DONE ? Status() : db_error(path_, db_.get(), "cannot insert a record");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return s;
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
    const int rc = sqlite3_step(st);
    Status s = rc == SQLITE_DONE ? Status() : db_error(path_, db_.get(), "cannot insert a decision record");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return s;
  }

  const std::string path_;
  const size_t capacity_;
  const size_t batch_size_;
  const std::chrono::milliseconds max_delay_;
  const QueueFullPolicy when_full_;

  // Used by the committer only (committing_; after the constructor hands them
  // over). Declared before the statements so they are finalized before it closes.
  DbPtr db_;
  StmtPtr insert_, insert_decision_, begin_, commit_;

  std::mutex mu_;
  std::condition_variable work_cv_;  // the writer: records queued, the committer role free, stopping
  std::condition_variable room_cv_;  // writers blocked on a full queue
  std::condition_variable done_cv_;  // flushes: a batch finished
  std::deque<Pending> queue_;
  // Records are numbered from 1 in the order write() accepts them; the writer
  // finishes them in that order.
  std::uint64_t accepted_ = 0;      // the last accepted record
  std::uint64_t done_ = 0;          // the last record committed or dropped
  std::uint64_t reported_ = 0;      // failures up to here were returned by a finished flush()
  int flushing_ = 0;                // flush() calls waiting
  bool committing_ = false;         // a thread holds the committer role (uses db_ and batch_)
  std::vector<Pending> batch_;      // the committer's batch
  std::atomic<std::uint64_t> commits_{0};  // transactions committed
  std::vector<Failure> failures_;   // failed batches not yet reported by every flush that needs them
  bool stopping_ = false;
  std::thread writer_;  // last: starts once everything above is built
};

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
  // NORMAL: a commit is a write to the WAL (survives a crash of the process);
  // FULL: every commit also fsyncs the WAL (survives a power loss).
  const char* synchronous = options.durability == LedgerDurability::kPower ? "PRAGMA synchronous=FULL"
                                                                           : "PRAGMA synchronous=NORMAL";
  if (Status s = exec(raw, path, synchronous, std::string("cannot set ") + (synchronous + 7)); !s.ok()) return s;
  if (Status s = migrate(raw, path); !s.ok()) return s;

  auto insert = prepare(raw, path, kInsertSql, /*persistent=*/true);
  if (!insert.ok()) return insert.status();
  auto insert_decision = prepare(raw, path, decision_insert_sql(), true);
  if (!insert_decision.ok()) return insert_decision.status();
  auto begin = prepare(raw, path, "BEGIN IMMEDIATE", true);
  if (!begin.ok()) return begin.status();
  auto commit = prepare(raw, path, "COMMIT", true);
  if (!commit.ok()) return commit.status();
  return std::shared_ptr<LedgerSink>(std::make_shared<SqliteLedger>(
      options, std::move(db).value(), std::move(insert).value(), std::move(insert_decision).value(),
      std::move(begin).value(), std::move(commit).value()));
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
    const auto integer = [&] { return row.integer(); };
    const auto text = [&] { return row.text(); };
    CostRecord r;
    r.id = integer();
    r.time = from_ms(integer());
    r.trace_id = text();
    r.parent_id = text();
    r.call_id = text();
    r.workload = text();
    r.role = text();
    r.tier = text();
    r.model = text();
    r.provider = text();
    r.rules_version = text();
    r.catalog_version = text();
    r.latency_ms = integer();
    r.usage.input_tokens = integer();
    r.usage.cached_input_tokens = integer();
    r.usage.cache_write_5m_tokens = integer();
    r.usage.cache_write_1h_tokens = integer();
    r.usage.output_tokens = integer();
    r.usage.reasoning_tokens = integer();
    r.cost = integer();
    const std::string status = text();
    const auto parsed = parse_call_status(status);
    if (!parsed) {
      return Status::invalid_argument(path + ": record " + std::to_string(r.id) + " has an unknown status '" +
                                      status + "'");
    }
    r.status = *parsed;
    r.error = text();
    r.usage_estimated = integer() != 0;
    const std::string scopes = text();
    const nlohmann::json parsed_scopes = nlohmann::json::parse(scopes, nullptr, false);
    if (!parsed_scopes.is_array()) {
      return Status::invalid_argument(path + ": record " + std::to_string(r.id) +
                                      " has budget_scopes that are not a JSON array");
    }
    for (const auto& scope : parsed_scopes) {
      if (scope.is_string()) r.budget_scopes.push_back(scope.get<std::string>());
    }
    r.reserved = integer();
    r.output_cap = integer();
    r.output_cap_lowered = integer() != 0;
    r.counted_input_tokens = integer();
    records.push_back(std::move(r));
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
  auto stmt = prepare_query(raw, path, std::string("SELECT id, ") + kDecisionColumns + " FROM decisions", query);
  if (!stmt.ok()) return stmt.status();
  sqlite3_stmt* st = stmt->get();
  for (;;) {
    const int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return db_error(path, raw, "cannot read the ledger's decisions");
    RowReader row{st};
    DecisionRecord r;
    Decision& d = r.decision;
    r.id = row.integer();
    const auto bad = [&](const std::string& what) {
      return Status::invalid_argument(path + ": decision " + std::to_string(r.id) + " " + what);
    };
    r.time = from_ms(row.integer());
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
    }
    if (r.step.role.empty()) r.step.role = role;
    records.push_back(std::move(r));
  }
  return records;
}

int sqlite_ledger_latest_schema() { return kLatestSchema; }

std::uint64_t sqlite_ledger_commits(const LedgerSink& sink) {
  const auto* sqlite = dynamic_cast<const SqliteLedger*>(&sink);
  return sqlite != nullptr ? sqlite->commits() : 0;
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

Status store_token_factors(const std::string& path, const std::map<std::string, TokenCalibration>& factors) {
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

Result<std::map<std::string, TokenCalibration>> read_token_factors(const std::string& path) {
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
