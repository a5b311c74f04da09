// `switchboard whatif` as a process: the demo trace is run through the
// shipped code_fix rules into a ledger, a modified code_fix.lua is replayed
// over that ledger, and a direct re-run with the modified rules confirms the
// changed decisions exactly and the dollar delta within the estimate's margin.
#include <doctest/doctest.h>

#ifdef SWITCHBOARD_CLI

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "switchboard/ledger.h"
#include "test_util.h"

using namespace switchboard;
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

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  INFO("'" << from << "' not found");
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

// The shipped config, prices and rules copied into `dir`, with the sim
// answering at once; `code_fix_rules` replaces rules/code_fix.lua when given.
std::string copy_setup(const TempDir& dir, const std::string& code_fix_rules = "") {
  std::string config = read_file(kSource + "/switchboard.toml");
  config = replaced(config, "base_latency_ms = 20", "base_latency_ms = 0");
  config = replaced(config, "per_output_token_us = 100", "per_output_token_us = 0");
  dir.write("prices.toml", read_file(kSource + "/prices.toml"));
  for (const auto& entry : fs::directory_iterator(kSource + "/rules")) {
    dir.write("rules/" + entry.path().filename().string(), read_file(entry.path()));
  }
  if (!code_fix_rules.empty()) dir.write("rules/code_fix.lua", code_fix_rules);
  return dir.write("switchboard.toml", config);
}

// extract steps no longer count as mechanical: they go to the default (balanced).
std::string modified_code_fix() {
  return replaced(read_file(kSource + "/rules/code_fix.lua"),
                  "tool_call_parse = true, extract = true, summarize = true,",
                  "tool_call_parse = true, summarize = true,");
}

