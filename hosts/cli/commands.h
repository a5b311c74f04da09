// The `switchboard` command's subcommands. Each registers itself on the CLI11
// app and returns the exit code when run. Hosts include public headers only.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "switchboard/config.h"
#include "switchboard/ledger.h"

namespace switchboard::cli {

using Command = std::function<int()>;

Command add_calibrate(CLI::App& app);
Command add_check(CLI::App& app);
Command add_eval(CLI::App& app);
Command add_rebill(CLI::App& app);
Command add_report(CLI::App& app);
Command add_route(CLI::App& app);
Command add_rules_api(CLI::App& app);
Command add_run(CLI::App& app);
Command add_test(CLI::App& app);
Command add_watch(CLI::App& app);
Command add_whatif(CLI::App& app);

// The `report` tables of `records`, one grouped by each of `by` ("workload",
// "role", "model", "tier"); the last ends with the status counts and the
// routed vs all-premium comparison. Shared by `report` and `run`.
Status print_report(const Config& config, const std::vector<CostRecord>& records, const std::vector<std::string>& by);

// `report --shadow`: per workload and shadow rules version, how the shadow
// rules' decisions in the ledger compare with the active ones and what they
// would have cost (an estimate; replay.h). A table, or one JSON object.
// Returns the exit code. `since`/`until` are echoed as given.
int print_shadow_report(const Config& config, const std::string& ledger, const LedgerQuery& query,
                        const std::string& since, const std::string& until, bool json);

// `report --quality`: per workload, role and tier, what the judged shadow
// calls in the ledger found (matched-or-beat rate with a Wilson interval,
// verdict counts, routed vs target cost). A table, or one JSON object.
// Returns the exit code. `since`/`until` are echoed as given.
int print_quality_report(const std::string& ledger, const LedgerQuery& query, const std::string& since,
                         const std::string& until, bool json);

}  // namespace switchboard::cli
