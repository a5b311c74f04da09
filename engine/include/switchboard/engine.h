/// @file
/// Engine: the embeddable router. Owns the configuration, the compiled rules of
/// every workload and the sandboxed Lua states that run them.
///
/// Shadow rules. A workload may name a candidate rules file beside its active
/// one ([workloads.X] shadow_rules). The candidate compiles into the same
/// snapshots as the active rules and reloads with them, but it never decides:
/// decide() returns the active decision, then hands the step, the ctx figures
/// the active rules saw and the active decision to the engine's shadow worker
/// (one thread per engine, started only when some workload has shadow rules).
/// The worker runs the candidate's classify on the same step with the same ctx
/// figures, in sandboxes of its own under the [sandbox] limits, compares the
/// two (same_choice) and writes a DecisionRecord of kind shadow to
/// EngineOptions::shadow_ledger. Handing over never waits: when [shadow] queue
/// evaluations are already waiting, the step is dropped and counted. A shadow
/// file that does not load never stops the active rules from loading or
/// reloading: it is reported as a shadow error (WorkloadStatus, a ReloadEvent
/// with `shadow` set) and that workload's shadow evaluation is off until it loads.
///
/// Thread-safety: every method may be called from any number of threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "switchboard/budget.h"
#include "switchboard/health.h"
#include "switchboard/sessions.h"
#include "switchboard/config.h"
#include "switchboard/decision.h"
#include "switchboard/ledger.h"
#include "switchboard/rate_limit.h"
#include "switchboard/status.h"
#include "switchboard/step.h"

namespace switchboard {

/// What the host knows about the call's surroundings; the rules see it as `ctx`.
/// For a workload with a budget, unset fields come from the engine's budget
/// book (budgets()): spent in the current period, and what is left of the cap.
/// Fields are initialised so designated initialisers may omit them.
struct CallContext {
  std::optional<MicroUsd> budget_left{};  ///< nil in Lua when the workload has no budget
  std::optional<MicroUsd> spent{};        ///< spent in the current period
  /// The step's rate-limit headroom (Engine::admit_rate: what is left after
  /// it in the tightest limited scope of its key and workload), shown to the
  /// rules as ctx.rate_requests_left / ctx.rate_tokens_left; nil without a limit.
  std::optional<std::int64_t> rate_requests_left{};
  std::optional<std::int64_t> rate_tokens_left{};  ///< as rate_requests_left, for tokens
  /// The step's trace id (CostRecord::trace_id): not shown to the rules; the
  /// shadow record of the step carries it, so reports can join it with the
  /// step's calls. Dispatcher::run sets it.
  std::string trace_id{};
};

/// One outcome of a reload, for one workload whose rules file (or shadow
/// rules file) changed.
struct ReloadEvent {
  /// Whether the file's new text went live or was refused.
  enum class Kind { kActivated, kRejected };
  Kind kind = Kind::kActivated;  ///< what became of the file's new text
  std::string workload;          ///< the workload whose file was tried
  std::string rules_path;        ///< as the config names it
  std::string version;           ///< sha256 of the text that was tried
  std::string previous_version;  ///< what served before (and still serves, if rejected)
  std::string error;             ///< "file:line: message" when rejected
  std::chrono::system_clock::time_point at;  ///< when the file was tried
  /// The workload's shadow rules, not its active ones: rules_path is the
  /// shadow file. Activated: the candidate evaluated from now on. Rejected: no
  /// candidate is evaluated until the file loads (previous_version no longer
  /// runs; "" when none did).
  bool shadow = false;
};

/// What one workload's shadow rules did since the engine opened.
struct ShadowCounts {
  std::uint64_t evaluated = 0;  ///< steps the candidate classified, its failures included
  std::uint64_t agreed = 0;     ///< of those, the same choice as the active rules (same_choice)
  std::uint64_t errors = 0;     ///< of those, the candidate failed (error, budget, invalid answer): never agreeing
  std::uint64_t dropped = 0;    ///< handed over while the queue was full, or still waiting when closing timed out
};

/// What a workload is serving, for status pages and `switchboard watch`.
struct WorkloadStatus {
  std::string workload;                               ///< the workload's name
  std::string rules_path;                             ///< its rules file, as the config names it
  std::string version;                                ///< the active rules' sha256
  std::chrono::system_clock::time_point activated_at;  ///< when the active version went live
  std::optional<std::string> last_error;              ///< the last rejected reload, if any
  std::chrono::system_clock::time_point last_error_at;  ///< when last_error was recorded
  std::uint64_t activations = 0;                      ///< reloads that went live
  std::uint64_t rejections = 0;                       ///< reloads that were refused

