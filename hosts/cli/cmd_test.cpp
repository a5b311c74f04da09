// switchboard test: run the rule test cases (*.test.toml) in the sandbox.
#include <iostream>

#include "commands.h"
#include "switchboard/switchboard.h"

namespace switchboard::cli {

Command add_test(CLI::App& app) {
  auto* cmd = app.add_subcommand("test", "Run rule test cases (rules/*.test.toml); no model is called");
  auto config_path = std::make_shared<std::string>("switchboard.toml");
  auto paths = std::make_shared<std::vector<std::string>>();
  cmd->add_option("--config", *config_path, "Configuration file")->capture_default_str();
  cmd->add_option("PATH", *paths, "Test files or directories (default: beside each workload's rules)");
  return [config_path, paths]() {
    auto config = load_config(*config_path);
    if (!config.ok()) {
      std::cerr << config.status().message() << "\n";
      return 2;
    }
    RuleTestReport report = run_rule_tests(*config, *paths);
    for (const RuleTestFailure& f : report.failures) {
      if (f.case_name.empty()) {
        std::cout << "FAIL " << f.message << "\n";
      } else {
        std::cout << "FAIL " << f.case_name << "\n     " << f.message << "\n";
      }
    }
    std::cout << report.files.size() << " test files\n";
    std::cout << report.passed << " passed, " << report.failed << " failed\n";
    return report.failed == 0 && report.passed > 0 ? 0 : 1;
  };
}

}  // namespace switchboard::cli
