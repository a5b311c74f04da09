// The cost ledger: one CostRecord per model-call attempt, and one
// DecisionRecord per decision (the step's fields as the rules saw them and
// what they chose), written to sinks.
//
// Sinks have the spdlog shape: a tiny interface (write, flush), a base that
// takes the lock so implementers never do, composition (a sink of sinks), and
// failure isolation: a sink that fails reports to the error handler and never
// breaks the call that produced the record.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "switchboard/decision.h"
#include "switchboard/money.h"
#include "switchboard/pricing.h"
#include "switchboard/status.h"
#include "switchboard/step.h"

namespace switchboard {

enum class CallStatus { kOk, kError, kFallback, kRefusedByBudget };
std::string_view to_string(CallStatus s);
std::optional<CallStatus> parse_call_status(std::string_view name);

struct CostRecord {
  std::int64_t id = 0;                 // assigned by a store (SQLite rowid); 0 before
  std::chrono::system_clock::time_point time;  // stored to the millisecond (UTC)
  std::string trace_id;                // shared by every call of one step (fan-out included)
  std::string parent_id;               // the fan-out parent's call id, "" at the top
  std::string call_id;                 // this attempt
  std::string workload;
  std::string role;                    // the step's role
  std::string tier;
  std::string model;
  std::string provider;
  std::string rules_version;           // sha256 of the rules that decided
  std::string catalog_version;         // the price catalog `cost` was computed with
  std::int64_t latency_ms = 0;
  Usage usage;
  MicroUsd cost = 0;
  CallStatus status = CallStatus::kOk;
  std::string error;                   // one line, "" when ok; never holds a key
};

// Who chose a recorded decision, and whether it was acted on.
enum class DecisionKind {
  kRules,      // the workload's rules chose; the step's calls followed
  kRequested,  // the caller named the model or tier (Decision::requested); calls followed
  kShadow,     // the workload's shadow rules, on the same step: never acted on
};
std::string_view to_string(DecisionKind k);
std::optional<DecisionKind> parse_decision_kind(std::string_view name);

// What the budget did with a decision before its calls (Engine::admit).
enum class AdmissionOutcome {
  kAdmitted,      // called as decided
  kRerouted,      // called on the workload's over_budget_tier instead
  kRefused,       // no model called (a refused_by_budget CostRecord says why)
  kNotAdmitted,   // not put to the budget: a shadow decision
};
std::string_view to_string(AdmissionOutcome a);
std::optional<AdmissionOutcome> parse_admission_outcome(std::string_view name);

// One decision for one step: what `switchboard whatif` replays under other
// rules and `report --shadow` compares. The step's calls are the CostRecords
// with the same trace_id.
struct DecisionRecord {
  std::int64_t id = 0;                 // assigned by a store (SQLite rowid); 0 before
  std::chrono::system_clock::time_point time;  // stored to the millisecond (UTC)
  std::string trace_id;
  DecisionKind kind = DecisionKind::kRules;
  // The step's fields as the rules saw them. input_tokens is always set (as
  // counted, or as the engine estimated it from the prompt); the prompt text
  // itself only when the config says [ledger] keep_prompts = true.
  Step step;
  // The rules' answer, before the budget: workload, rules_version, tier,
  // model, reasoning, fanout, aggregate, max_output_tokens, reason, error, the
  // ctx figures the rules saw, and the engine's estimates.
  Decision decision;
  AdmissionOutcome admission = AdmissionOutcome::kAdmitted;
  // kShadow only: the active rules' decision for the same step (before the
  // budget), and whether the candidate chose the same (same_choice()); a
  // candidate that failed (decision.error set) never agrees.
  std::optional<Decision> active;
  bool agrees = false;
};

// Whether two decisions call the same thing: tier, model, reasoning, fanout,
// aggregate (when fanned out) and max_output_tokens. The reason may differ.
bool same_choice(const Decision& a, const Decision& b);

// Receives every sink failure. Called from the writing thread; must not throw.
using SinkErrorHandler = std::function<void(const std::string& sink, const std::string& message)>;

class LedgerSink {
 public:
  virtual ~LedgerSink() = default;
  // Accepts a record. Thread-safe. A durable sink may buffer: the record is
  // acknowledged (durable) only once a later flush() returns ok.
  virtual Status write(const CostRecord& record) = 0;
  // The same for a decision record. A sink that keeps costs only (a metrics
  // feed, say) may ignore them: the default accepts and drops.
  virtual Status write(const DecisionRecord& record);
  // Makes every record written before this call durable. Thread-safe.
  virtual Status flush() = 0;
  virtual std::string name() const = 0;
};

// Base that serialises write/flush under one mutex, as spdlog's base_sink.
class LockedSink : public LedgerSink {
 public:
  Status write(const CostRecord& record) final;
  Status write(const DecisionRecord& record) final;
  Status flush() final;