  /// Shadow rules; shadow_rules_path is "" when the workload has none.
  std::string shadow_rules_path;
  std::string shadow_version;                         ///< the candidate evaluated now; "" while none loads
  std::chrono::system_clock::time_point shadow_activated_at;  ///< when shadow_version went live
  std::optional<std::string> shadow_error;            ///< why the shadow file does not load, until it does
  std::chrono::system_clock::time_point shadow_error_at;  ///< when shadow_error was recorded
  ShadowCounts shadow;                                ///< what the shadow rules did since the engine opened
};

/// How an Engine runs, besides its config: rules watching, the reload callback, the shadow ledger.
struct EngineOptions {
  /// Watch the rules files' directories and reload on change (inotify, with a
  /// content-hash poll behind it). Off: reload() only.
  bool watch_rules = false;
  std::chrono::milliseconds watch_debounce{150};        ///< quiet time after a change before reloading
  std::chrono::milliseconds watch_poll_interval{2000};  ///< period of the content-hash poll
  /// Called for every activation or rejection, on the thread that reloads
  /// (the watcher's, or the caller of reload()). Must not call reload().
  std::function<void(const ReloadEvent&)> on_reload;
  /// Where shadow records go (DecisionRecord kind shadow, admission
  /// not_admitted). Null: shadow rules are still evaluated and counted
  /// (status()), but nothing is recorded. The engine keeps it until its
  /// shadow worker has drained, so no record is lost on a clean shutdown.
  std::shared_ptr<Ledger> shadow_ledger;
  /// The clock of the models' circuit breakers (health()); tests pass a scripted one.
  std::function<std::chrono::steady_clock::time_point()> health_clock = std::chrono::steady_clock::now;
  /// The clock of the session book's cache lifetimes (sessions()); tests pass a scripted one.
  std::function<std::chrono::steady_clock::time_point()> sessions_clock = std::chrono::steady_clock::now;
};

/// One line of a rules file that a traced call ran.
struct TracedLine {
  int line = 0;      ///< 1-based, as in error messages
  std::string text;  ///< the line's source, without its line ending and trailing blanks
};

/// A decision with the lines of the rules that made it (Engine::explain).
struct Explanation {
  Decision decision;  ///< the decision, as decide() makes it
  /// The lines of the rules file the classify() call ran, in execution order,
  /// consecutive repeats collapsed (a loop on one line shows once per entry);
  /// when the rules failed, up to the failure. The file body, run at load, is
  /// not part of a call.
  std::vector<TracedLine> lines;
  bool truncated = false;  ///< the call ran more than 4096 lines: the rest are missing
};

/// Lua states and the bytes they hold (shadow rules' included), for memory reports.
struct EngineMemory {
  size_t states = 0;             ///< live Lua states
  std::int64_t state_bytes = 0;  ///< bytes those states hold
};

/// The budget's answer to one decision, before its model is called.
struct Admission {
  /// ok (admitted), over_budget (refused), or unavailable (the shared [state]
  /// could not be reached and on_unavailable is fail_closed).
  Status status;
  Decision decision;        ///< the decision to call: moved to the workload's
                            ///< over_budget_tier when the first choice did not fit,
                            ///< its max_output_tokens lowered when output_cap_lowered
  bool rerouted = false;    ///< the decision was moved to the workload's over_budget_tier
  /// Held when admitted, in every scope of `scopes` at once: settle() with the
  /// actual cost after the call; dropping it releases the reserve.
  Reservation reservation;
  /// The scopes charged: "workload:NAME" first, then the extra scopes asked for.
  std::vector<std::string> scopes;
  /// The output cap was lowered below what the decision asked (or the
  /// model's default_output_tokens) to what the budget affords; the caller
  /// must send decision.max_output_tokens upstream.
  bool output_cap_lowered = false;
  MicroUsd worst_case = 0;  ///< what was reserved (or, refused, the least that was asked)
  /// When refused: the ledger record of the refusal (status refused_by_budget).
  std::optional<CostRecord> refusal;
};

/// The rate limits' answer to one step (Engine::admit_rate), before its rules run.
struct RateAdmission {
  /// ok (counted in every limited scope), rate_limited (counted in none; its
  /// retry_after() says when the same step would fit, none when it never
  /// can), or unavailable (the shared [state] could not be reached and
  /// on_unavailable is fail_closed).
  Status status;
  /// Admitted: what is left after this step in the tightest limited scope;
  /// none when no scope of the step limits requests.
  std::optional<std::int64_t> requests_left;
  std::optional<std::int64_t> tokens_left;  ///< as requests_left, for tokens
  std::string limited_by;                   ///< refused: the scope that had no room ("key:team-a")
  /// Refused: the ledger record of the refusal (status refused_by_rate_limit,
  /// no model: the rules did not run). The caller writes it.
  std::optional<CostRecord> refusal;
};

/// The embeddable router (see the file comment). Every method may be called from any number
/// of threads.
class Engine {
 public:
  /// Compiles every workload's rules on a fresh sandbox; fails with the first
  /// "file:line: message" if one does not load. A shadow rules file that does
  /// not load is no failure: status() shows it as the workload's shadow_error.
  static Result<std::unique_ptr<Engine>> open(Config config, EngineOptions options = {});
  /// open() with the config that load_config() reads from `config_path`.
  static Result<std::unique_ptr<Engine>> open_file(const std::string& config_path,
                                                   EngineOptions options = {});

