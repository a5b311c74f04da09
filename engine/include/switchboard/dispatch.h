/// @file
/// Dispatcher: the call path. For one step it asks the rules (Engine::decide),
/// reserves the worst case in the budget (Engine::admit), calls the chosen
/// model through its ModelClient with retries and fallbacks, fans out and
/// aggregates in contemplating mode, settles the budget with the providers'
/// own usage, and writes one CostRecord per attempt to the ledger.
///
/// Retries: an `unavailable` failure (429, 5xx, timeout, broken stream) is
/// retried on the same model up to [calls] max_attempts, after a full-jitter
/// exponential backoff (uniform in [0, min(backoff_max, backoff_initial ×
/// 2^(n-1))]) or, when the provider sent Retry-After, after exactly that wait
/// (one longer than retry_after_max is not waited for). Fallbacks: when a model
/// is used up (or failed with `upstream`), the next model of the decision's
/// tier is called, skipping any whose context window is smaller than the
/// step's input plus the output cap, and any whose circuit breaker is open
/// (Engine::health(); the record says so). Every call's outcome feeds the
/// breaker: an answer, an `unavailable` failure, or neither (health.h). Every
/// answered call of a step with a session (Step::session_id) feeds the
/// session book: the model that answered, and what its prompt cache now
/// holds (sessions.h).
///
/// Budgets: every attempt first reserves the most it can cost on the model
/// about to be called (its input bound at the dearest input rate plus its
/// output cap at the dearest output rate; cost/call_bound.h) in every scope
/// of the step at once: the workload's, and StepCall::budget_scopes. The
/// first attempt takes over the admission's reservation; a retry or a
/// fallback reserves again at its own model's prices. When the whole cap
/// does not fit, the cap sent upstream is lowered to what does (down to
/// [calls] min_answer_tokens); below that the model is not called (a
/// `refused_by_budget` record) and the next one is tried. Each attempt
/// settles at the provider's own usage; what it billed above its
/// reservation is an overrun (CostRecord::overrun), charged all the same.
///
/// Judged shadow calls ([workloads.X] shadow_calls, config.h): when a step of
/// such a workload is answered (and its model is not the target's: those are
/// counted, never shadowed), a seeded Bernoulli sampler draws it with
/// probability `sample`. A drawn step is handed to the dispatcher's shadow
/// worker (a copy of its request; one short lock, never a wait: a full queue
/// drops the sample and counts it), and run() returns as it would have. The
/// worker sends the same request to the target, then asks the judge which of
/// the two answers is better, twice: the routed answer as A, then as B. The
/// two verdicts agree: that is the verdict; they disagree: a tie (a judge
/// that always names the same position says nothing about the answers).
/// A judge failure or an answer that is no verdict is an error, never a loss.
/// The target's and the judge's calls are calls like any other (CostRecords of
/// workload "shadow:X", role the step's or "judge"), each reserved first in
/// the scope shadow_calls_budget_scope(X) whose cap is budget_usd per period:
/// one the budget refuses ends the sample as skipped. Each sample ends in one
/// DecisionRecord of kind judged with the step's trace id. The dispatcher's
/// destructor waits for the queue as [shadow] drain_timeout_ms allows.
///
/// Ledger order: a step's DecisionRecord precedes its calls' CostRecords.
/// Made when the step is decided, it is written at once off a fiber; on a
/// fiber (FiberLoop) it is written while the first call waits for its
/// answer, so that the request is not sent later for it, and at the latest
/// before the first CostRecord or the step's end.
///
/// Ledger statuses, one record per attempt: `ok` for the answer; `error` for a
/// failed attempt that was retried, or the last one when nothing was left;
/// `fallback` for the failed attempt after which the next model was called;
/// `refused_by_budget` (no model called) when the budget refused the step;
/// `cancelled` for the attempt under way when the step's bounds stopped it
/// (StepCall::bounds: its usage estimated, CostRecord::usage_estimated);
/// `refused_by_rate_limit` (no model called) when a rate limit of the step's
/// key or workload had no room.
///
/// Rate limits (rate_limit.h, [models.X] / [workloads.X] /
/// [gateway.keys.X] requests_per_minute, tokens_per_minute): a step counts
/// once in its workload's and keys' limits before it is decided (run()) or
/// executed (execute(), unless StepCall::rate_counted); refused, it ends
/// with status rate_limited (retry_after() set) and one record. Each model
/// counts the step once when it is about to be called: a model without room
/// is passed by like one whose circuit breaker is open (the record says
/// which limit), and the tier's next model is tried; when it was the last,
/// the step ends rate_limited. Tokens counted: the step's input estimate
/// plus the caller's output cap (ModelRequest::max_output_tokens, 0 if none).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "switchboard/client.h"
#include "switchboard/decision.h"
#include "switchboard/engine.h"
#include "switchboard/ledger.h"
#include "switchboard/status.h"
#include "switchboard/step.h"

