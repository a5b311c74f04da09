// switchboard check FILE.lua: compile and load a rules file in the sandbox.
#include <iostream>

#include "commands.h"
#include "switchboard/switchboard.h"

namespace switchboard::cli {

Command add_check(CLI::App& app) {
  auto* cmd = app.add_subcommand("check", "Compile and load a rules file in the sandbox");
  auto file = std::make_shared<std::string>();
  auto config_path = std::make_shared<std::string>();
  cmd->add_option("FILE", *file, "The rules file (Lua 5.4 text defining classify)")->required();
  cmd->add_option("--config", *config_path, "Take the sandbox limits from this config");
  return [file, config_path]() {
    SandboxLimits limits;
    if (!config_path->empty()) {
      auto config = load_config(*config_path);
      if (!config.ok()) {
        std::cerr << config.status().message() << "\n";
        return 2;
      }
      limits = config->sandbox;
    }
    auto version = check_rules_file(*file, limits);
    if (!version.ok()) {
      std::cout << version.status().message() << "\n";
      return 1;
    }
    std::cout << "ok " << *file << " sha256=" << *version << "\n";
    return 0;
  };
}

}  // namespace switchboard::cli
