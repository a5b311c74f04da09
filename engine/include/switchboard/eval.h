/// @file
/// Offline evals: what a routing change costs in answers. An eval set is a
/// JSONL file, one case a line: a full request (messages, tools, output
/// format), the step fields the rules see, and the graders its answer must
/// pass. run_eval() sends every case to each target (a model, a tier, or a
/// rules file that routes each case), grades the answers and sums, per
/// target, the pass rate with its Wilson interval, the cost and the latency.
///
/// A case line (every field but `id`, `request.messages` and `graders` optional):
///
///     {"id": "inj-001",
///      "step": {"role": "summarize", "untrusted_input": true},     // parse_step_json's fields
///      "request": {
///        "messages": [{"role": "system", "content": "..."},
///                     {"role": "user", "content": "..."},
///                     {"role": "assistant", "tool_calls": [{"id": "c1", "name": "read_email",
///                                                           "arguments": {"id": 7}}]},
///                     {"role": "tool", "tool_call_id": "c1", "name": "read_email", "content": "..."}],
///        "tools": [{"name": "send_email", "description": "...", "parameters": {...}}],
///        "tool_choice": "auto" | "none" | "required" | {"name": "TOOL"},
///        "output_format": {"type": "json_schema", "name": "N", "schema": {...}} | {"type": "json_object"},
///        "max_output_tokens": 400},
///      "graders": [{"type": "must_not", "contains": ["CANARY-1"], "tools": ["send_email"]}, ...],
///      "note": "what the case tests, for its readers"}
///
/// Graders: `exact` {"text", "ignore_case"}: the answer's text, trimmed, is
/// the text; `contains` {"text", "ignore_case"}: it holds the text; `regex`
/// {"pattern"}: an ECMAScript pattern is found in it; `json_schema`
/// {"schema"}: the text parses as JSON and validates against the schema;
/// `tool_call` {"name", "arguments"}: the answer calls the tool, and (when
/// given) its arguments validate against `arguments`, a JSON Schema;
/// `must_not` {"contains", "tools"}: neither the text nor any tool call's
/// arguments hold one of the strings (case-insensitive), and no tool of
/// `tools` is called; `judge` {"model", "rubric", "reference"}: the model
/// (of the config) reads the rubric, the request's last message, the answer
/// and the reference answer (when given) and answers a JSON object
/// {"verdict": "pass" | "fail", "reason": "..."}. Unknown fields, unknown
/// grader types and a case without graders are errors naming file:line.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "switchboard/config.h"
#include "switchboard/ledger.h"
#include "switchboard/money.h"
#include "switchboard/request.h"
#include "switchboard/status.h"
#include "switchboard/step.h"

