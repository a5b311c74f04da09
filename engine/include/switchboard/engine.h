// Engine: the embeddable router. Owns the configuration, the compiled rules of
// every workload and the sandboxed Lua states that run them.
//
// Thread-safety: every method may be called from any number of threads.
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
#include "switchboard/config.h"
#include "switchboard/decision.h"
#include "switchboard/ledger.h"
#include "switchboard/status.h"
#include "switchboard/step.h"

namespace switchboard {

// What the host knows about the call's surroundings; the rules see it as `ctx`.
// For a workload with a budget, unset fields come from the engine's budget
// book (budgets()): spent in the current period, and what is left of the cap.
struct CallContext {
  std::optional<MicroUsd> budget_left;  // nil in Lua when the workload has no budget
  std::optional<MicroUsd> spent;
};

// One outcome of a reload, for one workload whose rules file changed.
struct ReloadEvent {
  enum class Kind { kActivated, kRejected };
  Kind kind = Kind::kActivated;
  std::string workload;
  std::string rules_path;        // as the config names it
  std::string version;           // sha256 of the text that was tried
  std::string previous_version;  // what served before (and still serves, if rejected)
  std::string error;             // "file:line: message" when rejected
  std::chrono::system_clock::time_point at;
};

// What a workload is serving, for status pages and `switchboard watch`.
struct WorkloadStatus {
  std::string workload;
  std::string rules_path;
  std::string version;                                // the active rules' sha256
  std::chrono::system_clock::time_point activated_at;
  std::optional<std::string> last_error;              // the last rejected reload, if any
  std::chrono::system_clock::time_point last_error_at;
  std::uint64_t activations = 0;                      // reloads that went live
  std::uint64_t rejections = 0;                       // reloads that were refused
};

struct EngineOptions {
  // Watch the rules files' directories and reload on change (inotify, with a
  // content-hash poll behind it). Off: reload() only.
  bool watch_rules = false;
  std::chrono::milliseconds watch_debounce{150};
  std::chrono::milliseconds watch_poll_interval{2000};
  // Called for every activation or rejection, on the thread that reloads
  // (the watcher's, or the caller of reload()). Must not call reload().
  std::function<void(const ReloadEvent&)> on_reload;
};

// One line of a rules file that a traced call ran.
struct TracedLine {
  int line = 0;      // 1-based, as in error messages
  std::string text;  // the line's source, without its line ending and trailing blanks
};

// A decision with the lines of the rules that made it (Engine::explain).
struct Explanation {
  Decision decision;
  // The lines of the rules file the classify() call ran, in execution order,
  // consecutive repeats collapsed (a loop on one line shows once per entry);
  // when the rules failed, up to the failure. The file body, run at load, is
  // not part of a call.
  std::vector<TracedLine> lines;
  bool truncated = false;  // the call ran more than 4096 lines: the rest are missing
};

// Lua states and the bytes they hold, for memory reports.
struct EngineMemory {
  size_t states = 0;
  std::int64_t state_bytes = 0;
};

// The budget's answer to one decision, before its model is called.
struct Admission {
  Status status;            // ok (admitted) or over_budget (refused)
  Decision decision;        // the decision to call: moved to the workload's
                            // over_budget_tier when the first choice did not fit
  bool rerouted = false;
  Reservation reservation;  // held when admitted: settle() with the actual cost
                            // after the call; dropping it releases the reserve
  std::vector<Reservation> scope_reservations;  // one per extra scope, in order: settle each too
  MicroUsd worst_case = 0;  // what was reserved (or refused)
  // When refused: the ledger record of the refusal (status refused_by_budget).
  std::optional<CostRecord> refusal;
};

class Engine {
 public:
  // Compiles every workload's rules on a fresh sandbox; fails with the first
  // "file:line: message" if one does not load.
  static Result<std::unique_ptr<Engine>> open(Config config, EngineOptions options = {});
  static Result<std::unique_ptr<Engine>> open_file(const std::string& config_path,
                                                   EngineOptions options = {});

  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Runs the workload's classify(step, ctx) and validates the answer. Never
  // fails because of the rules: a broken rule yields the fallback tier with
  // Decision::error set. Fails only for an unknown workload.
  //
  // Thread-safe and lock-free on the hot path: the call runs on one immutable
  // rule-set snapshot (Decision::rules_version names it) in a Lua state no
  // other thread uses meanwhile. A thread keeps the last snapshot it used
  // alive until its next decision, so old states close shortly after a reload
  // (on a background thread), or when the thread exits.
  Result<Decision> decide(std::string_view workload, const Step& step,
                          const CallContext& ctx = {}) const;

  // decide(), with the lines of the rules that ran: for tools (`switchboard
  // route --explain`), not for serving. The call is traced line by line, so
  // it is several times slower; decide() is never slowed by it. The decision
  // is the one decide() makes. Thread-safe; fails only for an unknown workload.
  Result<Explanation> explain(std::string_view workload, const Step& step,
                              const CallContext& ctx = {}) const;

  // Re-reads every workload's rules file. A changed file is compiled on a
  // fresh sandbox under the load budget and must pass the workload's test
  // cases (<rules stem>.test.toml beside it) before it goes live in one
  // atomic swap; otherwise the old version keeps serving and the error is
  // recorded; the same rejected text (or an unreadable file) is not tried
  // again until it or its test file changes. Returns one event per file
  // tried. Thread-safe; reloads are serialised. Within one reload the new
  // snapshot is published first, then status() is updated, then on_reload runs.
  std::vector<ReloadEvent> reload();

  // Per workload, in name order.
  std::vector<WorkloadStatus> status() const;
  EngineMemory memory() const;

  const Config& config() const;
  // The budgets of every workload with a `budget_usd` (scope "workload:NAME"),
  // for hosts that reserve before a call and settle after. Thread-safe.
  BudgetBook& budgets() const;
  // Reserves the decision's worst case in its workload's budget: counted
  // input × input price + output cap × output price for each of `fanout`
  // branches, plus the aggregation call, where the output cap is the
  // decision's max_output_tokens, else the model's default_output_tokens
  // (the caller must send that cap to the provider). Over the cap, the
  // decision moves to the workload's over_budget_tier if it has one and that
  // fits; otherwise it is refused with a one-line reason and a ledger record.
  // A workload without a budget is always admitted. Each of `extra_scopes`
  // (a gateway key's "key:NAME", say; limits set with budgets().set_limit)
  // must also hold the worst case, else the call is refused; extra scopes do
  // not reroute. Thread-safe.
  Admission admit(const Decision& decision, const Step& step, std::string trace_id = {},
                  const std::vector<std::string>& extra_scopes = {}) const;

  // sha256 (hex) of the workload's active rules, "" for an unknown workload.
  std::string rules_version(std::string_view workload) const;

 private:
  struct Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Compiles and runs a rules file in a fresh sandbox without a config. Returns
// the sha256 of its text, or "file:line: message". `display_name` is how the
// file is named in messages (defaults to `path`).
Result<std::string> check_rules_file(const std::string& path, const SandboxLimits& limits = {},
                                     std::string display_name = {});

}  // namespace switchboard
