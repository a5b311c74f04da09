// Rule test cases: `rules/*.test.toml` files run in the real sandbox, never
// calling a model.
//
//   workload = "code_fix"       # optional: defaults to the workload whose rules
//                               # file is the .lua of the same stem beside this file
//   rules = "code_fix.lua"      # optional, relative to this file
//   [[case]]
//   name = "format is cheap"
//   step = { role = "format", input_tokens = 1200, meta = { lang = "go" } }
//   ctx = { budget_left_usd = 0.5, spent_usd = 10.0 }    # optional
//   expect = { tier = "cheap", model = "...", reasoning = "low" | "default",
//              fanout = 1, max_output_tokens = 800, aggregate = "premium",
//              reason_contains = "...", error = "substring" | false }
//
// A case with no `error` key expects the rules not to fail.
#pragma once

#include <string>
#include <vector>

#include "switchboard/config.h"

namespace switchboard {

struct RuleTestFailure {
  std::string file;       // the .test.toml file
  std::string case_name;  // "" when the file itself could not be read
  std::string message;    // "file:line:column: ..." or "expected ..., got ..."
};

struct RuleTestReport {
  int passed = 0;
  int failed = 0;
  std::vector<std::string> files;  // test files that ran
  std::vector<RuleTestFailure> failures;
};

// Runs the cases in `paths` (test files, or directories searched for
// *.test.toml); with no paths, every *.test.toml beside a workload's rules.
RuleTestReport run_rule_tests(const Config& config, const std::vector<std::string>& paths);

}  // namespace switchboard
