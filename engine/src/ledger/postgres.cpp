// The PostgreSQL ledger: the one file that calls libpq. Every libpq failure
// becomes a Status naming the server (its URL without the password);
// nothing throws across the C API.
//
// One role, the committer (committing_), uses the connection and the spool;
// whichever thread holds it works, in order:
//  - a batch (every record written so far): committed to PostgreSQL in one
//    transaction, with INSERT ... ON CONFLICT (record_key) DO NOTHING (a
//    spool replayed after a crash may hold rows already committed): a small
//    batch as one multi-row INSERT (one round trip), a large one by COPY into
//    a temporary table first (plain COPY cannot skip a row already stored), or,
//    when the connection is down or the spool is not empty, appended to the
//    spool. A flush() caller takes the role when nobody holds it (group
//    commit: callers arriving meanwhile wait and the next one takes every
//    record queued in between); the background thread takes it for records
//    nobody flushes, after max_delay.
//  - the spool: the background thread reconnects (with backoff) and replays
//    the spool, batch_size records to a transaction, then truncates it.
// The request path never connects: a flush while PostgreSQL is down appends
// to the spool at once.
#include <fcntl.h>
#include <libpq-fe.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <variant>

#include <nlohmann/json.hpp>

#include "ledger/postgres.h"
#include "ledger/record_columns.h"
#include "ledger/record_json.h"
#include "switchboard/calibration.h"
#include "switchboard/ledger.h"
#include "switchboard/step.h"
#include "util/hex.h"
#include "util/thread_name.h"

