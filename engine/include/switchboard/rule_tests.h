/// @file
/// Rule test cases: `rules/*.test.toml` files run in the real sandbox, never
/// calling a model.
///
/// ```toml
///   workload = "code_fix"       # optional: defaults to the workload whose rules
///                               # file is the .lua of the same stem beside this file
///   rules = "code_fix.lua"      # optional, relative to this file
///   [[case]]
///   name = "format is cheap"
///   step = { role = "format", input_tokens = 1200, meta = { lang = "go" } }
///   ctx = { budget_left_usd = 0.5, spent_usd = 10.0 }    # optional
///   # optional: ctx.session as the rules see it (sessions.h); `id` defaults to
///   # the step's session_id, else "test-session"; cached_tokens per model
///   # (models left out are cold: 0). Without it, a step with a session_id
///   # (step = { ..., session_id = "s-1" }) sees a new session: turn 0, no
///   # last_model, every cache cold; a step without one sees ctx.session = nil.
///   ctx = { session = { last_model = "claude-sonnet-4-5", turn = 3,
///                       cached_tokens = { "claude-sonnet-4-5" = 40000 } } }
///   expect = { tier = "cheap", model = "...", reasoning = "low" | "default",
///              fanout = 1, max_output_tokens = 800, aggregate = "premium",
///              reason_contains = "...", error = "substring" | false }
///   [rule_cost]                 # optional: overrides fields of the config's [rule_cost]
///   max_instructions = 2000
/// ```
///
/// A case with no `error` key expects the rules not to fail.

#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "switchboard/config.h"

namespace switchboard {

/// What run_rule_tests measures besides the cases' expectations.
struct RuleTestOptions {
  /// Record which lines of each rules file ran (RuleTestReport::coverage).
  bool coverage = false;
  /// Measure each test file's cost per classify() call and check it against
  /// [rule_cost] (RuleTestReport::costs).
  bool bench = false;
  /// The timing pass of `bench`: per test file, `bench_rounds` rounds, each
  /// calling the cases in turn for at least `bench_round_time` and
  /// `bench_round_calls` calls; the median round's mean counts.
  int bench_rounds = 5;
  std::chrono::milliseconds bench_round_time{40};  ///< the least duration of one round
  int bench_round_calls = 200;                     ///< the fewest calls of one round
};

/// Consecutive executable lines of a rules file that nothing ran.
struct LineRange {
  int first = 0;     ///< the range's first line (1-based)
  int last = 0;      ///< its last line, included
  std::string text;  ///< the source of line `first`, without surrounding blanks
};

/// Which lines of one rules file the test cases ran.
struct RuleCoverage {
  std::string rules;                    ///< the rules file as messages name it ("rules/code_fix.lua")
  std::vector<std::string> test_files;  ///< the test files whose cases ran on it; empty: none
  /// Lines that hold VM instructions: in the file body and in every function,
  /// called or not (per function, what lua_getinfo's 'L' reports).
  int executable = 0;
  int executed = 0;                     ///< of those, lines the file body or a case ran
  /// The executable lines that never ran, as ranges. A range holds no line
  /// that ran; it may span lines without code (comments, blank lines, `end`).
  std::vector<LineRange> missed;

  double percent() const;               ///< 100 × executed / executable; 100 without executable lines
};

/// What one classify() call of a rules file costs, over one test file's cases
/// whose rules did not fail (a case expecting an error is left out: a killed
/// call costs whatever its budget was).
struct RuleCost {
  std::string rules;        ///< the rules file as messages name it
  std::string test_file;    ///< the test file whose cases were measured
  int calls = 0;            ///< cases measured
  double instructions = 0;  ///< mean VM instructions per call, each call counted exactly
  double bytes = 0;         ///< mean bytes the rules allocated per call (new blocks and growth;
                            ///< not the step and ctx tables the sandbox builds)
  double ns = 0;            ///< mean wall-clock ns per decision, without instrumentation:
                            ///< the median of the rounds
  RuleCostBudget budget;    ///< what applied: the test file's [rule_cost] over the config's
  /// One line per exceeded budget: "rules/x.lua: 412 instructions per call,
  /// over the budget of 400 (max_instructions at switchboard.toml:21:20)".
  std::vector<std::string> over_budget;
};

/// One failed case, or a file that could not be run.
struct RuleTestFailure {
  std::string file;       ///< the .test.toml file
  std::string case_name;  ///< "" when the file itself could not be read
  std::string message;    ///< "file:line:column: ..." or "expected ..., got ..."
};

/// What run_rule_tests() found.
struct RuleTestReport {
  int passed = 0;                  ///< cases that passed
  int failed = 0;                  ///< entries of `failures`
  std::vector<std::string> files;  ///< test files that ran
  std::vector<RuleTestFailure> failures;  ///< every failure, in the order found
  std::vector<RuleCoverage> coverage;  ///< with options.coverage: per rules file, by name
  std::vector<RuleCost> costs;         ///< with options.bench: per test file with a case that did not fail
};

/// Runs the cases in `paths` (test files, or directories searched for
/// *.test.toml); with no paths, every *.test.toml beside a workload's rules.
/// With options.coverage and no paths, every workload's rules file is in the
/// coverage, tested or not. A rules file that does not compile is a failure.
RuleTestReport run_rule_tests(const Config& config, const std::vector<std::string>& paths,
                              const RuleTestOptions& options = {});

}  // namespace switchboard
