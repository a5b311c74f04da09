/// @file
/// The cost ledger: one CostRecord per model-call attempt, and one
/// DecisionRecord per decision (the step's fields as the rules saw them and
/// what they chose), written to sinks.
///
/// Sinks have the spdlog shape: a tiny interface (write, flush), a base that
/// takes the lock so implementers never do, composition (a sink of sinks), and
/// failure isolation: a sink that fails reports to the error handler and never
/// breaks the call that produced the record.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "switchboard/decision.h"
#include "switchboard/money.h"
#include "switchboard/pricing.h"
#include "switchboard/status.h"
#include "switchboard/step.h"

namespace switchboard {

/// What became of one model-call attempt (dispatch.h says when each is written).
enum class CallStatus {
  kOk,
  kError,
  kFallback,
  kRefusedByBudget,
  /// The attempt was cut short before it finished, because the caller went
  /// away (a gateway client disconnected) or the step's deadline passed;
  /// `error` says which. Its usage (and cost) is what was known when it
  /// stopped, and is real spend like any other attempt's.
  kCancelled,
  /// No model called: a rate limit of the step's key or workload (rate_limit.h)
  /// had no room; `error` names the scope and when it would fit. Cost 0.
  kRefusedByRateLimit,
};
/// The ledger's name of `s`: "ok", "error", "fallback", "refused_by_budget",
/// "cancelled" or "refused_by_rate_limit".
std::string_view to_string(CallStatus s);
/// The inverse of to_string(CallStatus); nullopt for any other name.
std::optional<CallStatus> parse_call_status(std::string_view name);

/// One model-call attempt, as the ledger keeps it.
struct CostRecord {
  std::int64_t id = 0;                 ///< assigned by a store (SQLite rowid, PostgreSQL serial); 0 before
  std::chrono::system_clock::time_point time;  ///< stored to the millisecond (UTC)
  std::string trace_id;                ///< shared by every call of one step (fan-out included)
  std::string parent_id;               ///< the fan-out parent's call id, "" at the top
  std::string call_id;                 ///< this attempt
  std::string workload;                ///< the workload the step was routed for
  std::string role;                    ///< the step's role
  std::string tier;                    ///< the tier the model was called from
  std::string model;                   ///< the model called, as the config names it
  std::string provider;                ///< its client's provider(); on a refusal, the config's
  std::string rules_version;           ///< sha256 of the rules that decided
  std::string catalog_version;         ///< the price catalog `cost` was computed with
  std::int64_t latency_ms = 0;         ///< the attempt's wall-clock time
  Usage usage;                         ///< the provider's own figures, normalised, unless usage_estimated
  /// Set when `usage` is not the provider's own figures but the engine's
  /// estimate: input counted from the request, output from the text received
  /// before the attempt was cut short (say, a kCancelled attempt stopped
  /// before the provider reported its usage). `cost` prices the estimate.
  bool usage_estimated = false;
  MicroUsd cost = 0;                   ///< `usage` priced with the catalog
  /// The engine's own count of the attempt's input, before any calibration
  /// factor (count_request_tokens with token_factor 1: tokens.h), on an
  /// answered call; 0 when not counted. `switchboard calibrate` learns each
  /// model's factor from usage.total_input() ÷ this (calibration.h).
  std::int64_t counted_input_tokens = 0;
  CallStatus status = CallStatus::kOk;  ///< what became of the attempt
  std::string error;                   ///< one line, "" when ok; never holds a key
  /// The budget scopes `cost` was charged to ("workload:NAME" first, then
  /// "key:NAME", "tag:NAME=VALUE" ...): what a restarted host loads its
  /// budgets from. Empty in records written before scopes were kept (the
  /// workload's scope is meant) and in records the dispatcher did not write.
  std::vector<std::string> budget_scopes;
  /// What the budget reserved for the attempt before calling it, when a cap
  /// applied to one of its scopes; 0 when none did.
  MicroUsd reserved = 0;
  /// The output cap sent upstream (max_output_tokens); 0 when none was sent.
  std::int64_t output_cap = 0;
  /// The cap was lowered below what was asked (or the model's default) to
  /// what the budget affords.
  bool output_cap_lowered = false;

