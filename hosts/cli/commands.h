// The `switchboard` command's subcommands. Each registers itself on the CLI11
// app and returns the exit code when run. Hosts include public headers only.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace switchboard::cli {

using Command = std::function<int()>;

Command add_check(CLI::App& app);
Command add_rebill(CLI::App& app);
Command add_report(CLI::App& app);
Command add_route(CLI::App& app);
Command add_test(CLI::App& app);
Command add_watch(CLI::App& app);

}  // namespace switchboard::cli
