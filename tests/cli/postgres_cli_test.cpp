// The commands over a PostgreSQL ledger, as processes: `run --ledger
// postgresql://...` writes the demo trace into a server the test starts,
// and `report`, `rebill`, `whatif` and `calibrate` read it back and say
// exactly what they say of the same run written to a SQLite ledger.
#include <doctest/doctest.h>

#ifdef SWITCHBOARD_CLI

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "support/postgres_server.h"
#include "switchboard/ledger.h"
#include "test_util.h"

using namespace switchboard;
using switchboard::testing::PostgresServer;
using switchboard::testing::TempDir;
namespace fs = std::filesystem;

namespace {

const std::string kSource = SWITCHBOARD_SOURCE_DIR;

std::string offline_cli() {
  return "env -u OPENAI_API_KEY -u ANTHROPIC_API_KEY -u GEMINI_API_KEY -u LOCAL_LLM_API_KEY '" +
         std::string(SWITCHBOARD_CLI) + "'";
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The shipped config, prices and rules in `dir`, the sim answering at once.
std::string copy_setup(const TempDir& dir) {
  std::string config = read_file(kSource + "/switchboard.toml");
  for (const auto& [from, to] : {std::pair<std::string, std::string>{"base_latency_ms = 20", "base_latency_ms = 0"},
                                 {"per_output_token_us = 100", "per_output_token_us = 0"}}) {
    const size_t at = config.find(from);
    REQUIRE(at != std::string::npos);
    config.replace(at, from.size(), to);
  }
  dir.write("prices.toml", read_file(kSource + "/prices.toml"));
  for (const auto& entry : fs::directory_iterator(kSource + "/rules")) {
    dir.write("rules/" + entry.path().filename().string(), read_file(entry.path()));
  }
  // The demo trace without sessions: the same steps in any order of answers.
  dir.write("trace.jsonl", std::regex_replace(read_file(kSource + "/examples/agent-trace.jsonl"),
                                              std::regex(R"(,"session_id":"[^"]*")"), ""));
  return dir.write("switchboard.toml", config);
}

std::string cli(const std::string& args) {
  std::string out;
  const int rc = testing::run_command(offline_cli() + " " + args, out);
  INFO(args);
  INFO(out);
  REQUIRE(rc == 0);
  return out;
}

// A command's --json answer, without the field that names the ledger.
nlohmann::json json_of(const std::string& args) {
  nlohmann::json j = nlohmann::json::parse(cli(args));
  j.erase("ledger");
  return j;
}

}  // namespace

TEST_SUITE("postgres") {

TEST_CASE("cli: run writes to a postgresql:// ledger and report rebill whatif and calibrate read it as from SQLite") {
  PostgresServer server;
  TempDir dir;
  const std::string config = copy_setup(dir);
  const std::string trace = (dir.path() / "trace.jsonl").string();
  const std::string sqlite = (dir.path() / "ledger.db").string();
  const std::string pg = server.url();
  const std::string out = cli("run --no-progress --parallel 8 --workload code_fix --config '" + config +
                              "' --ledger '" + pg + "' '" + trace + "'");
  CHECK(out.find("262 answered, 0 failed") != std::string::npos);
  CHECK(out.find("calls recorded in postgresql://postgres@127.0.0.1:") != std::string::npos);
  // Nothing was left in the spool beside the config.
  CHECK(fs::file_size(dir.path() / "ledger-spool.jsonl") == 0);
  auto calls = read_ledger(pg);
  REQUIRE_MESSAGE(calls.ok(), calls.status().message());
  CHECK(calls->size() == 262);
  auto decisions = read_ledger_decisions(pg);
  REQUIRE_MESSAGE(decisions.ok(), decisions.status().message());
  CHECK(decisions->size() == 262);
  // The same records in a SQLite ledger, for the commands to compare with.
  {
    auto copy = open_sqlite_ledger(SqliteLedgerOptions{sqlite});
    REQUIRE(copy.ok());
    for (const CostRecord& r : *calls) REQUIRE((*copy)->write(r).ok());
    for (const DecisionRecord& r : *decisions) REQUIRE((*copy)->write(r).ok());
    REQUIRE((*copy)->flush().ok());
  }

  const std::string with_config = "--config '" + config + "' ";
  const nlohmann::json report_pg = json_of("report --json " + with_config + "'" + pg + "'");
  CHECK(report_pg == json_of("report --json " + with_config + "'" + sqlite + "'"));
  CHECK(report_pg["total"]["calls"] == 262);

  const std::string prices = "--prices '" + (dir.path() / "prices.toml").string() + "' ";
  const nlohmann::json rebill_pg = json_of("rebill --json " + prices + "'" + pg + "'");
  CHECK(rebill_pg == json_of("rebill --json " + prices + "'" + sqlite + "'"));
  CHECK(rebill_pg["calls"] == 262);

  const std::string candidate = dir.write("candidate.lua", read_file(dir.path() / "rules/code_fix.lua"));
  const std::string whatif = "whatif --json " + with_config + "--workload code_fix --rules '" + candidate + "' ";
  const nlohmann::json whatif_pg = json_of(whatif + "'" + pg + "'");
  const nlohmann::json whatif_sqlite = json_of(whatif + "'" + sqlite + "'");
  for (const char* key : {"from_ledger", "steps", "changed", "rule_errors", "cost_micro_usd", "models"}) {
    CHECK(whatif_pg[key] == whatif_sqlite[key]);
  }
  CHECK(whatif_pg["from_ledger"] == true);
  CHECK(whatif_pg["steps"] == 262);
  CHECK(whatif_pg["changed"] == 0);  // the same rules

  const nlohmann::json calibrate_pg = json_of("calibrate --json --dry-run " + with_config + "'" + pg + "'");
  CHECK(calibrate_pg == json_of("calibrate --json --dry-run " + with_config + "'" + sqlite + "'"));

  // rebill --write stores the catalog version in PostgreSQL.
  cli("rebill --write " + prices + "'" + pg + "'");
  auto repriced = read_ledger(pg);
  REQUIRE(repriced.ok());
  REQUIRE(repriced->size() == 262);
  for (const CostRecord& r : *repriced) {
    CHECK(r.catalog_version == (*calls)[0].catalog_version);
    CHECK(r.cost > 0);
  }
}

TEST_CASE("cli: a postgresql:// ledger whose server is unreachable is an error naming it and not a crash") {
  std::string out;
  const int rc = testing::run_command(offline_cli() + " report --config '" + kSource + "/switchboard.toml' " +
                                                "'postgresql://nobody@127.0.0.1:1/none'",
                                            out);
  CHECK(rc == 2);
  CHECK(out.find("postgresql://nobody@127.0.0.1:1/none: cannot connect") != std::string::npos);
}

}  // TEST_SUITE

#endif  // SWITCHBOARD_CLI
