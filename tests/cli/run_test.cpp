// `switchboard run`, the main job, as a process: the demo trace through the
// shipped rules on the sim provider fills a ledger that report and rebill read.
#include <doctest/doctest.h>

#ifdef SWITCHBOARD_CLI

#include <filesystem>
#include <regex>
#include <string>

#include "test_util.h"

using namespace switchboard;
using switchboard::testing::TempDir;

namespace {

// No key variable is set, so every model is served by the sim provider.
std::string offline_cli() {
  return "env -u OPENAI_API_KEY -u ANTHROPIC_API_KEY -u GEMINI_API_KEY -u LOCAL_LLM_API_KEY '" +
         std::string(SWITCHBOARD_CLI) + "'";
}

const std::string kSource = SWITCHBOARD_SOURCE_DIR;

}  // namespace

TEST_CASE("cli: run routes and calls every demo step and records each call") {
  TempDir dir;
  const std::string ledger = (dir.path() / "ledger.db").string();
  std::string out;
  const int rc = switchboard::testing::run_command(
      offline_cli() + " run --no-progress --parallel 8 --config '" + kSource + "/switchboard.toml' --ledger '" +
          ledger + "' '" + kSource + "/examples/agent-trace.jsonl'",
      out);
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(out.find("262 steps in ") != std::string::npos);
  CHECK(out.find("262 answered, 0 failed") != std::string::npos);
  CHECK(out.find("ANTHROPIC_API_KEY is not set: claude-haiku-4-5, claude-opus-4-1, claude-sonnet-4-5 served by the offline sim provider") != std::string::npos);
  // The closing report: by role, then by model with the premium comparison.
  CHECK(std::regex_search(out, std::regex("\nrole +calls +input")));
  CHECK(std::regex_search(out, std::regex("\nmodel +calls +input")));
  std::smatch saving;
  REQUIRE(std::regex_search(out, saving, std::regex("saving +\\$([0-9]+\\.[0-9]+) +\\(([0-9.]+)%\\)")));
  CHECK(std::stod(saving[2].str()) > 20.0);

  auto records = read_sqlite_ledger(ledger);
  REQUIRE(records.ok());
  CHECK(records->size() == 262);  // the sim never fails: one call per step
  MicroUsd total = 0;
  for (const CostRecord& r : *records) {
    CHECK(r.status == CallStatus::kOk);
    CHECK(r.provider == "sim");
    CHECK(r.cost > 0);
    CHECK(r.workload == "default");
    CHECK(r.rules_version.size() == 64);
    total += r.cost;
  }
  CHECK(out.find(format_usd(total)) != std::string::npos);

  // report and rebill read what run wrote.
  std::string report;
  REQUIRE(switchboard::testing::run_command(offline_cli() + " report --config '" + kSource + "/switchboard.toml' '" +
                                                ledger + "'",
                                            report) == 0);
  CHECK(std::regex_search(report, std::regex("\ntotal +262 ")));
  CHECK(report.find(format_usd(total)) != std::string::npos);
  std::string rebill;
  CHECK(switchboard::testing::run_command(offline_cli() + " rebill --json --prices '" + kSource + "/prices.toml' '" +
                                              ledger + "'",
                                          rebill) == 0);
  CHECK(rebill.find("\"calls\":262") != std::string::npos);
  CHECK(rebill.find("\"new_micro_usd\":" + std::to_string(total)) != std::string::npos);  // same catalog, same bill

  // A second run appends to the same ledger.
  REQUIRE(switchboard::testing::run_command(
              offline_cli() + " run --no-progress --config '" + kSource + "/switchboard.toml' --ledger '" + ledger +
                  "' '" + kSource + "/examples/agent-trace.jsonl'",
              out) == 0);
  CHECK(read_sqlite_ledger(ledger)->size() == 524);
}

TEST_CASE("cli: run names the trace line that does not parse and calls nothing") {
  TempDir dir;
  const std::string trace = dir.write("trace.jsonl", "{\"role\":\"plan\",\"input_tokens\":10}\n{\"role\": 5}\n");
  const std::string ledger = (dir.path() / "ledger.db").string();
  std::string out;
  CHECK(switchboard::testing::run_command(offline_cli() + " run --config '" + kSource + "/switchboard.toml' --ledger '" +
                                              ledger + "' '" + trace + "'",
                                          out) == 2);
  CHECK(out.find(trace + ":2: ") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(ledger));
}

TEST_CASE("cli: run with rules that do not load names the line and leaves no ledger behind") {
  TempDir dir;
  const std::string config = switchboard::testing::write_small_config(dir);
  dir.write("rules/w.lua", "function classify(step, ctx)\n  return {\nend\n");
  const std::string trace = dir.write("trace.jsonl", "{\"role\":\"plan\",\"input_tokens\":10}\n");
  const std::string ledger = (dir.path() / "ledger.db").string();
  std::string out;
  CHECK(switchboard::testing::run_command(offline_cli() + " run --workload w --config '" + config + "' --ledger '" +
                                              ledger + "' '" + trace + "'",
                                          out) == 2);
  CHECK(out.find("rules/w.lua:3:") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(ledger));
  CHECK_FALSE(std::filesystem::exists(ledger + "-wal"));
}

#endif  // SWITCHBOARD_CLI