namespace switchboard {

namespace {

using Clock = std::chrono::steady_clock;

struct ConnFinish {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using ConnPtr = std::unique_ptr<PGconn, ConnFinish>;

struct ResultClear {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultClear>;

// Schema migrations, applied in order in one transaction under an advisory
// lock; switchboard_schema holds the last one applied. Append, never edit.
// Version 1 holds what the SQLite ledger's six versions built (but its
// journal state: this ledger has no journal), plus each record's key.
struct Migration {
  int version;
  const char* sql;
};
constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE calls (
  id                     BIGSERIAL PRIMARY KEY,
  record_key             TEXT   NOT NULL UNIQUE,  -- the writing sink's id and sequence: replays are idempotent
  time_ms                BIGINT NOT NULL,  -- milliseconds since 1970-01-01T00:00:00Z
  trace_id               TEXT   NOT NULL,
  parent_id              TEXT   NOT NULL,
  call_id                TEXT   NOT NULL,
  workload               TEXT   NOT NULL,
  role                   TEXT   NOT NULL,
  tier                   TEXT   NOT NULL,
  model                  TEXT   NOT NULL,
  provider               TEXT   NOT NULL,
  rules_version          TEXT   NOT NULL,
  catalog_version        TEXT   NOT NULL,
  latency_ms             BIGINT NOT NULL,
  input_tokens           BIGINT NOT NULL,
  cached_input_tokens    BIGINT NOT NULL,
  cache_write_5m_tokens  BIGINT NOT NULL,
  cache_write_1h_tokens  BIGINT NOT NULL,
  output_tokens          BIGINT NOT NULL,
  reasoning_tokens       BIGINT NOT NULL,
  cost_micro_usd         BIGINT NOT NULL,
  status                 TEXT   NOT NULL,  -- ok | error | fallback | refused_by_budget | cancelled
  error                  TEXT   NOT NULL,
  usage_estimated        BIGINT NOT NULL,  -- 1 = usage is an estimate
  budget_scopes          TEXT   NOT NULL,  -- JSON array of scope names
  reserved_micro_usd     BIGINT NOT NULL,  -- 0 = no cap applied
  output_cap             BIGINT NOT NULL,  -- 0 = none sent
  output_cap_lowered     BIGINT NOT NULL,  -- 1 = lowered to what the budget affords
  counted_input_tokens   BIGINT NOT NULL   -- 0 = not counted
);
CREATE INDEX calls_by_time ON calls(time_ms);
CREATE INDEX calls_by_workload ON calls(workload, time_ms);
CREATE INDEX calls_by_trace ON calls(trace_id);
CREATE TABLE decisions (
  id                        BIGSERIAL PRIMARY KEY,
  record_key                TEXT   NOT NULL UNIQUE,
  time_ms                   BIGINT NOT NULL,
  trace_id                  TEXT   NOT NULL,
  kind                      TEXT   NOT NULL,  -- rules | requested | shadow | eval | judged
  workload                  TEXT   NOT NULL,
  role                      TEXT   NOT NULL,
  rules_version             TEXT   NOT NULL,
  step_json                 TEXT   NOT NULL,
  tier                      TEXT   NOT NULL,
  model                     TEXT   NOT NULL,
  reasoning                 TEXT   NOT NULL,  -- '' = the model's default
  fanout                    BIGINT NOT NULL,
  aggregate                 TEXT   NOT NULL,
  max_output_tokens         BIGINT,           -- NULL = not set by the rules
  reason                    TEXT   NOT NULL,
  error                     TEXT,             -- NULL = the rules did not fail
  ctx_spent_micro_usd       BIGINT NOT NULL,
  ctx_budget_left_micro_usd BIGINT,           -- NULL = no budget
  estimated_input_tokens    BIGINT NOT NULL,
  estimated_output_tokens   BIGINT NOT NULL,
  estimated_cost_micro_usd  BIGINT NOT NULL,
  admission                 TEXT   NOT NULL,  -- admitted | rerouted | refused | not_admitted
  agrees                    BIGINT,           -- shadow rows: 1 when the same choice as active_*
  active_rules_version      TEXT,
  active_tier               TEXT,
  active_model              TEXT,
  active_reasoning          TEXT,
  active_fanout             BIGINT,
  active_aggregate          TEXT,
  active_max_output_tokens  BIGINT
);
CREATE INDEX decisions_by_time ON decisions(time_ms);
CREATE INDEX decisions_by_workload ON decisions(workload, time_ms);
CREATE INDEX decisions_by_trace ON decisions(trace_id);
CREATE TABLE token_factors (
  model       TEXT   PRIMARY KEY,
  calls       BIGINT NOT NULL,
  p50_ppm     BIGINT NOT NULL,  -- median of billed / counted input, x 1,000,000
  p99_ppm     BIGINT NOT NULL,
  factor_ppm  BIGINT NOT NULL,  -- max(p99, the model's calibration_floor)
  time_ms     BIGINT NOT NULL
);
)sql"},
    // Judged shadow calls (dispatch.h): a decision of kind 'judged' carries
    // the judge's verdict and both sides' costs; NULL on every other decision.
    {2, R"sql(
ALTER TABLE decisions ADD COLUMN verdict TEXT;  -- win | tie | loss | error | skipped
ALTER TABLE decisions ADD COLUMN verdict_reason TEXT;
ALTER TABLE decisions ADD COLUMN judge_model TEXT;
ALTER TABLE decisions ADD COLUMN routed_model TEXT;
ALTER TABLE decisions ADD COLUMN routed_call_id TEXT;  -- the live step's answering call
ALTER TABLE decisions ADD COLUMN target_tier TEXT;
ALTER TABLE decisions ADD COLUMN target_model TEXT;
ALTER TABLE decisions ADD COLUMN shadow_trace_id TEXT;  -- the target's and the judge's calls
ALTER TABLE decisions ADD COLUMN routed_cost_micro_usd BIGINT;
ALTER TABLE decisions ADD COLUMN target_cost_micro_usd BIGINT;
ALTER TABLE decisions ADD COLUMN judge_cost_micro_usd BIGINT;
)sql"},
};
constexpr int kLatestSchema = kMigrations[std::size(kMigrations) - 1].version;
// Any constant: the advisory lock replicas migrating at once serialise on.
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(7305241962)";

constexpr const char* kCallColumns =
    "record_key, time_ms, trace_id, parent_id, call_id, workload, role, tier, model, provider, rules_version, "
    "catalog_version, latency_ms, input_tokens, cached_input_tokens, cache_write_5m_tokens, "
    "cache_write_1h_tokens, output_tokens, reasoning_tokens, cost_micro_usd, status, error, usage_estimated, "
    "budget_scopes, reserved_micro_usd, output_cap, output_cap_lowered, counted_input_tokens";
constexpr const char* kDecisionColumns =
    "record_key, time_ms, trace_id, kind, workload, role, rules_version, step_json, tier, model, reasoning, "
    "fanout, aggregate, max_output_tokens, reason, error, ctx_spent_micro_usd, ctx_budget_left_micro_usd, "
    "estimated_input_tokens, estimated_output_tokens, estimated_cost_micro_usd, admission, agrees, "
    "active_rules_version, active_tier, active_model, active_reasoning, active_fanout, active_aggregate, "
    "active_max_output_tokens, verdict, verdict_reason, judge_model, routed_model, routed_call_id, target_tier, "
    "target_model, shadow_trace_id, routed_cost_micro_usd, target_cost_micro_usd, judge_cost_micro_usd";
static_assert(std::string_view(kDecisionColumns).ends_with(ledger_columns::kVerdictColumns));

// Records a write() waits behind when the committer cannot keep up.
constexpr size_t kQueueCapacity = 65536;
constexpr auto kMaxRetryInterval = std::chrono::seconds(30);
// What bounds a statement on the server, so a wedged server fails a batch
// (which then goes to the spool) instead of holding a response.
constexpr const char* kStatementTimeout = "-c statement_timeout=10000";
// Durability "process": a commit is acknowledged once the server has it,
// before its WAL reaches the disk (asynchronous commit: survives a crash of
// this process, not a crash of the server's machine within ~wal_writer_delay).
// "power" keeps the server's own setting (on, by default: WAL flushed first).
constexpr const char* kProcessDurability = "-c statement_timeout=10000 -c synchronous_commit=off";

std::int64_t to_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// The libpq error of `conn`, one line.
std::string conn_message(PGconn* conn) {
  std::string m = conn != nullptr ? PQerrorMessage(conn) : "out of memory";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  std::replace(m.begin(), m.end(), '\n', ' ');
  return m;
}

Status pg_error(const std::string& name, PGconn* conn, std::string_view doing) {
  return Status::io_error(name + ": " + std::string(doing) + ": " + conn_message(conn));
}

// What a connection is for: the sink's statements are bounded
// (kStatementTimeout), and commit as its durability says; a reader's are not.
enum class Use { kWriter, kPowerWriter, kReader };

// Connects, with connect_timeout and TCP keepalives (and, for the writer, a
// statement timeout) added to what the URL says.
Result<ConnPtr> connect(const std::string& url, const std::string& name, std::chrono::seconds timeout,
                        Use use = Use::kReader) {
  const std::string seconds = std::to_string(std::max<std::int64_t>(2, timeout.count()));
  std::vector<const char*> keys = {"dbname", "connect_timeout", "keepalives", "keepalives_idle",
                                   "keepalives_interval", "keepalives_count", "application_name"};
  std::vector<const char*> values = {url.c_str(), seconds.c_str(), "1", "5", "2", "3", "switchboard"};
  if (use != Use::kReader) {
    keys.push_back("options");
    values.push_back(use == Use::kPowerWriter ? kStatementTimeout : kProcessDurability);
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  ConnPtr conn(PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1));
  if (conn == nullptr || PQstatus(conn.get()) != CONNECTION_OK) {
    return pg_error(name, conn.get(), "cannot connect");
  }
  // The server's notices ("already exists, skipping") are not for the host's stderr.
  PQsetNoticeProcessor(conn.get(), [](void*, const char*) {}, nullptr);
  return conn;
}

// Runs `sql` (one or more statements, no parameters) and checks it succeeded.
Status exec(PGconn* conn, const std::string& name, const char* sql, std::string_view doing) {
  ResultPtr r(PQexec(conn, sql));
  const ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return Status();
  return pg_error(name, conn, doing);
}

// A parameterised statement that returns rows (or none); params as text.
Result<ResultPtr> query(PGconn* conn, const std::string& name, const std::string& sql,
                        const std::vector<std::string>& params, std::string_view doing) {
  std::vector<const char*> values;
  for (const std::string& p : params) values.push_back(p.c_str());
  ResultPtr r(PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                           nullptr, 0));
  const ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return pg_error(name, conn, doing);
  return r;
}

void rollback(PGconn* conn) {
  if (PQtransactionStatus(conn) != PQTRANS_IDLE) ResultPtr(PQexec(conn, "ROLLBACK"));
}

// The schema version the database holds: 0 without switchboard_schema.
Result<int> schema_version(PGconn* conn, const std::string& name) {
  auto exists = query(conn, name, "SELECT to_regclass('switchboard_schema') IS NOT NULL", {},
                      "cannot read the schema version");
  if (!exists.ok()) return exists.status();
  if (std::string_view(PQgetvalue(exists->get(), 0, 0)) != "t") return 0;
  auto r = query(conn, name, "SELECT coalesce(max(version), 0) FROM switchboard_schema", {},
                 "cannot read the schema version");
  if (!r.ok()) return r.status();
  return std::atoi(PQgetvalue(r->get(), 0, 0));
}

Status newer_schema(const std::string& name, int version) {
  return Status::invalid_argument(name + ": ledger schema version " + std::to_string(version) +
                                  " is newer than this build's (" + std::to_string(kLatestSchema) + ")");
}

// Brings the schema to kLatestSchema, once however many replicas open at once.
Status migrate(PGconn* conn, const std::string& name) {
  if (Status s = exec(conn, name, "BEGIN", "cannot start the schema migration"); !s.ok()) return s;
  const auto fail = [&](Status s) {
    rollback(conn);
    return s;
  };
  if (Status s = exec(conn, name, kMigrationLock, "cannot lock the schema"); !s.ok()) return fail(s);
  if (Status s = exec(conn, name, "CREATE TABLE IF NOT EXISTS switchboard_schema (version INTEGER NOT NULL)",
                      "cannot create the schema version table");
      !s.ok()) {
    return fail(s);
  }
  auto version = schema_version(conn, name);
  if (!version.ok()) return fail(version.status());
  if (*version > kLatestSchema) return fail(newer_schema(name, *version));
  for (const Migration& m : kMigrations) {
    if (m.version <= *version) continue;
    const std::string step = "schema migration to version " + std::to_string(m.version) + " failed";
    if (Status s = exec(conn, name, m.sql, step); !s.ok()) return fail(s);
    const std::string set = "DELETE FROM switchboard_schema; INSERT INTO switchboard_schema VALUES (" +
                            std::to_string(m.version) + ")";
    if (Status s = exec(conn, name, set.c_str(), step); !s.ok()) return fail(s);
  }
  return exec(conn, name, "COMMIT", "cannot commit the schema migration");
}

// Checks a ledger being read has a schema this build knows.
Status check_readable(PGconn* conn, const std::string& name) {
  auto version = schema_version(conn, name);
  if (!version.ok()) return version.status();
  if (*version < 1) return Status::invalid_argument(name + ": not a Switchboard ledger (no schema version)");
  if (*version > kLatestSchema) return newer_schema(name, *version);
  return Status();
}

// How a row is written: COPY's text format, or an SQL VALUES tuple.
enum class RowFormat { kCopy, kValues };

// Appends `s` as valid UTF-8 (an invalid byte or a NUL, which PostgreSQL
// text cannot hold, becomes U+FFFD), escaped for `format`: for COPY the
// delimiter, newlines and backslash; in a VALUES literal (standard strings:
// a backslash is itself) the quote, doubled.
void put_text(std::string& out, std::string_view s, RowFormat format) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80 && format == RowFormat::kValues) {
      if (c == '\'') out += '\'';
      out += c == '\0' ? std::string(kReplacement) : std::string(1, static_cast<char>(c));
      ++i;
      continue;
    }
    if (c < 0x80) {
      switch (c) {
        case '\\': out += "\\\\"; break;
        case '\t': out += "\\t"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\0': out += kReplacement; break;
        default: out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    // The length of a well-formed sequence starting at i, or 0.
    size_t n = 0;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) n = 3;
    else if (c >= 0xF0 && c <= 0xF4) n = 4;
    bool ok = n > 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    if (ok && n == 3) {
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);  // overlong; surrogates
    }
    if (ok && n == 4) {
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      ok = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);  // overlong; past U+10FFFF
    }
    if (ok) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += kReplacement;
      ++i;
    }
  }
}

