// The rule test runner's entry for one file, shared by run_rule_tests (the
// `switchboard test` command) and the reload gate.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "rules/rule_set.h"
#include "switchboard/config.h"
#include "switchboard/rule_tests.h"

namespace switchboard::detail {

// One run_rule_tests call: its options, and the lines each rules file ran,
// gathered across test files (several may test one rules file).
struct RuleTestRun {
  RuleTestOptions options;
  struct Lines {
    std::string rules;                    // as messages name it
    std::string source;
    std::vector<std::string> test_files;  // whose cases ran on it
    std::vector<int> executable;          // ascending
    std::vector<int> executed;            // ascending, distinct
  };
  std::map<std::string, Lines> lines;     // by the rules file's resolved path
  std::set<std::string> tested;           // rules files a test file named, run or not
};

// Runs the cases of one .test.toml file into `report`. With `rules` (a reload
// candidate) the cases run on those compiled rules as `workload`; without,
// the file's own rules file is compiled and its workload found in `config`.
// With `run` (and no `rules`), also what run->options ask for: the lines go
// to run->lines, the cost to report.costs.
void run_rule_test_file(const Config& config, const std::string& file, RuleTestReport& report,
                        WorkloadRules* rules = nullptr, const Workload* workload = nullptr,
                        RuleTestRun* run = nullptr);

}  // namespace switchboard::detail
