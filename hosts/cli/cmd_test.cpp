// switchboard test: run the rule test cases (*.test.toml) in the sandbox; with
// --coverage, which lines of each rules file they ran; with --bench, what a
// call costs, checked against [rule_cost].
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "switchboard/switchboard.h"

namespace switchboard::cli {

namespace {

struct TestOptions {
  std::string config_path = "switchboard.toml";
  std::vector<std::string> paths;
  bool coverage = false;
  std::optional<double> min_coverage;
  bool bench = false;
  bool json = false;
};

std::string cut(const std::string& s, size_t width) {
  return s.size() <= width ? s : s.substr(0, width - 3) + "...";
}

// One decimal, rounded down: a file just under 100% never prints as 100.0%.
double shown_percent(double p) { return std::floor(p * 10.0) / 10.0; }

std::string percent_text(double p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", shown_percent(p));
  return buf;
}

nlohmann::json limit_json(const std::optional<CostLimit>& limit) {
  return limit ? nlohmann::json(limit->value) : nlohmann::json(nullptr);
}

nlohmann::json report_json(const RuleTestReport& r, const TestOptions& o,
                           const std::vector<std::string>& under_minimum) {
  nlohmann::json j;
  j["files"] = r.files;
  j["passed"] = r.passed;
  j["failed"] = r.failed;
  j["failures"] = nlohmann::json::array();
  for (const RuleTestFailure& f : r.failures) {
    j["failures"].push_back({{"file", f.file}, {"case", f.case_name}, {"message", f.message}});
  }
  if (o.coverage) {
    j["coverage"] = nlohmann::json::array();
    for (const RuleCoverage& c : r.coverage) {
      nlohmann::json missed = nlohmann::json::array();
      for (const LineRange& m : c.missed) missed.push_back({{"first", m.first}, {"last", m.last}, {"text", m.text}});
      j["coverage"].push_back({{"rules", c.rules},
                               {"test_files", c.test_files},
                               {"executable", c.executable},
                               {"executed", c.executed},
                               {"percent", c.percent()},
                               {"missed", missed}});
    }
    j["min_coverage"] = o.min_coverage ? nlohmann::json(*o.min_coverage) : nlohmann::json(nullptr);
    j["under_min_coverage"] = under_minimum;
  }
  if (o.bench) {
    j["costs"] = nlohmann::json::array();
    for (const RuleCost& c : r.costs) {
      j["costs"].push_back({{"rules", c.rules},
                            {"test_file", c.test_file},
                            {"calls", c.calls},
                            {"instructions", c.instructions},
                            {"bytes", c.bytes},
                            {"ns", c.ns},
                            {"budget",
                             {{"max_instructions", limit_json(c.budget.max_instructions)},
                              {"max_bytes", limit_json(c.budget.max_bytes)},
                              {"max_ns", limit_json(c.budget.max_ns)}}},
                            {"over_budget", c.over_budget}});
    }
  }
  return j;
}

void print_coverage(const RuleTestReport& r) {
  size_t width = 0;
  for (const RuleCoverage& c : r.coverage) width = std::max(width, c.rules.size());
  std::printf("\ncoverage: lines run by the file body and the cases, of the lines holding code\n");
  for (const RuleCoverage& c : r.coverage) {
    std::printf("  %-*s %7s  (%d/%d lines)%s\n", static_cast<int>(width), c.rules.c_str(),
                percent_text(c.percent()).c_str(), c.executed, c.executable,
                c.test_files.empty() ? "  no test cases" : "");
    for (const LineRange& m : c.missed) {
      const std::string lines =
          m.first == m.last ? std::to_string(m.first) : std::to_string(m.first) + "-" + std::to_string(m.last);
      std::printf("    missed %s: %s\n", lines.c_str(), cut(m.text, 70).c_str());
    }
  }
}

void print_costs(const RuleTestReport& r) {
  size_t width = 0;
  for (const RuleCost& c : r.costs) width = std::max(width, c.rules.size());
  std::printf("\ncost per call: mean over each test file's cases (ns: median of the rounds)\n");
  for (const RuleCost& c : r.costs) {
    std::printf("  %-*s %9.0f instructions %9.0f bytes %9.0f ns   (%d cases)\n", static_cast<int>(width),
                c.rules.c_str(), c.instructions, c.bytes, c.ns, c.calls);
  }
}

int run_test(const TestOptions& o) {
  auto config = load_config(o.config_path);
  if (!config.ok()) {
    std::cerr << config.status().message() << "\n";
    return 2;
  }
  RuleTestOptions options;
  options.coverage = o.coverage;
  options.bench = o.bench;
  const RuleTestReport report = run_rule_tests(*config, o.paths, options);

  std::vector<std::string> under_minimum;
  if (o.min_coverage) {
    for (const RuleCoverage& c : report.coverage) {
      if (c.percent() < *o.min_coverage) under_minimum.push_back(c.rules);
    }
  }
  bool over_budget = false;
  for (const RuleCost& c : report.costs) over_budget = over_budget || !c.over_budget.empty();
  const bool ok = report.failed == 0 && report.passed > 0 && under_minimum.empty() && !over_budget;

  if (o.json) {
    std::cout << report_json(report, o, under_minimum).dump() << "\n";
    return ok ? 0 : 1;
  }
  for (const RuleTestFailure& f : report.failures) {
    if (f.case_name.empty()) {
      std::cout << "FAIL " << f.message << "\n";
    } else {
      std::cout << "FAIL " << f.case_name << "\n     " << f.message << "\n";
    }
  }
  std::cout << report.files.size() << " test files\n";
  std::cout << report.passed << " passed, " << report.failed << " failed\n";
  std::cout.flush();
  if (o.coverage) print_coverage(report);
  if (o.bench) print_costs(report);
  for (const RuleCoverage& c : report.coverage) {
    if (std::find(under_minimum.begin(), under_minimum.end(), c.rules) == under_minimum.end()) continue;
    std::printf("UNDER MINIMUM %s: %s of its lines ran, under --min-coverage %g%%\n", c.rules.c_str(),
                percent_text(c.percent()).c_str(), *o.min_coverage);
  }
  for (const RuleCost& c : report.costs) {
    for (const std::string& line : c.over_budget) std::printf("OVER BUDGET %s\n", line.c_str());
  }
  return ok ? 0 : 1;
}

}  // namespace

Command add_test(CLI::App& app) {
  auto* cmd = app.add_subcommand("test", "Run rule test cases (rules/*.test.toml); no model is called");
  auto o = std::make_shared<TestOptions>();
  cmd->add_option("--config", o->config_path, "Configuration file")->capture_default_str();
  cmd->add_option("PATH", o->paths, "Test files or directories (default: beside each workload's rules)");
  cmd->add_flag("--coverage", o->coverage, "Report the lines of each rules file the cases ran, and those they missed");
  cmd->add_option("--min-coverage", o->min_coverage,
                  "Fail when a rules file's coverage is under this percentage (implies --coverage)")
      ->check(CLI::Range(0.0, 100.0));
  cmd->add_flag("--bench", o->bench,
                "Report each rules file's cost per call (instructions, bytes, ns) and fail over [rule_cost]");
  cmd->add_flag("--json", o->json, "One JSON object with the results");
  return [o]() {
    if (o->min_coverage) o->coverage = true;
    return run_test(*o);
  };
}

}  // namespace switchboard::cli