// One row, field by field: a line of COPY's text format, or "(...)" of VALUES.
class CopyRow {
 public:
  CopyRow(std::string& out, RowFormat format) : out_(out), format_(format) {
    if (format_ == RowFormat::kValues) out_ += '(';
  }
  ~CopyRow() { out_ += format_ == RowFormat::kValues ? ")" : "\n"; }
  CopyRow(const CopyRow&) = delete;
  CopyRow& operator=(const CopyRow&) = delete;
  void text(std::string_view s) {
    std::string& out = next();
    if (format_ == RowFormat::kValues) out += '\'';
    put_text(out, s, format_);
    if (format_ == RowFormat::kValues) out += '\'';
  }
  void integer(std::int64_t v) { next() += std::to_string(v); }
  void null() { next() += format_ == RowFormat::kValues ? "NULL" : "\\N"; }
  void optional_integer(const std::optional<std::int64_t>& v) { v ? integer(*v) : null(); }
  void optional_text(const std::optional<std::string>& v) { v ? text(*v) : null(); }

 private:
  std::string& next() {
    if (!first_) out_ += format_ == RowFormat::kValues ? ',' : '\t';
    first_ = false;
    return out_;
  }
  std::string& out_;
  const RowFormat format_;
  bool first_ = true;
};

void copy_row(std::string& out, const std::string& key, const CostRecord& r, RowFormat format) {
  CopyRow row(out, format);
  row.text(key);
  row.integer(to_ms(r.time));
  for (const std::string* s : {&r.trace_id, &r.parent_id, &r.call_id, &r.workload, &r.role, &r.tier, &r.model,
                               &r.provider, &r.rules_version, &r.catalog_version}) {
    row.text(*s);
  }
  row.integer(r.latency_ms);
  row.integer(r.usage.input_tokens);
  row.integer(r.usage.cached_input_tokens);
  row.integer(r.usage.cache_write_5m_tokens);
  row.integer(r.usage.cache_write_1h_tokens);
  row.integer(r.usage.output_tokens);
  row.integer(r.usage.reasoning_tokens);
  row.integer(r.cost);
  row.text(to_string(r.status));
  row.text(r.error);
  row.integer(r.usage_estimated ? 1 : 0);
  row.text(ledger_columns::scopes_column(r.budget_scopes));
  row.integer(r.reserved);
  row.integer(r.output_cap);
  row.integer(r.output_cap_lowered ? 1 : 0);
  row.integer(r.counted_input_tokens);
}