  /// What the provider billed above the reservation (a counting bug
  /// upstream, a cap not honoured): cost - reserved when a reservation was
  /// made and exceeded, else 0. Already charged to every scope.
  MicroUsd overrun() const { return reserved > 0 && cost > reserved ? cost - reserved : 0; }
};

/// Who chose a recorded decision, and whether it was acted on.
enum class DecisionKind {
  kRules,      ///< the workload's rules chose; the step's calls followed
  kRequested,  ///< the caller named the model or tier (Decision::requested); calls followed
  kShadow,     ///< the workload's shadow rules, on the same step: never acted on
  /// An eval case (`switchboard eval`, eval.h): a target's choice for a
  /// case of an eval set, its calls followed; not live traffic. Its records
  /// carry the eval's workload ("eval", or "eval:RULES" for a rules target).
  kEval,
  /// A judged shadow call (dispatch.h, "Judged shadow calls"): the live
  /// step's decision (its trace_id the step's), never acted on again; its
  /// verdict in DecisionRecord::judged. Not a decision to replay.
  kJudged,
};
/// The ledger's name of `k`: "rules", "requested", "shadow", "eval" or "judged".
std::string_view to_string(DecisionKind k);
/// The inverse of to_string(DecisionKind); nullopt for any other name.
std::optional<DecisionKind> parse_decision_kind(std::string_view name);

/// What the budget did with a decision before its calls (Engine::admit).
enum class AdmissionOutcome {
  kAdmitted,      ///< called as decided
  kRerouted,      ///< called on the workload's over_budget_tier instead
  kRefused,       ///< no model called (a refused_by_budget CostRecord says why)
  kNotAdmitted,   ///< not put to the budget: a shadow decision
};
/// The ledger's name of `a`: "admitted", "rerouted", "refused" or "not_admitted".
std::string_view to_string(AdmissionOutcome a);
/// The inverse of to_string(AdmissionOutcome); nullopt for any other name.
std::optional<AdmissionOutcome> parse_admission_outcome(std::string_view name);

/// A judge's pairwise verdict on a live step's answer against the shadow
/// target's answer to the same request (DecisionKind::kJudged), from the
/// routed answer's point of view.
struct JudgedVerdict {
  /// win / tie / loss: the routed answer was better, as good, or worse (both
  /// orders agreed; orders that disagree make a tie); error: the judge or the
  /// target failed, or the judge gave no verdict (never counted as a loss);
  /// skipped: the shadow budget refused the target or a judge call.
  enum class Outcome { kWin, kTie, kLoss, kError, kSkipped };
  Outcome outcome = Outcome::kTie;  ///< what the judge found
  std::string reason;               ///< the judge's reasons (both orders), or why there is no verdict
  std::string judge_model;          ///< the model that judged
  std::string routed_model;         ///< the model that answered the live step
  std::string routed_call_id;       ///< the live step's answering call (CostRecord::call_id)
  std::string target_tier;          ///< the shadow target's tier
  std::string target_model;         ///< the model that answered for the target ("" when not called)
  std::string shadow_trace_id;      ///< the trace id of the target's and the judge's CostRecords
  MicroUsd routed_cost = 0;         ///< the live step's calls
  MicroUsd target_cost = 0;         ///< the target's calls: what the step would have cost there
  MicroUsd judge_cost = 0;          ///< the judge's calls (both orders)
};
/// The ledger's name of `o`: "win", "tie", "loss", "error" or "skipped".
std::string_view to_string(JudgedVerdict::Outcome o);
/// The inverse of to_string(JudgedVerdict::Outcome); nullopt for any other name.
std::optional<JudgedVerdict::Outcome> parse_judged_outcome(std::string_view name);

/// One decision for one step: what `switchboard whatif` replays under other
/// rules and `report --shadow` compares. The step's calls are the CostRecords
/// with the same trace_id.
struct DecisionRecord {
  std::int64_t id = 0;                 ///< assigned by a store (SQLite rowid, PostgreSQL serial); 0 before
  std::chrono::system_clock::time_point time;  ///< stored to the millisecond (UTC)
  std::string trace_id;                ///< the step's trace id, shared by its CostRecords
  DecisionKind kind = DecisionKind::kRules;  ///< who chose
  /// The step's fields as the rules saw them. input_tokens is always set (as
  /// counted, or as the engine estimated it from the prompt); the prompt text
  /// itself only when the config says [ledger] keep_prompts = true.
  Step step;
  /// The rules' answer, before the budget: workload, rules_version, tier,
  /// model, reasoning, fanout, aggregate, max_output_tokens, reason, error, the
  /// ctx figures the rules saw, and the engine's estimates.
  Decision decision;
  AdmissionOutcome admission = AdmissionOutcome::kAdmitted;  ///< what the budget did with it
  /// kShadow only: the active rules' decision for the same step (before the
  /// budget), and whether the candidate chose the same (same_choice()); a
  /// candidate that failed (decision.error set) never agrees.
  std::optional<Decision> active;
  bool agrees = false;  ///< kShadow only: whether the candidate chose the same as `active`
  /// kJudged only: the verdict of the step's shadow call.
  std::optional<JudgedVerdict> judged;
};

/// Whether two decisions call the same thing: tier, model, reasoning, fanout,
/// aggregate (when fanned out) and max_output_tokens. The reason may differ.
bool same_choice(const Decision& a, const Decision& b);

/// Receives every sink failure. Called from the writing thread; must not throw.
using SinkErrorHandler = std::function<void(const std::string& sink, const std::string& message)>;

/// Where ledger records go: the interface every sink implements.
class LedgerSink {
 public:
  virtual ~LedgerSink() = default;
  /// Accepts a record. Thread-safe. A durable sink may buffer: the record is
  /// acknowledged (durable) only once a later flush() returns ok.
  virtual Status write(const CostRecord& record) = 0;
  /// The same for a decision record. A sink that keeps costs only (a metrics
  /// feed, say) may ignore them: the default accepts and drops.
  virtual Status write(const DecisionRecord& record);
  /// Returns once every record written (by any thread) before this call is
  /// durable, as durable as the sink makes records (the SQLite sink: appended
  /// to its journal, see LedgerDurability), or with the error of the failed
  /// write that lost one of them. Thread-safe. The gateway calls it once per
  /// request, before the response's last byte, so a sink should make it cheap
  /// when little is pending (the SQLite sink appends at once, sharing the
  /// write with concurrent callers).
  virtual Status flush() = 0;
  /// How failures name the sink ("sqlite:PATH", "jsonl:PATH", "postgresql://HOST:PORT/DB" and
  /// "callback" for the built-in ones).
  virtual std::string name() const = 0;
};

/// Base that serialises write/flush under one mutex, as spdlog's base_sink.
class LockedSink : public LedgerSink {
 public:
  Status write(const CostRecord& record) final;
  Status write(const DecisionRecord& record) final;
  Status flush() final;

