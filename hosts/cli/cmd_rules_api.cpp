// switchboard rules-api [--json]: the rule API page, every field a rule reads
// and returns (switchboard/rules_api.h); docs/rules-api.md is its Markdown.
#include <iostream>

#include "commands.h"
#include "switchboard/rules_api.h"

namespace switchboard::cli {

Command add_rules_api(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "rules-api", "Print every step and ctx field a rule reads and what classify may return (Markdown)");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "One JSON object instead of Markdown");
  return [json]() {
    std::cout << (*json ? rules_api_json() : rules_api_markdown());
    return std::cout.flush() ? 0 : 1;
  };
}

}  // namespace switchboard::cli