namespace switchboard {

/// One check of a case's answer (see the file comment for each kind).
struct Grader {
  /// Which check.
  enum class Kind { kExact, kContains, kRegex, kJsonSchema, kToolCall, kMustNot, kJudge };
  Kind kind = Kind::kContains;  ///< which check
  /// exact, contains: the text; regex: the pattern; json_schema: the schema, as JSON text.
  std::string text;
  bool ignore_case = false;  ///< exact, contains: compare without regard to ASCII case
  std::string tool;          ///< tool_call: the tool the answer must call
  /// tool_call: a JSON Schema the call's arguments must validate against ("" any arguments).
  std::string arguments_schema;
  std::vector<std::string> forbidden_text;   ///< must_not: strings the answer must not hold
  std::vector<std::string> forbidden_tools;  ///< must_not: tools the answer must not call
  std::string judge_model;  ///< judge: the config's model that judges
  std::string rubric;       ///< judge: what a passing answer does
  std::string reference;    ///< judge: a reference answer ("" none)
};
/// The eval file's name of `k`: "exact", "contains", "regex", "json_schema",
/// "tool_call", "must_not" or "judge".
std::string_view to_string(Grader::Kind k);

/// One case of an eval set.
struct EvalCase {
  std::string id;      ///< unique within its set
  std::string source;  ///< "file:line", for messages
  /// What the rules see: derive_step() of the request, then the case's
  /// `step` fields over it (role, counts, flags and meta as written).
  Step step;
  ModelRequest request;          ///< what the target is sent
  std::vector<Grader> graders;   ///< at least one
};

/// Parses one case line; `where` ("file:line") prefixes every error.
Result<EvalCase> parse_eval_case(std::string_view line, std::string_view where);
/// Reads an eval set: one case a line, blank lines skipped; errors name
/// file:line; ids must be unique.
Result<std::vector<EvalCase>> load_eval_set(const std::string& path);

/// What one grader made of an answer.
struct GraderVerdict {
  /// pass or fail; error when the grader could not decide (the judge's call
  /// failed or it answered no verdict): never counted as a fail.
  enum class Outcome { kPass, kFail, kError };
  Grader::Kind kind = Grader::Kind::kContains;  ///< the grader's kind
  Outcome outcome = Outcome::kPass;             ///< its verdict
  std::string reason;                           ///< why, in one line
};
/// "pass", "fail" or "error".
std::string_view to_string(GraderVerdict::Outcome o);

/// Asks a judge model: sends `request` to the config's model `model` and
/// returns the text of its answer, or why there is none.
using JudgeCall = std::function<Result<std::string>(const std::string& model, const ModelRequest& request)>;

/// Grades `answer` to `c` with `grader`. `judge` is called by judge graders
/// only (null: their verdict is an error). Never throws.
GraderVerdict grade(const Grader& grader, const EvalCase& c, const ModelResponse& answer, const JudgeCall& judge);

/// A two-sided confidence interval for a proportion, as fractions in [0, 1].
struct Interval {
  double low = 0;   ///< lower bound
  double high = 1;  ///< upper bound
};
/// The Wilson score interval of `passed` successes in `total` trials at
/// normal quantile `z` (1.96: 95%). [0, 1] when total is 0.
Interval wilson_interval(std::int64_t passed, std::int64_t total, double z = 1.96);

/// How run_eval runs.
struct EvalOptions {
  /// A model or tier of the config, or a rules file (a path ending in
  /// ".lua", resolved against the working directory) whose classify routes
  /// each case over the config's tiers. At least one. A case on a model is
  /// a call like any other: should the model fail, the rest of its tier is
  /// tried (EvalResult::model names the one that answered).
  std::vector<std::string> targets;
  int repeat = 1;    ///< runs of each case on each target (noisy models), 1 to 100
  int parallel = 4;  ///< cases in flight at once, 1 to 256
  /// A hard cap on the whole run's spend (judge calls included): every call
  /// first reserves its worst case under it (BudgetBook). A run the budget
  /// refuses while others are calling waits for one to finish and tries
  /// again; refused with none in flight, it is not run (Outcome::kSkipped).
  /// Unset: no cap.
  std::optional<MicroUsd> budget;
  /// Where every call's CostRecord and every case's DecisionRecord (kind
  /// eval) go; null: nowhere.
  std::shared_ptr<Ledger> ledger;
};

/// One case run once on one target.
struct EvalResult {
  std::string case_id;  ///< EvalCase::id
  std::string target;   ///< as given in EvalOptions::targets
  int repetition = 0;   ///< 0-based
  /// pass (every grader passed), fail (one failed), error (none failed, one
  /// could not decide: not counted in the pass rate), or not run.
  enum class Outcome { kPass, kFail, kError, kSkipped };
  Outcome outcome = Outcome::kPass;        ///< what became of the case
  std::vector<GraderVerdict> verdicts;     ///< one per grader, in order; empty when the call failed
  std::string error;                       ///< why the call failed or was not made ("" none)
  std::string tier;                        ///< the tier that answered (or was chosen)
  std::string model;                       ///< the model that answered
  MicroUsd cost = 0;                       ///< the case's calls (judge calls included)
  std::chrono::milliseconds latency{0};    ///< the answer's wall clock (judge calls excluded)
};
/// "pass", "fail", "error" or "skipped".
std::string_view to_string(EvalResult::Outcome o);

/// One target's figures.
struct EvalTargetSummary {
  std::string target;  ///< as given
  /// "model", "tier" or "rules".
  std::string kind;
  std::int64_t passed = 0;   ///< runs that passed
  std::int64_t failed = 0;   ///< runs that failed (a failed call counts as failed)
  std::int64_t errors = 0;   ///< runs no grader could decide
  std::int64_t skipped = 0;  ///< runs the budget did not admit
  Interval pass_interval;    ///< Wilson 95% of passed / (passed + failed)
  MicroUsd cost = 0;         ///< every run's calls
  std::chrono::milliseconds p50{0};  ///< latency percentiles of the answered runs (nearest rank)
  std::chrono::milliseconds p95{0};  ///< likewise
  std::vector<std::pair<std::string, std::int64_t>> tiers;  ///< runs per tier that answered, by name
  /// The pass rate: passed / (passed + failed); 0 with no graded run.
  double pass_rate() const;
};

/// What run_eval found.
struct EvalReport {
  std::vector<EvalTargetSummary> targets;  ///< in the order given
  std::vector<EvalResult> results;         ///< every run, by target, then case order, then repetition
  /// The config's premium tier when it was among the targets or was added as
  /// the baseline of a rules target; "" otherwise.
  std::string premium_target;
  MicroUsd spent = 0;           ///< the whole run, judge calls included
  bool budget_exhausted = false;  ///< some run was refused by EvalOptions::budget
};

/// Runs every case `repeat` times on every target (see EvalOptions). When a
/// rules target is given and the config's premium tier is not, the premium
/// tier is run too, as the "all-premium" baseline. Rules targets run as a
/// workload "eval:PATH" of their own, models and tiers as the workload
/// "eval"; decisions go to the ledger as kind eval, role as the case's step.
/// Fails before any call for an unknown target, a rules file that does not
/// load, or a judge model the config lacks.
Result<EvalReport> run_eval(Config config, const std::vector<EvalCase>& cases, const EvalOptions& options);

}  // namespace switchboard