void copy_row(std::string& out, const std::string& key, const DecisionRecord& r, RowFormat format) {
  const Decision& d = r.decision;
  CopyRow row(out, format);
  row.text(key);
  row.integer(to_ms(r.time));
  row.text(r.trace_id);
  row.text(to_string(r.kind));
  row.text(d.workload);
  row.text(r.step.role);
  row.text(d.rules_version);
  row.text(step_to_json(r.step));
  row.text(d.tier);
  row.text(d.model);
  row.text(to_string(d.reasoning));
  row.integer(d.fanout);
  row.text(d.aggregate);
  row.optional_integer(d.max_output_tokens);
  row.text(d.reason);
  row.optional_text(d.error);
  row.integer(d.context_spent);
  row.optional_integer(d.context_budget_left);
  row.integer(d.estimated_input_tokens);
  row.integer(d.estimated_output_tokens);
  row.integer(d.estimated_cost);
  row.text(to_string(r.admission));
  if (r.active) {
    const Decision& a = *r.active;
    row.integer(r.agrees ? 1 : 0);
    row.text(a.rules_version);
    row.text(a.tier);
    row.text(a.model);
    row.text(to_string(a.reasoning));
    row.integer(a.fanout);
    row.text(a.aggregate);
    row.optional_integer(a.max_output_tokens);
  } else {
    for (int k = 0; k < 8; ++k) row.null();
  }
  ledger_columns::write_verdict(row, r);
}

// One record on its way: its key (what makes writing it twice harmless) and
// the record.
struct Entry {
  std::uint64_t seq = 0;
  std::string key;
  std::variant<CostRecord, DecisionRecord> record;
};

// Copies `rows` (COPY text format) into the temporary table `stage`.
Status copy_in(PGconn* conn, const std::string& name, const std::string& stage, const char* columns,
               const std::string& rows) {
  const std::string sql = "COPY " + stage + " (" + columns + ") FROM STDIN";
  ResultPtr start(PQexec(conn, sql.c_str()));
  if (!start || PQresultStatus(start.get()) != PGRES_COPY_IN) return pg_error(name, conn, "cannot start a COPY");
  if (PQputCopyData(conn, rows.data(), static_cast<int>(rows.size())) != 1 || PQputCopyEnd(conn, nullptr) != 1) {
    return pg_error(name, conn, "cannot send the COPY data");
  }
  Status s;
  while (PGresult* raw = PQgetResult(conn)) {
    ResultPtr r(raw);
    if (PQresultStatus(raw) != PGRES_COMMAND_OK && s.ok()) s = pg_error(name, conn, "the COPY failed");
  }
  return s;
}

// Batches up to this many records go as one INSERT ... VALUES statement
// (one round trip); larger ones through COPY (bench_pg_ledger: a flush of a
// request's two records took 5 round trips through COPY).
constexpr size_t kValuesMax = 64;

// Commits `entries` in one transaction, idempotently (see the file comment):
// a small batch as one multi-row INSERT per table sent as one query (which
// PostgreSQL runs as one transaction), a large one with COPY into the
// staging tables, then INSERT ... SELECT, in an explicit transaction.
// REQUIRES: the connection's temporary tables exist (prepare_stages).
Status commit_entries(PGconn* conn, const std::string& name, const std::vector<const Entry*>& entries) {
  const RowFormat format = entries.size() <= kValuesMax ? RowFormat::kValues : RowFormat::kCopy;
  std::string calls, decisions;
  for (const Entry* e : entries) {
    std::string& rows = std::holds_alternative<CostRecord>(e->record) ? calls : decisions;
    if (format == RowFormat::kValues && !rows.empty()) rows += ',';
    if (const auto* c = std::get_if<CostRecord>(&e->record)) {
      copy_row(rows, e->key, *c, format);
    } else {
      copy_row(rows, e->key, std::get<DecisionRecord>(e->record), format);
    }
  }
  if (format == RowFormat::kValues) {
    std::string sql;
    if (!calls.empty()) {
      sql += std::string("INSERT INTO calls (") + kCallColumns + ") VALUES " + calls +
             " ON CONFLICT (record_key) DO NOTHING;";
    }
    if (!decisions.empty()) {
      sql += std::string("INSERT INTO decisions (") + kDecisionColumns + ") VALUES " + decisions +
             " ON CONFLICT (record_key) DO NOTHING;";
    }
    return sql.empty() ? Status() : exec(conn, name, sql.c_str(), "cannot commit records");
  }
  if (Status s = exec(conn, name, "BEGIN", "cannot begin a transaction"); !s.ok()) return s;
  const auto fail = [&](Status s) {
    rollback(conn);
    return s;
  };
  std::string move;
  if (!calls.empty()) {
    if (Status s = copy_in(conn, name, "calls_stage", kCallColumns, calls); !s.ok()) return fail(s);
    move += std::string("INSERT INTO calls (") + kCallColumns + ") SELECT DISTINCT ON (record_key) " +
            kCallColumns + " FROM calls_stage ON CONFLICT (record_key) DO NOTHING;";
  }
  if (!decisions.empty()) {
    if (Status s = copy_in(conn, name, "decisions_stage", kDecisionColumns, decisions); !s.ok()) return fail(s);
    move += std::string("INSERT INTO decisions (") + kDecisionColumns + ") SELECT DISTINCT ON (record_key) " +
            kDecisionColumns + " FROM decisions_stage ON CONFLICT (record_key) DO NOTHING;";
  }
  move += "COMMIT";
  if (Status s = exec(conn, name, move.c_str(), "cannot commit records"); !s.ok()) return fail(s);
  return Status();
}