  /// Stops the rules watcher, then lets the shadow worker record what is
  /// waiting for at most [shadow] drain_timeout_ms (plus the evaluation under
  /// way, itself bounded by the sandbox limits); what is left is dropped. Then
  /// releases the shadow ledger: a host that holds it too flushes it after.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// Runs the workload's classify(step, ctx) and validates the answer. Never
  /// fails because of the rules: a broken rule yields the fallback tier with
  /// Decision::error set. Fails only for an unknown workload.
  ///
  /// Thread-safe and lock-free on the hot path: the call runs on one immutable
  /// rule-set snapshot (Decision::rules_version names it) in a Lua state no
  /// other thread uses meanwhile. A thread keeps the last snapshot it used
  /// alive until its next decision, so old states close shortly after a reload
  /// (on a background thread), or when the thread exits.
  ///
  /// On a workload with shadow rules it also hands the step to the shadow
  /// worker (a copy of the step, the decision and ctx.trace_id; one short
  /// lock, never a wait); the candidate never changes what is returned.
  Result<Decision> decide(std::string_view workload, const Step& step,
                          const CallContext& ctx = {}) const;

  /// Waits until the shadow worker has nothing left to do (every evaluation
  /// handed over so far recorded, or dropped), or until `timeout` passes.
  /// True when it is idle; at once for an engine without shadow rules. Hosts
  /// call it before flushing the shadow ledger; tests, to read what was recorded.
  bool wait_for_shadow(std::chrono::milliseconds timeout) const;

  /// decide(), with the lines of the rules that ran: for tools (`switchboard
  /// route --explain`), not for serving. The call is traced line by line, so
  /// it is several times slower; decide() is never slowed by it. The decision
  /// is the one decide() makes. Thread-safe; fails only for an unknown workload.
  Result<Explanation> explain(std::string_view workload, const Step& step,
                              const CallContext& ctx = {}) const;

