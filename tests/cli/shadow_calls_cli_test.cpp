// `switchboard run` with judged shadow calls on the demo trace (the shipped
// config's commented shadow_calls line, switched on), and `report --quality`
// reading the verdicts back.
#include <doctest/doctest.h>

#ifdef SWITCHBOARD_CLI

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "test_util.h"

using namespace switchboard;
using switchboard::testing::TempDir;

namespace {

std::string offline_cli() {
  return "env -u OPENAI_API_KEY -u ANTHROPIC_API_KEY -u GEMINI_API_KEY -u LOCAL_LLM_API_KEY '" +
         std::string(SWITCHBOARD_CLI) + "'";
}

const std::string kSource = SWITCHBOARD_SOURCE_DIR;

}  // namespace

TEST_CASE("cli: run with shadow calls judges a sampled share after the steps, and report --quality sums the verdicts") {
  TempDir dir;
  namespace fs = std::filesystem;
  fs::copy(kSource + "/rules", dir.path() / "rules", fs::copy_options::recursive);
  fs::copy(kSource + "/prices.toml", dir.path() / "prices.toml");
  std::ifstream in(kSource + "/switchboard.toml");
  std::stringstream text;
  text << in.rdbuf();
  std::string config = text.str();
  const std::string commented = "# shadow_calls = { sample = 0.1, ";
  const size_t at = config.find(commented);
  REQUIRE(at != std::string::npos);
  config.erase(at, 2);  // switched on
  const std::string config_path = dir.write("switchboard.toml", config);
  const std::string ledger = (dir.path() / "ledger.db").string();

  std::string out;
  const int rc = switchboard::testing::run_command(offline_cli() + " run --no-progress --parallel 8 --config '" +
                                                       config_path + "' --ledger '" + ledger + "' '" + kSource +
                                                       "/examples/agent-trace.jsonl'",
                                                   out);
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(out.find("262 answered, 0 failed; 262 calls recorded") != std::string::npos);  // the live ones
  std::smatch m;
  REQUIRE(std::regex_search(out, m, std::regex("shadow calls to premium, judged by claude-sonnet-4-5 \\(sample 0.1\\): "
                                               "([0-9]+) of ([0-9]+) eligible steps drawn \\(([0-9]+) on the target "
                                               "itself, not drawn\\); ([0-9]+) judged: 0 win, ([0-9]+) tie, 0 loss; "
                                               "0 error, ([0-9]+) skipped by the budget, 0 dropped")));
  const int sampled = std::stoi(m[1].str());
  const int eligible = std::stoi(m[2].str());
  const int judged = std::stoi(m[4].str());
  CHECK(eligible + std::stoi(m[3].str()) == 262);
  CHECK(judged == std::stoi(m[5].str()));  // the sim judge always names A: every verdict is a tie
  CHECK(judged + std::stoi(m[6].str()) == sampled);
  CHECK(sampled > 0);

  // The live workload's calls are the steps' own; the shadow calls have theirs.
  auto records = read_sqlite_ledger(ledger);
  REQUIRE(records.ok());
  int live = 0;
  MicroUsd shadow_spend = 0;
  for (const CostRecord& r : *records) {
    if (r.workload == "default") ++live;
    if (r.workload == "shadow:default") shadow_spend += r.cost;
  }
  CHECK(live == 262);
  CHECK(shadow_spend > 0);
  CHECK(shadow_spend <= 5'000'000);

  std::string report;
  REQUIRE(switchboard::testing::run_command(offline_cli() + " report --quality --json '" + ledger + "'", report) == 0);
  const nlohmann::json j = nlohmann::json::parse(report);
  CHECK(j["total"]["judged"] == judged);
  CHECK(j["total"]["ties"] == judged);
  CHECK(j["total"]["losses"] == 0);
  CHECK(j["total"]["errors"] == 0);
  CHECK(j["total"]["matched_or_beat"] == (judged > 0 ? 1.0 : 0.0));
  CHECK(j["total"]["target_tier"] == "premium");
  CHECK(j["groups"].size() >= 1);
  for (const auto& g : j["groups"]) {
    CHECK(g["workload"] == "default");
    CHECK(g["tier"] != "premium");
  }
  std::string table;
  REQUIRE(switchboard::testing::run_command(offline_cli() + " report --quality '" + ledger + "'", table) == 0);
  CHECK(std::regex_search(table, std::regex("\ntotal +premium +[0-9]+ +100\\.0%")));
}

#endif  // SWITCHBOARD_CLI