// The temporary tables a connection copies batches into, emptied by each commit.
Status prepare_stages(PGconn* conn, const std::string& name) {
  const std::string sql =
      std::string("CREATE TEMP TABLE calls_stage ON COMMIT DELETE ROWS AS SELECT ") + kCallColumns +
      " FROM calls WITH NO DATA; CREATE TEMP TABLE decisions_stage ON COMMIT DELETE ROWS AS SELECT " +
      kDecisionColumns + " FROM decisions WITH NO DATA";
  return exec(conn, name, sql.c_str(), "cannot create the staging tables");
}

// A spool line: the record's key, a tab, the record as record_json writes it
// (a decision's has "record": "decision"), a newline.
std::string spool_line(const Entry& e) {
  std::string line = e.key + '\t';
  if (const auto* c = std::get_if<CostRecord>(&e.record)) {
    line += cost_record_to_json(*c);
  } else {
    line += decision_record_to_json(std::get<DecisionRecord>(e.record));
  }
  return line + '\n';
}

Result<Entry> parse_spool_line(std::string_view line) {
  const size_t tab = line.find('\t');
  if (tab == std::string_view::npos || tab == 0) return Status::invalid_argument("no record key");
  Entry e;
  e.key = std::string(line.substr(0, tab));
  const std::string_view json = line.substr(tab + 1);
  if (json.find("\"record\":\"decision\"") != std::string_view::npos ||
      json.find("\"record\": \"decision\"") != std::string_view::npos) {
    auto d = decision_record_from_json(json);
    if (!d.ok()) return d.status();
    e.record = std::move(d).value();
  } else {
    auto c = cost_record_from_json(json);
    if (!c.ok()) return c.status();
    e.record = std::move(c).value();
  }
  return e;
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

class PostgresLedger final : public LedgerSink {
 public:
  PostgresLedger(PostgresLedgerOptions options, std::string name, int spool_fd, std::uint64_t spool_bytes)
      : options_(std::move(options)), name_(std::move(name)), spool_fd_(spool_fd), spool_bytes_(spool_bytes) {
    std::random_device rd;
    const std::uint64_t id = (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^
                             static_cast<std::uint64_t>(Clock::now().time_since_epoch().count());
    key_prefix_ = detail::hex64(id) + "-";
    retry_wait_ = options_.retry_interval;
    next_retry_ = Clock::now();
  }

  ~PostgresLedger() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (worker_.joinable()) worker_.join();
    // What nobody flushed: committed (or spooled) now, so nothing written is lost.
    std::unique_lock<std::mutex> lock(mu_);
    if (!pending_.empty()) commit_pending(lock);
    ::close(spool_fd_);
  }

  Status write(const CostRecord& record) override { return enqueue(record); }
  Status write(const DecisionRecord& record) override { return enqueue(record); }

  Status flush() override {
    std::unique_lock<std::mutex> lock(mu_);
    const std::uint64_t start = processed_seq_ + 1;
    const std::uint64_t target = last_seq_;
    while (processed_seq_ < target) {
      if (!committing_) {
        commit_pending(lock);
      } else {
        done_cv_.wait(lock);
      }
    }
    for (const Failure& f : failures_) {
      if (f.last >= start && f.first <= target) return f.status;
    }
    return Status();
  }

  std::string name() const override { return name_; }

  std::uint64_t spooled() const {
    std::lock_guard<std::mutex> lock(mu_);
    return spooled_records_;
  }
  std::uint64_t transactions() const { return transactions_.load(); }

  // Connects (when the server is reachable), so a server reachable at open
  // takes the first records directly, then starts the background thread.
  // Returns the connection's error (the sink works either way).
  // REQUIRES: called once, before any other call.
  Status start() {
    Status s = try_connect();  // no other thread yet: the role is this one's
    worker_ = std::thread([this] {
      detail::name_this_thread("sb-pg-ledger");
      run();
    });
    return s;
  }

 private:
  struct Failure {
    std::uint64_t first, last;
    Status status;
  };

  template <typename Record>
  Status enqueue(const Record& record) {
    std::unique_lock<std::mutex> lock(mu_);
    room_cv_.wait(lock, [&] { return pending_.size() < kQueueCapacity; });
    Entry e;
    e.seq = ++last_seq_;
    e.key = key_prefix_ + std::to_string(e.seq);
    e.record = record;
    pending_.push_back(std::move(e));
    if (pending_.size() == 1) {
      oldest_ = Clock::now();
      cv_.notify_all();
    }
    return Status();
  }

  // Takes the committer role and commits (or spools) every pending record.
  // REQUIRES: `lock` holds mu_, nobody holds the role. Returns with the lock held.
  void commit_pending(std::unique_lock<std::mutex>& lock) {
    committing_ = true;
    std::vector<Entry> batch(std::make_move_iterator(pending_.begin()), std::make_move_iterator(pending_.end()));
    pending_.clear();
    room_cv_.notify_all();
    const bool spool_first = spooled_records_ > 0 || !connected_;
    lock.unlock();
    Status s;
    bool to_spool = spool_first;
    if (!to_spool) {
      s = commit_to_server(batch);
      to_spool = !s.ok();
    }
    if (to_spool) {
      if (!spool_first) report_once("PostgreSQL is unreachable, spooling to " + options_.spool_path + ": " + s.message());
      s = append_to_spool(batch);
    }
    lock.lock();
    if (to_spool && s.ok()) spooled_records_ += batch.size();
    if (!batch.empty()) {
      if (!s.ok()) {
        failures_.push_back(Failure{batch.front().seq, batch.back().seq, s});
        if (failures_.size() > 1024) failures_.pop_front();
      }
      processed_seq_ = std::max(processed_seq_, batch.back().seq);
    }
    committing_ = false;
    done_cv_.notify_all();
    cv_.notify_all();
  }

  // REQUIRES: the committer role.
  Status commit_to_server(const std::vector<Entry>& batch) {
    std::vector<const Entry*> entries;
    for (size_t i = 0; i < batch.size(); i += options_.batch_size) {
      entries.clear();
      for (size_t k = i; k < std::min(batch.size(), i + options_.batch_size); ++k) entries.push_back(&batch[k]);
      Status s = commit_entries(conn_.get(), name_, entries);
      if (!s.ok()) {
        drop_connection();
        // Whatever of `batch` did commit is skipped by its key when the spool is replayed.
        return s;
      }
      transactions_++;
    }
    return Status();
  }

  // REQUIRES: the committer role.
  Status append_to_spool(const std::vector<Entry>& batch) {
    std::string lines;
    for (const Entry& e : batch) lines += spool_line(e);
    if (spool_bytes_ + lines.size() > options_.spool_limit_bytes) {
      return Status::io_error(name_ + ": PostgreSQL is unreachable and the spool " + options_.spool_path +
                                        " is full (" + std::to_string(options_.spool_limit_bytes) +
                                        " bytes): records not acknowledged");
    }
    if (!write_all(spool_fd_, lines) ||
        (options_.durability == LedgerDurability::kPower && ::fdatasync(spool_fd_) != 0)) {
      const std::string error = std::strerror(errno);
      // A partial line would hide the next one: cut the file back to its last whole line.
      if (::ftruncate(spool_fd_, static_cast<off_t>(spool_bytes_)) != 0) {
        report_once(options_.spool_path + ": cannot cut back a failed append");
      }
      return Status::io_error(name_ + ": PostgreSQL is unreachable and the spool " + options_.spool_path +
                              " cannot be written: " + error);
    }
    spool_bytes_ += lines.size();
    return Status();
  }

  // REQUIRES: the committer role.
  Status try_connect() {
    auto conn = connect(options_.url, name_, options_.connect_timeout,
                        options_.durability == LedgerDurability::kPower ? Use::kPowerWriter : Use::kWriter);
    if (!conn.ok()) return conn.status();
    if (Status s = migrate(conn->get(), name_); !s.ok()) return s;
    if (Status s = prepare_stages(conn->get(), name_); !s.ok()) return s;
    conn_ = std::move(conn).value();
    connected_ = true;
    return Status();
  }

  void drop_connection() {
    conn_.reset();
    connected_ = false;
  }

  // Replays the spool into the server, then empties it. REQUIRES: the committer role.
  Status replay_spool() {
    std::string text;
    if (::lseek(spool_fd_, 0, SEEK_SET) < 0) return Status::io_error(options_.spool_path + ": cannot seek");
    char buf[1 << 16];
    for (;;) {
      const ssize_t n = ::read(spool_fd_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::io_error(options_.spool_path + ": cannot read: " + std::strerror(errno));
      if (n == 0) break;
      text.append(buf, static_cast<size_t>(n));
    }
    std::vector<Entry> entries;
    size_t unreadable = 0;
    size_t pos = 0;
    for (;;) {
      const size_t end = text.find('\n', pos);
      if (end == std::string::npos) break;  // a torn last line was never acknowledged
      auto e = parse_spool_line(std::string_view(text).substr(pos, end - pos));
      if (e.ok()) {
        entries.push_back(std::move(e).value());
      } else {
        unreadable++;
      }
      pos = end + 1;
    }
    if (unreadable > 0) {
      std::fprintf(stderr, "switchboard: %s: %zu unreadable spool lines skipped\n", options_.spool_path.c_str(),
                   unreadable);
    }
    if (Status s = commit_to_server(entries); !s.ok()) return s;
    if (::ftruncate(spool_fd_, 0) != 0) {
      return Status::io_error(options_.spool_path + ": cannot empty the replayed spool: " + std::strerror(errno));
    }
    spool_bytes_ = 0;
    return Status();
  }

  // The background thread: commits what nobody flushed, reconnects and
  // replays the spool.
  void run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      const bool reconnect = spooled_records_ > 0 || !connected_ || spool_bytes_ > 0;
      const auto now = Clock::now();
      if (!committing_ && reconnect && now >= next_retry_) {
        committing_ = true;
        lock.unlock();
        Status s = connected_ ? Status() : try_connect();
        if (s.ok() && spool_bytes_ > 0) s = replay_spool();
        lock.lock();
        if (s.ok()) {
          if (spooled_records_ > 0) {
            std::fprintf(stderr, "switchboard: %s: reconnected; %llu spooled records replayed\n", name_.c_str(),
                         static_cast<unsigned long long>(spooled_records_));
          }
          spooled_records_ = 0;
          retry_wait_ = options_.retry_interval;
          reported_ = false;
        } else {
          drop_connection();
          report_once(s.message());
          next_retry_ = Clock::now() + retry_wait_;
          retry_wait_ = std::min<std::chrono::milliseconds>(retry_wait_ * 2, kMaxRetryInterval);
        }
        committing_ = false;
        done_cv_.notify_all();
        continue;
      }
      if (!committing_ && !pending_.empty() && now - oldest_ >= options_.max_delay) {
        commit_pending(lock);
        continue;
      }
      auto wake = Clock::time_point::max();
      if (!pending_.empty()) wake = oldest_ + options_.max_delay;
      if (reconnect) wake = std::min(wake, next_retry_);
      if (committing_) wake = std::min(wake, now + options_.max_delay);
      if (wake == Clock::time_point::max()) {
        cv_.wait(lock);
      } else {
        cv_.wait_until(lock, wake);
      }
    }
  }

  // Prints `message` on stderr, once until the next reconnection.
  void report_once(const std::string& message) {
    if (reported_.exchange(true)) return;
    std::fprintf(stderr, "switchboard: %s\n", message.c_str());
  }

  const PostgresLedgerOptions options_;
  const std::string name_;
  std::string key_prefix_;
  const int spool_fd_;  // owned; locked (flock) for this process

  mutable std::mutex mu_;
  std::condition_variable cv_;       // the background thread's wake-up
  std::condition_variable done_cv_;  // a commit finished
  std::condition_variable room_cv_;  // the queue has room
  std::deque<Entry> pending_;
  Clock::time_point oldest_;  // when pending_'s first record came
  std::uint64_t last_seq_ = 0;       // the last record written
  std::uint64_t processed_seq_ = 0;  // every record up to it committed, spooled or failed
  std::deque<Failure> failures_;
  bool committing_ = false;  // the committer role is held
  bool stopping_ = false;
  std::uint64_t spooled_records_ = 0;  // appended to the spool since it was last replayed
  Clock::time_point next_retry_;
  std::chrono::milliseconds retry_wait_;
  std::atomic<bool> reported_{false};
  std::atomic<std::uint64_t> transactions_{0};

  // The committer role's own, unlocked; the atomics are read without it.
  ConnPtr conn_;
  std::atomic<bool> connected_{false};      // conn_ is set
  std::atomic<std::uint64_t> spool_bytes_;  // the spool's size (whole lines)
  std::thread worker_;
};