namespace switchboard {

/// One step to call: what the rules see, and what the model is sent.
struct StepCall {
  Step step;  ///< what the rules see
  /// What the model is sent, as the caller asks it: messages (empty: one user
  /// message made from step.prompt, or the role), tools, tool choice, output
  /// format, sampling, the caller's reasoning setting (reasoning.effort,
  /// reasoning.budget_tokens) and output cap. The dispatcher fills the rest:
  /// reasoning.level from the decision (the caller's explicit setting wins unless
  /// the rules pinned the level: Decision::reasoning_pinned),
  /// max_output_tokens from the decision when the caller set none, the token
  /// counts from the step, and `bounds` below.
  ModelRequest request;
  std::string trace_id;           ///< "" = a fresh random id
  /// Budget scopes besides the workload's that must hold every attempt's
  /// bound: a gateway key's key_budget_scope(NAME), a tag's
  /// tag_budget_scope(NAME, VALUE) (its cap from [budgets.NAME.VALUE]); see
  /// Engine::admit. The ledger records of the step name them all.
  std::vector<std::string> budget_scopes;
  /// Set: the final answer (the aggregator's, in contemplating mode) is
  /// streamed through it as it arrives; see StreamChunk::restart.
  ChunkHandler on_chunk;
  /// What happens when a streamed attempt fails after on_chunk has received
  /// text. false (the default): the step ends there with that failure; no
  /// retry or fallback is started whose answer the caller would never show,
  /// and the failed attempt's record says the stream broke after delivering.
  /// true: for a caller that can take back what it showed, the next attempt
  /// (a retry or another model) streams on and its first chunk has
  /// StreamChunk::restart set.
  bool restart_streams = false;
  /// The host already counted the step in its key's and workload's rate
  /// limits (Engine::admit_rate, before deciding, to show the rules the
  /// headroom): execute() does not count it again. false: execute() counts
  /// it before the budget admission (run() counts before deciding). A model's
  /// own limit is counted either way when that model is about to be called.
  bool rate_counted = false;
  /// An eval case (eval.h): the step's decision is recorded as kind eval
  /// instead of rules or requested, so live-traffic reports and replays
  /// never take it for a served step.
  bool eval = false;
  /// The step's deadline over all its attempts, fallbacks and backoffs, and
  /// its cancellation (see cancel.h). When either stops the step, the attempt
  /// under way is aborted and recorded `cancelled` (usage as known, or
  /// estimated: CostRecord::usage_estimated), no further attempt starts, and
  /// StepResult::status is kCancelled or kDeadlineExceeded.
  CallBounds bounds;
};

/// What happened to one step.
struct StepResult {
  /// ok; over_budget (refused, no model called); rate_limited (a rate limit
  /// had no room: retry_after() says when it would); unavailable or upstream
  /// (every model failed: the last failure); not_found (unknown workload).
  Status status;
  Decision decision;              ///< as admitted (moved to over_budget_tier when rerouted)
  ModelResponse response;         ///< the final answer: the aggregator's when fanned out
  std::string model;              ///< the model that gave it
  std::string trace_id;           ///< the step's trace id (CostRecord::trace_id)
  MicroUsd cost = 0;              ///< every call of the step, failed attempts included
  std::chrono::milliseconds latency{0};  ///< wall clock of the whole step
  /// The part of the step's wall time spent waiting on models: inside the
  /// model clients' calls (invoke or stream: connecting, sending, the
  /// provider's answer, reading and parsing it) and in the backoff waits
  /// between retries, summed over the attempts. A fan-out counts the wall
  /// time of its parallel branches (not their sum), then its aggregator's
  /// calls. A streamed call's time inside StepCall::on_chunk (the caller's
  /// own work on each chunk) is not in it. What a host spent on the step
  /// beyond it is its own overhead (the gateway's x-switchboard-overhead-ms).
  std::chrono::nanoseconds upstream{0};
  int attempts = 0;               ///< calls made (branches and aggregator included)
  int fallbacks = 0;              ///< times a next model was called
  std::vector<CostRecord> records;  ///< as written to the ledger, in the order written
  /// The output cap the answer was asked with (max_output_tokens sent
  /// upstream); 0 when none was sent.
  std::int64_t output_cap = 0;
  /// The cap was lowered below what was asked (or the model's default) to
  /// what the budgets of the step's scopes afford (gateway header
  /// x-switchboard-output-cap: N; reason=budget).
  bool output_cap_lowered = false;
};

/// One embeddings call (Dispatcher::embed).
struct EmbeddingCall {
  /// "" or "auto": the [embeddings] tier; a tier of embedding models; or an
  /// embedding model, first, then the rest of its tier.
  std::string model;
  EmbeddingRequest request;       ///< the inputs, and the call's bounds
  std::string role = "embedding";  ///< CostRecord::role of its records
  std::string trace_id;           ///< "" = a fresh random id
  /// Budget scopes besides the workload's that must hold its worst case (a gateway key's "key:NAME").
  std::vector<std::string> budget_scopes;
};

/// What happened to one embeddings call.
struct EmbeddingResult {
  /// ok; over_budget (refused, no model called); unavailable or upstream
  /// (every model failed: the last failure); invalid_argument (no inputs, or
  /// a chat model or tier asked for); not_found (an unknown workload, model
  /// or tier); cancelled or deadline_exceeded (its bounds stopped it).
  Status status;
  EmbeddingResponse response;     ///< the vectors, when ok
  std::string model;              ///< the model that answered (the last one tried, when none did)
  std::string tier;               ///< its tier
  std::string trace_id;           ///< CostRecord::trace_id of its records
  MicroUsd cost = 0;              ///< every attempt's
  /// The time spent inside the model clients' embed() calls and the backoff
  /// waits between them (as StepResult::upstream).
  std::chrono::nanoseconds upstream{0};
  int attempts = 0;               ///< calls made
  int fallbacks = 0;              ///< times a next model was called
  std::vector<CostRecord> records;  ///< as written to the ledger, in order
  /// rate_limited: the scope that had no room: the step's ("key:team-a",
  /// "workload:NAME") or, when every model was passed by, the last model's
  /// (model_rate_scope); "" otherwise.
  std::string limited_by;
};

/// Optional parts of a Dispatcher: its ledger, its sleep and its seed.
struct DispatcherOptions {
  /// Where every CostRecord goes. Null: records are only returned in StepResult.
  std::shared_ptr<Ledger> ledger;
  /// Waits between retries; tests pass a fake that records the waits.
  std::function<void(std::chrono::milliseconds)> sleep;
  /// Seed for the backoff jitter, ids and the shadow-call sampler; 0 = from std::random_device.
  std::uint64_t seed = 0;
  /// Judged shadow calls waiting for the shadow worker, at most; a sample
  /// drawn while it is full is dropped and counted (ShadowCallCounts::dropped).
  std::size_t shadow_call_queue = 64;
};

/// What the judged shadow calls of a dispatcher did since it was made (all workloads).
struct ShadowCallCounts {
  std::uint64_t eligible = 0;    ///< answered steps of a workload with shadow_calls, not on the target
  std::uint64_t on_target = 0;   ///< answered steps already served by the target: never shadowed
  std::uint64_t sampled = 0;     ///< eligible steps the sampler drew
  std::uint64_t dropped = 0;     ///< of those, the queue was full (or closing timed out): not judged
  std::uint64_t wins = 0;        ///< verdicts recorded: the routed answer was better
  std::uint64_t ties = 0;        ///< ... as good (or the two orders disagreed)
  std::uint64_t losses = 0;      ///< ... worse
  std::uint64_t errors = 0;      ///< ... no verdict: the target or the judge failed
  std::uint64_t skipped = 0;     ///< ... the shadow budget refused a call
  MicroUsd spent = 0;            ///< the target's and the judge's calls
};

/// The budget scope of a workload's judged shadow calls: "shadow:WORKLOAD".
std::string shadow_calls_budget_scope(std::string_view workload);

/// The call path for steps (see the file comment); run() and execute() are thread-safe.
class Dispatcher {
 public:
  /// REQUIRES: `engine` outlives the dispatcher; `clients` serves every model
  /// of the engine's config (a missing one fails its calls with not_found).
  Dispatcher(const Engine& engine, ModelClients clients, DispatcherOptions options = {});
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  /// decide -> admit -> call -> ledger -> settle. Thread-safe. The step's
  /// trace id is call.trace_id, else ctx.trace_id, else a fresh one; decide()
  /// sees it in its ctx (the engine's shadow record of the step carries it).
  StepResult run(std::string_view workload, const StepCall& call, const CallContext& ctx = {}) const;
  /// The same for a decision the host already holds (a concrete model it was
  /// asked for, say): admit -> call -> ledger -> settle. Thread-safe. A host
  /// that called decide() itself passes it the trace id it gives call.trace_id.
  StepResult execute(const Decision& decision, const StepCall& call) const;
  /// run() for a call the host lends (std::move(call)): the
  /// same, but the call's messages and tools reach its model calls without a
  /// copy (a long conversation's worth per step). They are moved out while
  /// the step runs (no other thread may read the call meanwhile) and back
  /// before it returns, so the host may read the call after.
  StepResult run(std::string_view workload, StepCall&& call, const CallContext& ctx = {}) const;
  /// execute() for a lent call: as run() for one, above.
  StepResult execute(const Decision& decision, StepCall&& call) const;

