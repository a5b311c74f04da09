/// @file
/// Replay: recorded traffic under other rules or prices, without calling a
/// model. `switchboard whatif` is built on it, and `report --shadow` prices
/// the shadow rules' choices with the same estimator.
///
/// What is exact and what is estimated: a step whose decision does not change
/// costs what it was billed (re-priced when another catalog is given). A step
/// whose decision changes keeps its recorded input tokens (counted, so exact);
/// its output and reasoning tokens are scaled from the recorded ones by each
/// model's ratio of actual to expected output in the same ledger (OutputRatios),
/// so they are estimates, and a report must say so.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "switchboard/config.h"
#include "switchboard/decision.h"
#include "switchboard/ledger.h"
#include "switchboard/pricing.h"
#include "switchboard/status.h"

namespace switchboard {

/// One recorded step: the rules' decision (kind rules or requested) and the
/// cost records sharing its trace id, in ledger order.
struct RecordedStep {
  DecisionRecord decision;        ///< the decision record
  std::vector<CostRecord> calls;  ///< the cost records sharing its trace id, in ledger order
  MicroUsd billed = 0;  ///< the sum of the calls' costs, as recorded
};

/// Groups a ledger's decision records (kinds rules and requested; shadow ones
/// are skipped) with their calls by trace id, oldest first. Calls without a
/// decision record (a ledger written before decisions were kept) are left out.
std::vector<RecordedStep> recorded_steps(const std::vector<DecisionRecord>& decisions,
                                         const std::vector<CostRecord>& calls);

/// Per model (and reasoning level), how long the ledger's answers were against
/// what the engine expected: Σ output tokens / Σ estimated output tokens over
/// the successful calls that answered a step (fan-out branches included,
/// aggregation calls not), and Σ reasoning / Σ output tokens.
class OutputRatios {
 public:
  /// Measures the ratios over the calls of `steps`.
  static OutputRatios from_history(const std::vector<RecordedStep>& steps);

  /// One model's ratios (at one reasoning level, or over all).
  struct Ratio {
    double output = 1.0;     ///< actual / expected output tokens
    double reasoning = 0.0;  ///< reasoning / output tokens
    std::int64_t calls = 0;  ///< how many answers it is measured over
  };
  /// A ratio over fewer answers than this is noise, and is not used.
  static constexpr std::int64_t kMinCalls = 10;

  /// At this reasoning level if the model has kMinCalls answers there, else
  /// over all its answers if it has kMinCalls; else nullopt (no scaling).
  std::optional<Ratio> find(const std::string& model, Reasoning level) const;
  /// Every model's ratio over all its answers, by name.
  const std::map<std::string, Ratio>& by_model() const { return by_model_; }

 private:
  std::map<std::string, Ratio> by_model_;
  std::map<std::pair<std::string, Reasoning>, Ratio> by_level_;
};

/// What a recorded step would have cost under `decision`.
struct ReplayCost {
  MicroUsd cost = 0;  ///< what the step would have cost
  /// True when the output tokens were scaled by ratios from the history; false
  /// when they were kept as recorded (no ratio for a model involved) or the
  /// cost is the recorded one re-priced (same choice as recorded).
  bool scaled = false;
  bool from_estimates = false;  ///< no successful call recorded: the engine's estimates were used
};

/// Prices `step` under `decision` with `prices`. The same choice as recorded
/// costs what its calls cost, re-priced. Another choice: each of the
/// decision's `fanout` branches takes the recorded input tokens (cached ones
/// only on the same model: another model's cache is cold) and the recorded
/// output and reasoning tokens × ratio(new model) / ratio(recorded model)
/// (unscaled when either has no ratio), within the call's output cap; a
/// fan-out adds the aggregation call (input: the step's plus every branch's
/// output; output as a branch's, on the aggregate tier's first model).
/// Fails only when `prices` has no entry for a model it needs.
Result<ReplayCost> replay_cost(const Config& config, const PriceCatalog& prices, const RecordedStep& step,
                               const Decision& decision, const OutputRatios& ratios);

/// `switchboard whatif`: candidate rules for one workload replayed over the
/// steps of a SQLite ledger or a STEPS.jsonl trace.
struct WhatIfOptions {
  std::string workload;          ///< the workload whose steps are replayed
  std::string candidate_rules;  ///< the candidate rules file
  /// Price the replay with this catalog instead of the config's (null: the config's).
  std::shared_ptr<const PriceCatalog> prices;
};

/// One replayed step: its decision and cost before and after.
struct WhatIfStep {
  std::string id;        ///< the trace id (ledger) or "line N" (trace)
  Step step;             ///< as recorded (ledger) or read (trace)
  Decision before;       ///< as recorded (ledger), or the active rules' (trace)
  Decision after;        ///< the candidate's
  bool changed = false;  ///< !same_choice(before, after)
  MicroUsd cost_before = 0;  ///< billed (ledger) or estimated (trace)
  MicroUsd cost_after = 0;   ///< what the step costs under `after`
  bool estimated = false;    ///< cost_after rests on scaled or estimated tokens
  /// Why a step's cost was kept as recorded though its decision changed: the
  /// caller chose its model, or the budget refused or rerouted it.
  std::string kept_because;
};

/// The outcome of what_if(): every replayed step, and the totals.
struct WhatIfReport {
  std::string workload;                ///< the workload replayed
  std::string source;                  ///< the ledger or trace replayed
  bool from_ledger = false;            ///< the source is a SQLite ledger (else a trace)
  std::string candidate_rules;         ///< the candidate rules file
  std::string candidate_version;       ///< sha256 of the candidate's text
  std::vector<std::string> recorded_versions;  ///< rules versions the steps were decided by
  std::string catalog_version;         ///< the catalog the replay is priced with
  std::vector<WhatIfStep> steps;       ///< in replay order
  int changed = 0;                     ///< steps whose decision changed
  int rule_errors = 0;                 ///< steps where the candidate failed (and fell back)
  int skipped = 0;                     ///< trace lines that were not valid steps
  MicroUsd billed = 0;                 ///< Σ cost_before as recorded
  MicroUsd repriced = 0;               ///< the same calls under the replay's catalog
  MicroUsd candidate = 0;              ///< Σ cost_after
  std::map<std::string, OutputRatios::Ratio> ratios;  ///< the ratios used, per model
};

/// Compiles the candidate on a fresh sandbox (its errors name file:line),
/// replays every step of the workload and prices the outcome. A ledger is
/// read with its decision records; a ledger without any is an error that says
/// so. A trace is routed by the config's rules and by the candidate; both
/// sides are then the engine's estimates.
Result<WhatIfReport> what_if(const Config& config, const WhatIfOptions& options, const std::string& ledger_or_trace);

}  // namespace switchboard