// Reads the columns of one row left to right.
struct RowReader {
  PGresult* r;
  int row;
  int i = 0;
  bool null() const { return PQgetisnull(r, row, i) != 0; }
  std::string text() {
    const char* p = PQgetvalue(r, row, i);
    const int n = PQgetlength(r, row, i++);
    return std::string(p, static_cast<size_t>(n));
  }
  std::int64_t integer() {
    const char* p = PQgetvalue(r, row, i);
    const int n = PQgetlength(r, row, i++);
    std::int64_t v = 0;
    std::from_chars(p, p + n, v);
    return v;
  }
  std::optional<std::int64_t> optional_integer() {
    if (null()) return ++i, std::nullopt;
    return integer();
  }
  std::optional<std::string> optional_text() {
    if (null()) return ++i, std::nullopt;
    return text();
  }
};

// A connection to a ledger being read (its schema checked).
Result<ConnPtr> open_readable(const std::string& url, const std::string& name) {
  auto conn = connect(url, name, std::chrono::seconds(5));
  if (!conn.ok()) return conn.status();
  if (Status s = check_readable(conn->get(), name); !s.ok()) return s;
  return conn;
}

// `select` with the query's filters, oldest first.
Result<ResultPtr> run_query(PGconn* conn, const std::string& name, std::string sql, const LedgerQuery& q,
                            std::string_view doing) {
  std::vector<std::string> params, where;
  if (q.since) {
    params.push_back(std::to_string(to_ms(*q.since)));
    where.push_back("time_ms >= $" + std::to_string(params.size()));
  }
  if (q.until) {
    params.push_back(std::to_string(to_ms(*q.until)));
    where.push_back("time_ms < $" + std::to_string(params.size()));
  }
  if (q.workload) {
    params.push_back(*q.workload);
    where.push_back("workload = $" + std::to_string(params.size()));
  }
  for (size_t i = 0; i < where.size(); ++i) sql += (i == 0 ? " WHERE " : " AND ") + where[i];
  sql += " ORDER BY time_ms, id";
  return query(conn, name, sql, params, doing);
}

}  // namespace