 protected:
  /// write() of a cost record, under the lock.
  virtual Status write_locked(const CostRecord& record) = 0;
  virtual Status write_locked(const DecisionRecord& record);  ///< default: dropped
  /// flush(), under the lock.
  virtual Status flush_locked() = 0;

 private:
  std::mutex mu_;
};

/// What a SQLite sink does when its bounded queue is full.
enum class QueueFullPolicy {
  kBlock,  ///< the writer waits for room (default: nothing is dropped)
  kFail,   ///< write() returns an error at once; the caller decides
};

/// What an acknowledged record of the SQLite sink survives ([ledger] durability).
enum class LedgerDurability {
  /// A crash of the process: an acknowledgement is one write to the journal,
  /// no fsync (and the database runs synchronous=NORMAL in WAL mode). A power
  /// loss may lose the last acknowledgements.
  kProcess,
  /// A power loss too: every acknowledgement fdatasyncs the journal (and the
  /// database runs synchronous=FULL).
  kPower,
};
/// The config's name of `d`: "process" or "power".
std::string_view to_string(LedgerDurability d);
/// The inverse of to_string(LedgerDurability); nullopt for any other name.
std::optional<LedgerDurability> parse_ledger_durability(std::string_view name);

/// Settings of the SQLite sink (open_sqlite_ledger).
struct SqliteLedgerOptions {
  std::string path;                         ///< database file; created with the schema if new
  /// Records waiting for the journal (their acknowledgement), at most; as
  /// many again (plus a batch) are kept in memory waiting for the database,
  /// beyond which they are read back from the journal.
  size_t queue_capacity = 65536;
  /// Records per database transaction, at most. Measured (bench_ledger): the
  /// cost per record falls steeply up to a few hundred and is flat past 512.
  size_t batch_size = 512;
  /// A partial batch nobody waits on is journaled, and a journaled one moved
  /// into the database, after this; one a flush() waits on is journaled at once.
  std::chrono::milliseconds max_delay{50};
  QueueFullPolicy when_full = QueueFullPolicy::kBlock;  ///< what write() does when the queue is full
  LedgerDurability durability = LedgerDurability::kProcess;  ///< what an acknowledgement survives
  /// Once every record of the journal is in the database and the journal is
  /// larger than this, it is started afresh (a new generation).
  std::uint64_t journal_limit_bytes = std::uint64_t{64} << 20;
  /// A due batch the idle-priority thread has not taken this long past
  /// max_delay (it is starved: every core is busy) is moved in by the
  /// background thread at normal priority instead (see below).
  std::chrono::milliseconds idle_late_after{200};
};

/// The embedded default: WAL mode, a versioned schema with migrations, an
/// append-only journal in front (sqlite_ledger_journal_path), batched
/// transactions off the request path.
/// flush() is a group commit to the journal: it returns once every earlier
/// record is appended to it (one write; with durability power, also
/// fdatasync); when nobody is appending it appends the queue on its own
/// thread at once, else it waits for that append and the next one takes
/// every record queued meanwhile, so concurrent callers share one write and
/// nobody waits a fixed delay. A background thread journals the records
/// nobody flushes (max_delay after the oldest); journaled records move into
/// the database in transactions of batch_size records (or max_delay after
/// the oldest) on a thread at the scheduler's idle priority (Linux's
/// SCHED_IDLE: a request's thread waking on its core preempts it at once),
/// or on the background thread once a batch is late because every core is
/// busy (idle_late_after past max_delay, or four batches waiting). Opening replays into the database, exactly once, what a
/// crashed writer journaled and did not move in (a torn last line, never
/// acknowledged, is ignored with a warning on stderr); the readers below do
/// so too, so they see every acknowledged record. Destroying the sink moves
/// everything queued into the database and leaves the journal empty.
/// One writer holds the journal at a time; a sink opened while another holds
/// it commits each flush to the database instead (as a transaction).
/// A batch that fails to reach the journal is dropped; its error is returned
/// by each flush() covering it that began before one of them returned, and
/// the sink keeps working. A transaction that fails is tried again later (its
/// records are safe in the journal), reported once on stderr.
/// The first SQLite ledger connection of a process (a sink's or a reader's)
/// turns SQLite's memory statistics off (SQLITE_CONFIG_MEMSTATUS: they take a
/// process-wide mutex on every SQLite allocation and binding) unless the host
/// initialized SQLite before.
Result<std::shared_ptr<LedgerSink>> open_sqlite_ledger(const SqliteLedgerOptions& options);
/// The journal beside the SQLite ledger at `db_path`: db_path + "-acks".
/// Part of the ledger, like SQLite's own -wal file: remove both or neither.
std::string sqlite_ledger_journal_path(const std::string& db_path);
/// One JSON object per line; flush() fsyncs.
Result<std::shared_ptr<LedgerSink>> open_jsonl_ledger(const std::string& path);
/// Hands each record to the host, synchronously, on the writing thread;
/// decision records go to `on_decision` when set, else are dropped.
std::shared_ptr<LedgerSink> callback_ledger(std::function<void(const CostRecord&)> fn,
                                            std::function<void(const DecisionRecord&)> on_decision = {});

/// Settings of the PostgreSQL sink (open_postgres_ledger).
struct PostgresLedgerOptions {
  /// A libpq connection URI, "postgresql://USER@HOST:PORT/DB?..." (or
  /// "postgres://..."). Keep the password out of it: libpq reads PGPASSWORD
  /// and ~/.pgpass. Messages name the server without the password.
  std::string url;
  /// The local file records go to while PostgreSQL is unreachable (and
  /// until what it holds is replayed); created if missing, held by one
  /// process at a time (an advisory lock).
  std::string spool_path;
  /// The spool's size, at most: a flush whose records do not fit fails
  /// (those records are not acknowledged) until PostgreSQL is back.
  std::uint64_t spool_limit_bytes = std::uint64_t{256} << 20;
  /// Records per PostgreSQL transaction, at most.
  size_t batch_size = 512;
  /// Records nobody flushes are committed this long after the oldest.
  std::chrono::milliseconds max_delay{50};
  /// How long to wait between reconnection attempts at first; it doubles on
  /// each failure up to 30 s. Connecting gives up after connect_timeout.
  std::chrono::milliseconds retry_interval{500};
  std::chrono::seconds connect_timeout{2};  ///< libpq's connect_timeout (at least 2 s)
  /// What an acknowledgement survives. process: a crash of this process (a
  /// spooled record is written; a committed one asynchronously, with
  /// synchronous_commit off, which a crash of the server's machine may lose
  /// for up to its wal_writer_delay). power: a power loss too (the spool is
  /// fdatasynced; commits keep the server's synchronous_commit, on by default).
  LedgerDurability durability = LedgerDurability::kProcess;
};

/// The PostgreSQL sink: the same records and fields as the SQLite ledger,
/// in a versioned schema (tables calls, decisions, token_factors and
/// switchboard_schema, migrated under an advisory lock so replicas opening
/// together migrate once). Every record carries a key unique to it
/// (record_key: the sink's random id and a sequence number), and a batch is
/// written with INSERT ... ON CONFLICT (record_key) DO NOTHING in one
/// transaction (a batch of up to 64 records as one multi-row statement, a
/// larger one by COPY into a temporary table first): writing a batch twice
/// leaves one copy.
/// flush() is a group commit, as the SQLite sink's: it returns once every
/// record written before it is committed to PostgreSQL, or, while
/// PostgreSQL is unreachable, appended to the spool (with the durability
/// above); concurrent callers share one transaction. While the spool holds
/// records, new ones go to it too, and a background thread reconnects (with
/// backoff) and replays the spool in batches, then empties it: exactly once,
/// since a replayed record whose key is already stored is skipped. A spool
/// left by a crashed process is replayed the same way once its sink opens.
/// A batch neither committed nor spooled is dropped, and its error returned
/// by each flush() covering it; the sink keeps working.
/// Opening fails only when the spool cannot be opened or locked, or the
/// server is reachable and its schema is newer than this build's; an
/// unreachable server at open means spooling until it is reachable.
Result<std::shared_ptr<LedgerSink>> open_postgres_ledger(const PostgresLedgerOptions& options);

/// Whether `location` is a PostgreSQL URL ("postgresql://" or "postgres://")
/// rather than a SQLite database path.
bool is_postgres_url(std::string_view location);

/// A sink of sinks: writes to each; a failing sink is reported and skipped.
/// Thread-safe (the sinks are); the handler may then run on several threads at
/// once. Without a handler, failures are printed to stderr.
class Ledger {
 public:
  /// Writes to `sinks`; failures go to `on_error`.
  explicit Ledger(std::vector<std::shared_ptr<LedgerSink>> sinks, SinkErrorHandler on_error = {});
  /// Never fails: a sink's failure (or exception) goes to the error handler.
  void record(const CostRecord& record);
  /// The same for a decision record.
  void record(const DecisionRecord& record);
  /// Flushes every sink; ok only if all flushed, else an error naming each
  /// sink that did not (not also sent to the handler).
  Status flush();

