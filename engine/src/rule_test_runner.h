// The rule test runner's entry for one file, shared by run_rule_tests (the
// `switchboard test` command) and the reload gate.
#pragma once

#include <string>

#include "rule_set.h"
#include "switchboard/config.h"
#include "switchboard/rule_tests.h"

namespace switchboard::detail {

// Runs the cases of one .test.toml file into `report`. With `rules` (a reload
// candidate) the cases run on those compiled rules as `workload`; without,
// the file's own rules file is compiled and its workload found in `config`.
void run_rule_test_file(const Config& config, const std::string& file, RuleTestReport& report,
                        WorkloadRules* rules = nullptr, const Workload* workload = nullptr);

}  // namespace switchboard::detail