  /// Re-reads every workload's rules file (and shadow rules file). A changed
  /// file is compiled on a fresh sandbox under the load budget and must pass
  /// the workload's test cases (`<rules stem>.test.toml` beside it) before it
  /// goes live in one atomic swap; otherwise the old version keeps serving
  /// and the error is recorded; the same rejected text (or an unreadable
  /// file) is not tried again until it or its test file changes. Returns one
  /// event per file tried. Thread-safe; reloads are serialised. Within one
  /// reload the new snapshot is published first, then status() is updated,
  /// then on_reload runs. A shadow file is only compiled (no test cases gate
  /// it: a candidate is expected to disagree with the active rules' cases);
  /// one that does not load turns that workload's shadow evaluation off
  /// until it does.
  std::vector<ReloadEvent> reload();

  /// Per workload, in name order.
  std::vector<WorkloadStatus> status() const;
  /// The Lua states the rules hold now (shadow rules' included), and their bytes.
  EngineMemory memory() const;

  /// The configuration the engine was opened with; it never changes.
  const Config& config() const;
  /// The budget book: the caps of workloads ("workload:NAME") and tags ("tag:NAME=VALUE"), every
  /// charged scope's spend; hosts set their own caps (a key's) with set_limit. Thread-safe.
  BudgetBook& budgets() const;
  /// Every model's health ([health]; health.h): fed by the dispatcher's calls,
  /// read by the rules as ctx.models. Thread-safe.
  HealthBook& health() const;
  /// Every session's cache figures ([sessions]; sessions.h): fed by the
  /// dispatcher's answered calls, read by the rules as ctx.session and by
  /// the decision's estimate. Thread-safe.
  SessionBook& sessions() const;
  /// Reserves the decision's worst case in its workload's budget and in each
  /// of `extra_scopes` (a gateway key's "key:NAME", a tag's "tag:NAME=VALUE";
  /// limits from the config or budgets().set_limit), all at once or not at
  /// all: counted input × input price + output cap × output price for each
  /// of `fanout` branches, plus the aggregation call, where the output cap is
  /// the decision's max_output_tokens, else the model's default_output_tokens
  /// (the caller must send that cap to the provider). When the worst case
  /// does not fit what is left of every scope: the decision moves to the
  /// workload's over_budget_tier if it has one; then (there, or as decided)
  /// the output cap is lowered to the largest that fits, down to [calls]
  /// min_answer_tokens (output_cap_lowered); when not even that fits, the
  /// call is refused with a one-line reason and a ledger record. Scopes
  /// without a limit never refuse (their spend is still tracked). Thread-safe.
  Admission admit(const Decision& decision, const Step& step, std::string trace_id = {},
                  const std::vector<std::string>& extra_scopes = {}) const;

  /// The rate limits (rate_limit.h): requests and tokens per minute of every
  /// key ("key:NAME"), workload ("workload:NAME") and model ("model:NAME")
  /// the config limits, shared through [state] like the budgets; hosts may
  /// set more with set_limit. Thread-safe.
  RateLimiter& rate_limits() const;
  /// Counts one step in the rate limits of its workload and of each of
  /// `extra_scopes` (a gateway key's "key:NAME"; scopes without a limit are
  /// ignored), in all at once or in none, as its input tokens (the step's
  /// count, else the estimate of its prompt) plus `output_cap` (the caller's
  /// max_output_tokens; 0 when it set none). Called before the rules run, so
  /// they see the headroom (CallContext::rate_requests_left). A refusal
  /// comes with its ledger record. Model limits are counted by the
  /// dispatcher when a model is about to be called. Thread-safe.
  RateAdmission admit_rate(std::string_view workload, const Step& step, std::int64_t output_cap,
                           const std::vector<std::string>& extra_scopes = {}, std::string trace_id = {}) const;

  /// sha256 (hex) of the workload's active rules, "" for an unknown workload.
  std::string rules_version(std::string_view workload) const;

 private:
  struct Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// Compiles and runs a rules file in a fresh sandbox without a config. Returns
/// the sha256 of its text, or "file:line: message". `display_name` is how the
/// file is named in messages (defaults to `path`).
Result<std::string> check_rules_file(const std::string& path, const SandboxLimits& limits = {},
                                     std::string display_name = {});

}  // namespace switchboard