  /// An embeddings call (embedding.h): reserves its worst case (the inputs'
  /// estimated tokens at the first model's input price) in the workload's
  /// budget and call.budget_scopes (over a cap it is refused: the workload's
  /// over_budget_tier serves chat), calls the model and then the rest of its
  /// tier with the [calls] retries, backoff and fallbacks of a model call,
  /// writes one CostRecord per attempt (role call.role, the provider's usage
  /// or, flagged usage_estimated, the engine's estimate), and settles the
  /// budgets. No decision is made or recorded: the rules route chat steps
  /// only. Thread-safe.
  EmbeddingResult embed(std::string_view workload, const EmbeddingCall& call) const;

  /// The clients the dispatcher calls models through.
  const ModelClients& clients() const;

  /// Waits until every judged shadow call handed over so far is recorded (or
  /// dropped), or `timeout` passes; true when none is left. Hosts call it
  /// before flushing the ledger; at once when no workload has shadow_calls.
  bool wait_for_shadow_calls(std::chrono::milliseconds timeout) const;
  /// What the judged shadow calls did so far.
  ShadowCallCounts shadow_calls() const;

 private:
  struct Impl;
  // run()'s work; `given`: `call` itself when the host lent it, else null.
  StepResult run_call(std::string_view workload, const StepCall& call, const CallContext& ctx,
                      StepCall* given) const;
  std::unique_ptr<Impl> impl_;
};

/// Adds the settled spend of every budget scope (workload, key, tag) in the
/// current budget period, read from the ledger at `ledger_location` (a
/// SQLite path or a PostgreSQL URL: read_ledger), to the engine's budget
/// book: so a restarted host does not start its caps from zero. Each record
/// counts in the scopes it names (CostRecord::budget_scopes); one written
/// before scopes were kept, in its workload's. Reads from the first of the
/// current UTC month (every day and month period in use starts there).
/// Returns the number of records counted.
Result<std::int64_t> load_budget_spend(const Engine& engine, const std::string& ledger_location);

}  // namespace switchboard