 private:
  template <typename Record>
  void write_to_each(const Record& record);

  std::vector<std::shared_ptr<LedgerSink>> sinks_;
  SinkErrorHandler on_error_;
};

/// Reads a SQLite ledger back (for rebill, report and tests), oldest first
/// (by time, then id), with ids filled. Times are stored to the millisecond.
/// Every reader below first moves into the database what its journal holds
/// and the database does not (a crashed writer's acknowledged records, or a
/// live one's batch not yet moved), unless the file is read-only to it.
/// Fields default to "no filter" (initialised so designated initialisers may omit them).
struct LedgerQuery {
  /// Only records timed in [since, until); an unset bound leaves that side open.
  std::optional<std::chrono::system_clock::time_point> since{}, until{};  ///< [since, until)
  std::optional<std::string> workload{};  ///< only this workload's records
};
/// The cost records of a SQLite ledger that `query` selects, in the order LedgerQuery describes.
Result<std::vector<CostRecord>> read_sqlite_ledger(const std::string& path, const LedgerQuery& query = {});
/// The decision records of a SQLite ledger, in the same order and with the
/// same filters. A ledger written before decisions were kept has none.
Result<std::vector<DecisionRecord>> read_sqlite_decisions(const std::string& path, const LedgerQuery& query = {});

/// The cost records of the ledger at `location`: a PostgreSQL URL
/// (is_postgres_url) or a SQLite database path (read_sqlite_ledger); the
/// same order, filters and fields either way. A PostgreSQL ledger holds what
/// every writer committed; records still in a writer's spool are not seen.
Result<std::vector<CostRecord>> read_ledger(const std::string& location, const LedgerQuery& query = {});
/// The decision records of the ledger at `location`, as read_ledger.
Result<std::vector<DecisionRecord>> read_ledger_decisions(const std::string& location,
                                                          const LedgerQuery& query = {});
/// reprice_sqlite_ledger for the ledger at `location` (either kind).
Status reprice_ledger(const std::string& location, const std::vector<std::pair<std::int64_t, MicroUsd>>& costs,
                      const std::string& catalog_version);

/// Stores re-priced costs (record id -> micro-dollars) and the catalog version
/// they were priced with, in one transaction: all of them or none.
Status reprice_sqlite_ledger(const std::string& path,
                             const std::vector<std::pair<std::int64_t, MicroUsd>>& costs,
                             const std::string& catalog_version);

}  // namespace switchboard