// The demo trace without its sessions: every step alone, as the trace says it
// (a session's steps re-send their conversation, whose size follows the
// answers, so a re-run under other rules would not send the same steps).
std::string sessionless_trace(const fs::path& dir) {
  const std::string path = (dir / "trace.jsonl").string();
  std::ofstream(path) << std::regex_replace(read_file(kSource + "/examples/agent-trace.jsonl"),
                                            std::regex(R"(,"session_id":"[^"]*")"), "");
  return path;
}

void run_demo(const std::string& config, const std::string& ledger) {
  std::string out;
  const int rc = testing::run_command(offline_cli() + " run --no-progress --parallel 8 --workload code_fix --config '" +
                                          config + "' --ledger '" + ledger + "' '" +
                                          sessionless_trace(fs::path(ledger).parent_path()) + "'",
                                      out);
  INFO(out);
  REQUIRE(rc == 0);
}

MicroUsd billed(const std::string& ledger) {
  auto calls = read_sqlite_ledger(ledger);
  REQUIRE_MESSAGE(calls.ok(), calls.status().message());
  MicroUsd total = 0;
  for (const CostRecord& c : *calls) total += c.cost;
  return total;
}

// Each step's recorded decision, by the step's own fields (unique in the demo trace).
std::map<std::string, Decision> decisions_by_step(const std::string& ledger) {
  auto decisions = read_sqlite_decisions(ledger);
  REQUIRE_MESSAGE(decisions.ok(), decisions.status().message());
  std::map<std::string, Decision> out;
  for (const DecisionRecord& d : *decisions) {
    const bool fresh = out.emplace(step_to_json(d.step), d.decision).second;
    REQUIRE(fresh);
  }
  return out;
}

nlohmann::json whatif_json(const std::string& args) {
  std::string out;
  const int rc = testing::run_command(offline_cli() + " whatif --json " + args, out);
  INFO(out);
  REQUIRE(rc == 0);
  return nlohmann::json::parse(out);
}

}  // namespace

TEST_SUITE("whatif") {

TEST_CASE("cli: whatif on a demo ledger predicts what a re-run with the new rules does") {
  TempDir before_dir, after_dir;
  const std::string before_config = copy_setup(before_dir);
  const std::string after_config = copy_setup(after_dir, modified_code_fix());
  const std::string before_ledger = (before_dir.path() / "before.db").string();
  const std::string after_ledger = (after_dir.path() / "after.db").string();
  run_demo(before_config, before_ledger);

  const std::string candidate = (after_dir.path() / "rules/code_fix.lua").string();
  const std::string page = (before_dir.path() / "whatif.html").string();
  const nlohmann::json j = whatif_json("--config '" + before_config + "' --workload code_fix --rules '" + candidate +
                                       "' --html '" + page + "' '" + before_ledger + "'");
  CHECK(j["from_ledger"] == true);
  CHECK(j["steps"] == 262);
  CHECK(j["rule_errors"] == 0);
  CHECK(j["cost_micro_usd"]["billed"] == billed(before_ledger));
  CHECK(j["cost_micro_usd"]["repriced"] == billed(before_ledger));  // same catalog

  // The direct re-run with the candidate as the live rules.
  run_demo(after_config, after_ledger);
  const auto before = decisions_by_step(before_ledger);
  const auto after = decisions_by_step(after_ledger);
  REQUIRE(before.size() == 262);
  REQUIRE(after.size() == 262);
  int changed = 0;
  std::map<std::pair<std::string, std::string>, int> moves;
  for (const auto& [step, d] : before) {
    const Decision& now = after.at(step);
    if (!same_choice(d, now)) changed++;
    moves[{d.model, now.model}]++;
  }
  CHECK(changed == 57);  // the demo's extract steps
  CHECK(j["changed"] == changed);
  for (const auto& m : j["models"]) {
    CHECK(moves[{m["from"].get<std::string>(), m["to"].get<std::string>()}] == m["steps"].get<int>());
  }
  REQUIRE(j["changed_by_role"].size() == 1);
  CHECK(j["changed_by_role"][0]["role"] == "extract");
  CHECK(j["changed_by_role"][0]["steps"] == 57);
  CHECK(j["changes"].size() == 57);

  // The dollars: the estimate lands within 5% of the re-run's real delta.
  const MicroUsd actual = billed(after_ledger) - billed(before_ledger);
  const MicroUsd estimated = j["cost_micro_usd"]["delta"].get<MicroUsd>();
  INFO("actual delta " << format_usd(actual) << ", estimated " << format_usd(estimated));
  CHECK(actual > 0);
  CHECK(std::abs(static_cast<double>(estimated - actual)) <= 0.05 * static_cast<double>(actual));
  CHECK(j["cost_is_estimate"] == true);

  const std::string html = read_file(page);
  CHECK(html.find("<p id=\"changed\"><b>57</b> of 262") != std::string::npos);
  CHECK(html.find("<svg id=\"role-bars\"") != std::string::npos);

  // The text form says what changed, by how much, and that it is an estimate.
  std::string text;
  REQUIRE(testing::run_command(offline_cli() + " whatif --config '" + before_config +
                                   "' --workload code_fix --rules '" + candidate + "' '" + before_ledger + "'",
                               text) == 0);
  CHECK(text.find("Decisions: 57 of 262 change (21.8%)") != std::string::npos);
  CHECK(text.find("57  cheap/claude-haiku-4-5 (low) -> balanced/claude-sonnet-4-5") != std::string::npos);
  CHECK(text.find("candidate rules (estimate)") != std::string::npos);
  CHECK(text.find("No model was called.") != std::string::npos);

  // --prices: the recorded calls re-priced, and the candidate priced, with another catalog.
  std::string catalog = replaced(read_file(kSource + "/prices.toml"), "version = \"2026-11-22\"", "version = \"dearer\"");
  catalog = replaced(catalog, "[models.claude-haiku-4-5]\n", "[models.claude-haiku-4-5]\ninput = 2.00\n");
  catalog = replaced(catalog, "\ninput = 1.00\n", "\n");
  const std::string dearer = before_dir.write("dearer.toml", catalog);
  const nlohmann::json p = whatif_json("--config '" + before_config + "' --workload code_fix --rules '" + candidate +
                                       "' --prices '" + dearer + "' '" + before_ledger + "'");
  CHECK(p["catalog_version"] == "dearer");
  CHECK(p["cost_micro_usd"]["billed"] == j["cost_micro_usd"]["billed"]);
  CHECK(p["cost_micro_usd"]["repriced"].get<MicroUsd>() > j["cost_micro_usd"]["repriced"].get<MicroUsd>());
  // Fewer haiku calls under the candidate: dearer haiku input makes the move cheaper.
  CHECK(p["cost_micro_usd"]["delta"].get<MicroUsd>() < j["cost_micro_usd"]["delta"].get<MicroUsd>());

  // Replaying the trace itself (no usage recorded) finds the same changes.
  const nlohmann::json t = whatif_json("--config '" + before_config + "' --workload code_fix --rules '" + candidate +
                                       "' '" + kSource + "/examples/agent-trace.jsonl'");
  CHECK(t["from_ledger"] == false);
  CHECK(t["changed"] == 57);
}

TEST_CASE("cli: whatif counts the candidate's rule errors and refuses a candidate that does not load") {
  TempDir dir;
  const std::string config = copy_setup(dir);
  const std::string ledger = (dir.path() / "ledger.db").string();
  run_demo(config, ledger);

  // Fails on review steps only: those fall back, and the error names its line.
  const std::string failing = dir.write(
      "next/code_fix.lua", replaced(read_file(kSource + "/rules/code_fix.lua"), "  if role == \"review\" then\n",
                                    "  if role == \"review\" then\n    error(\"review is not ready\")\n"));
  const nlohmann::json j =
      whatif_json("--config '" + config + "' --workload code_fix --rules '" + failing + "' '" + ledger + "'");
  int reviews = 0;  // steps the shipped rules decided on the review line
  for (const auto& [step, d] : decisions_by_step(ledger)) reviews += d.reason == "review of a patch" ? 1 : 0;
  CHECK(reviews > 0);
  CHECK(j["rule_errors"] == reviews);
  REQUIRE(j["errors"].size() == 1);
  const std::string message = j["errors"][0]["message"];
  CHECK(message.find("code_fix.lua:") != std::string::npos);
  CHECK(message.find("review is not ready") != std::string::npos);

  const std::string broken = dir.write("next/broken.lua", "function classify(step, ctx)\n  return {\nend\n");
  std::string out;
  CHECK(testing::run_command(offline_cli() + " whatif --config '" + config + "' --workload code_fix --rules '" +
                                 broken + "' '" + ledger + "'",
                             out) == 2);
  CHECK(out.find("broken.lua:3:") != std::string::npos);

  // A workload the ledger never saw has nothing to replay, and says so.
  CHECK(testing::run_command(offline_cli() + " whatif --config '" + config + "' --workload web_research --rules '" +
                                 failing + "' '" + ledger + "'",
                             out) == 2);
  CHECK(out.find("no recorded decisions for workload 'web_research'") != std::string::npos);
}

}  // TEST_SUITE("whatif")

#endif  // SWITCHBOARD_CLI
