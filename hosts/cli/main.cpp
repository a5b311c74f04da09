// switchboard: route agent steps to models through Lua rules, from the shell.
#include <cstdio>
#include <map>

#include "commands.h"
#include "switchboard/version.h"

int main(int argc, char** argv) {
  CLI::App app{"switchboard: routes each agent step to a model through sandboxed Lua rules"};
  app.set_version_flag("--version", std::string("switchboard ") + switchboard::version());
  app.require_subcommand(1);
  std::map<CLI::App*, switchboard::cli::Command> commands;
  auto add = [&](switchboard::cli::Command (*make)(CLI::App&)) {
    const size_t before = app.get_subcommands({}).size();
    switchboard::cli::Command run = make(app);
    commands[app.get_subcommands({}).at(before)] = std::move(run);
  };
  add(switchboard::cli::add_calibrate);
  add(switchboard::cli::add_check);
  add(switchboard::cli::add_eval);
  add(switchboard::cli::add_rebill);
  add(switchboard::cli::add_report);
  add(switchboard::cli::add_route);
  add(switchboard::cli::add_rules_api);
  add(switchboard::cli::add_run);
  add(switchboard::cli::add_test);
  add(switchboard::cli::add_watch);
  add(switchboard::cli::add_whatif);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (auto& [sub, run] : commands) {
    if (sub->parsed()) return run();
  }
  return 1;
}