std::string redact_postgres_url(const std::string& url) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(url.c_str(), &err);
  if (opts == nullptr) {
    PQfreemem(err);
    return "postgresql://(unparsable URL)";
  }
  std::string user, host, port, db;
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    const std::string_view k = o->keyword;
    if (k == "user") user = o->val;
    if (k == "host" || (k == "hostaddr" && host.empty())) host = o->val;
    if (k == "port") port = o->val;
    if (k == "dbname") db = o->val;
  }
  PQconninfoFree(opts);
  return "postgresql://" + (user.empty() ? "" : user + "@") + host + (port.empty() ? "" : ":" + port) + "/" + db;
}

Result<std::shared_ptr<LedgerSink>> open_postgres_ledger(const PostgresLedgerOptions& options) {
  if (!is_postgres_url(options.url)) {
    return Status::invalid_argument("not a PostgreSQL URL (postgresql://...): " + redact_postgres_url(options.url));
  }
  const std::string name = redact_postgres_url(options.url);
  if (options.spool_path.empty()) return Status::invalid_argument(name + ": the ledger needs a spool file");
  if (options.batch_size == 0) return Status::invalid_argument(name + ": batch_size must be positive");
  const int fd = ::open(options.spool_path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status::io_error(options.spool_path + ": cannot open the ledger spool: " + std::strerror(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return Status::io_error(options.spool_path + ": the ledger spool is held by another process (each process "
                            "writing to " + name + " needs a spool of its own: [ledger] spool)");
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return Status::io_error(options.spool_path + ": cannot stat the ledger spool: " + std::strerror(errno));
  }
  auto sink = std::make_shared<PostgresLedger>(options, name, fd, static_cast<std::uint64_t>(st.st_size));
  if (Status s = sink->start(); !s.ok()) {
    // A schema from a newer build is an error; an unreachable server is what the spool is for.
    if (s.code() == Status::Code::kInvalidArgument) return s;
    std::fprintf(stderr, "switchboard: %s; spooling to %s until it is reachable\n", s.message().c_str(),
                 options.spool_path.c_str());
  }
  return std::shared_ptr<LedgerSink>(std::move(sink));
}

int postgres_ledger_latest_schema() { return kLatestSchema; }

Result<int> postgres_ledger_schema_version(const std::string& url) {
  const std::string name = redact_postgres_url(url);
  auto conn = connect(url, name, std::chrono::seconds(5));
  if (!conn.ok()) return conn.status();
  return schema_version(conn->get(), name);
}

std::uint64_t postgres_ledger_spooled(const LedgerSink& sink) {
  const auto* pg = dynamic_cast<const PostgresLedger*>(&sink);
  return pg != nullptr ? pg->spooled() : 0;
}

std::uint64_t postgres_ledger_transactions(const LedgerSink& sink) {
  const auto* pg = dynamic_cast<const PostgresLedger*>(&sink);
  return pg != nullptr ? pg->transactions() : 0;
}

Result<std::vector<CostRecord>> read_postgres_ledger(const std::string& url, const LedgerQuery& q) {
  const std::string name = redact_postgres_url(url);
  auto conn = open_readable(url, name);
  if (!conn.ok()) return conn.status();
  auto rows = run_query(conn->get(), name,
                        std::string("SELECT id, ") + kCallColumns + " FROM calls", q, "cannot read the ledger");
  if (!rows.ok()) return rows.status();
  PGresult* r = rows->get();
  std::vector<CostRecord> records;
  records.reserve(static_cast<size_t>(PQntuples(r)));
  for (int i = 0; i < PQntuples(r); ++i) {
    RowReader row{r, i};
    const std::int64_t id = row.integer();
    row.text();  // record_key
    auto c = ledger_columns::read_call(row, id, name);
    if (!c.ok()) return c.status();
    records.push_back(std::move(c).value());
  }
  return records;
}

Result<std::vector<DecisionRecord>> read_postgres_decisions(const std::string& url, const LedgerQuery& q) {
  const std::string name = redact_postgres_url(url);
  auto conn = open_readable(url, name);
  if (!conn.ok()) return conn.status();
  auto version = schema_version(conn->get(), name);
  if (!version.ok()) return version.status();
  std::string columns = kDecisionColumns;
  if (*version < 2) {  // before the verdict columns: read as nulls
    columns.resize(columns.size() - std::string_view(ledger_columns::kVerdictColumns).size());
    columns += ledger_columns::kNoVerdictColumns;
  }
  auto rows = run_query(conn->get(), name, "SELECT id, " + columns + " FROM decisions", q,
                        "cannot read the ledger's decisions");
  if (!rows.ok()) return rows.status();
  PGresult* res = rows->get();
  std::vector<DecisionRecord> records;
  for (int i = 0; i < PQntuples(res); ++i) {
    RowReader row{res, i};
    const std::int64_t id = row.integer();
    row.text();  // record_key
    auto r = ledger_columns::read_decision(row, id, name);
    if (!r.ok()) return r.status();
    records.push_back(std::move(r).value());
  }
  return records;
}

Status reprice_postgres_ledger(const std::string& url, const std::vector<std::pair<std::int64_t, MicroUsd>>& costs,
                               const std::string& catalog_version) {
  const std::string name = redact_postgres_url(url);
  auto conn = open_readable(url, name);
  if (!conn.ok()) return conn.status();
  PGconn* c = conn->get();
  // All or nothing: one statement over arrays of ids and costs.
  std::string ids = "{", values = "{";
  for (size_t i = 0; i < costs.size(); ++i) {
    ids += (i ? "," : "") + std::to_string(costs[i].first);
    values += (i ? "," : "") + std::to_string(costs[i].second);
  }
  ids += "}";
  values += "}";
  auto done = query(c, name,
                    "UPDATE calls SET cost_micro_usd = v.cost, catalog_version = $3 FROM "
                    "unnest($1::bigint[], $2::bigint[]) AS v(id, cost) WHERE calls.id = v.id",
                    {ids, values, catalog_version}, "cannot store the re-priced costs");
  return done.ok() ? Status() : done.status();
}

Status store_postgres_token_factors(const std::string& url, const std::map<std::string, TokenCalibration>& factors) {
  const std::string name = redact_postgres_url(url);
  auto conn = connect(url, name, std::chrono::seconds(5));
  if (!conn.ok()) return conn.status();
  PGconn* c = conn->get();
  if (Status s = migrate(c, name); !s.ok()) return s;
  if (Status s = exec(c, name, "BEGIN", "cannot start storing token factors"); !s.ok()) return s;
  const std::string now = std::to_string(to_ms(std::chrono::system_clock::now()));
  const auto ppm = [](double v) { return std::to_string(static_cast<std::int64_t>(std::llround(v * 1e6))); };
  for (const auto& [model, f] : factors) {
    auto done = query(c, name,
                      "INSERT INTO token_factors (model, calls, p50_ppm, p99_ppm, factor_ppm, time_ms) "
                      "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (model) DO UPDATE SET calls = $2, "
                      "p50_ppm = $3, p99_ppm = $4, factor_ppm = $5, time_ms = $6",
                      {model, std::to_string(f.calls), ppm(f.p50), ppm(f.p99), ppm(f.factor), now},
                      "cannot store a token factor");
    if (!done.ok()) {
      rollback(c);
      return done.status();
    }
  }
  return exec(c, name, "COMMIT", "cannot commit the token factors");
}

Result<std::map<std::string, TokenCalibration>> read_postgres_token_factors(const std::string& url) {
  const std::string name = redact_postgres_url(url);
  auto conn = open_readable(url, name);
  if (!conn.ok()) return conn.status();
  auto rows = query(conn->get(), name, "SELECT model, calls, p50_ppm, p99_ppm, factor_ppm FROM token_factors", {},
                    "cannot read the token factors");
  if (!rows.ok()) return rows.status();
  std::map<std::string, TokenCalibration> factors;
  for (int i = 0; i < PQntuples(rows->get()); ++i) {
    RowReader row{rows->get(), i};
    const std::string model = row.text();
    TokenCalibration t;
    t.calls = row.integer();
    t.p50 = static_cast<double>(row.integer()) / 1e6;
    t.p99 = static_cast<double>(row.integer()) / 1e6;
    t.factor = static_cast<double>(row.integer()) / 1e6;
    factors[model] = t;
  }
  return factors;
}

}  // namespace switchboard