 protected:
  virtual Status write_locked(const CostRecord& record) = 0;
  virtual Status write_locked(const DecisionRecord& record);  // default: dropped
  virtual Status flush_locked() = 0;

 private:
  std::mutex mu_;
};

// What a SQLite sink does when its bounded queue is full.
enum class QueueFullPolicy {
  kBlock,  // the writer waits for room (default: nothing is dropped)
  kFail,   // write() returns an error at once; the caller decides
};

struct SqliteLedgerOptions {
  std::string path;                         // database file; created with the schema if new
  size_t queue_capacity = 65536;            // records waiting for the background writer
  size_t batch_size = 512;                  // records per transaction, at most
  std::chrono::milliseconds max_delay{50};  // a partial batch is written after this
  QueueFullPolicy when_full = QueueFullPolicy::kBlock;
};

// The embedded default: WAL mode, a versioned schema with migrations, batched
// transactions on a background thread. flush() returns once every earlier
// record is committed (synchronous=FULL for the commit flush() waits on).
// A batch that fails to commit is dropped; its error is returned by each
// flush() covering it that began before one of them returned, and the sink
// keeps working. Destroying the sink commits what is still queued.
Result<std::shared_ptr<LedgerSink>> open_sqlite_ledger(const SqliteLedgerOptions& options);
// One JSON object per line; flush() fsyncs.
Result<std::shared_ptr<LedgerSink>> open_jsonl_ledger(const std::string& path);
// Hands each record to the host, synchronously, on the writing thread;
// decision records go to `on_decision` when set, else are dropped.
std::shared_ptr<LedgerSink> callback_ledger(std::function<void(const CostRecord&)> fn,
                                            std::function<void(const DecisionRecord&)> on_decision = {});

// A sink of sinks: writes to each; a failing sink is reported and skipped.
// Thread-safe (the sinks are); the handler may then run on several threads at
// once. Without a handler, failures are printed to stderr.
class Ledger {
 public:
  explicit Ledger(std::vector<std::shared_ptr<LedgerSink>> sinks, SinkErrorHandler on_error = {});
  // Never fails: a sink's failure (or exception) goes to the error handler.
  void record(const CostRecord& record);
  void record(const DecisionRecord& record);
  // Flushes every sink; ok only if all flushed, else an error naming each
  // sink that did not (not also sent to the handler).
  Status flush();

 private:
  template <typename Record>
  void write_to_each(const Record& record);

  std::vector<std::shared_ptr<LedgerSink>> sinks_;
  SinkErrorHandler on_error_;
};

// Reads a SQLite ledger back (for rebill, report and tests), oldest first
// (by time, then id), with ids filled. Times are stored to the millisecond.
// Fields default to "no filter" (initialised so designated initialisers may omit them).
struct LedgerQuery {
  std::optional<std::chrono::system_clock::time_point> since{}, until{};  // [since, until)
  std::optional<std::string> workload{};
};
Result<std::vector<CostRecord>> read_sqlite_ledger(const std::string& path, const LedgerQuery& query = {});
// The decision records of a SQLite ledger, in the same order and with the
// same filters. A ledger written before decisions were kept has none.
Result<std::vector<DecisionRecord>> read_sqlite_decisions(const std::string& path, const LedgerQuery& query = {});

// Stores re-priced costs (record id -> micro-dollars) and the catalog version
// they were priced with, in one transaction: all of them or none.
Status reprice_sqlite_ledger(const std::string& path,
                             const std::vector<std::pair<std::int64_t, MicroUsd>>& costs,
                             const std::string& catalog_version);

}  // namespace switchboard
