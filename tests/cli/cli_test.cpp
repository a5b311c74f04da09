// The `switchboard` command, run as a process: check, route, test, rules-api, --help.
#include <doctest/doctest.h>

#ifdef SWITCHBOARD_CLI

#include <algorithm>
#include <fstream>
#include <iterator>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/sha256.h"
#include "test_util.h"

using namespace switchboard;
using switchboard::testing::TempDir;

namespace {

std::string sh_quote(const std::string& s) { return "'" + s + "'"; }

// Runs `switchboard ARGS`; returns the exit code, fills `out` with stdout+stderr.
int cli(const std::string& args, std::string& out) {
  return switchboard::testing::run_command(sh_quote(SWITCHBOARD_CLI) + " " + args, out);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool has_line(const std::string& text, const std::string& line) {
  for (const std::string& l : lines_of(text)) {
    if (l == line) return true;
  }
  return false;
}

// Rules for workload w: plan is premium; everything else cheap with low reasoning.
const char* const kRulesW = R"lua(function classify(step, ctx)
  if step.role == "plan" then return "premium" end
  return { tier = "cheap", reasoning = "low", reason = "cheap role " .. step.role }
end
)lua";

// Rules for workload v: everything premium.
const char* const kRulesV = R"lua(function classify(step, ctx)
  return { tier = "premium", reason = "v says premium" }
end
)lua";

// small_config() plus a second workload v; `rename_premium` replaces the
// premium model's name everywhere.
struct Project {
  TempDir dir;
  std::string config;

  explicit Project(const std::string& premium_model = "m-premium") {
    dir.write("rules/w.lua", kRulesW);
    dir.write("rules/v.lua", kRulesV);
    std::string text = switchboard::testing::small_config(
        "\n[workloads.v]\nrules = \"rules/v.lua\"\nfallback_tier = \"cheap\"\n");
    std::string prices = switchboard::testing::small_prices();
    for (std::string* t : {&text, &prices}) {
      for (size_t at = t->find("m-premium"); at != std::string::npos;
           at = t->find("m-premium", at + premium_model.size())) {
        t->replace(at, 9, premium_model);
      }
    }
    dir.write("prices.toml", prices);
    config = dir.write("switchboard.toml", text);
  }
  std::string path(const std::string& name) const { return (dir.path() / name).string(); }
};

const std::set<std::string> kRouteJsonFields = {"index",  "workload", "tier",          "model",
                                                "reasoning", "fanout", "reason",      "estimated_usd",
                                                "rules_version", "error"};

std::set<std::string> keys_of(const nlohmann::json& j) {
  std::set<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.insert(k);
  return keys;
}

}  // namespace

TEST_CASE("cli: check prints ok with the file's sha256 and exits 0") {
  TempDir dir;
  const std::string file = dir.write("good.lua", kRulesW);
  std::string out;
  CHECK(cli("check " + sh_quote(file), out) == 0);
  CHECK(out == "ok " + file + " sha256=" + detail::sha256_hex(kRulesW) + "\n");
  CHECK(std::regex_match(out, std::regex("ok .* sha256=[0-9a-f]{64}\n")));
}

TEST_CASE("cli: check of a broken rules file prints FILE:LINE: message and exits 1") {
  struct Case {
    const char* what;
    const char* source;
    const char* line_prefix;  // after FILE
  };
  const std::vector<Case> cases = {
      {"a syntax error", "function classify(step, ctx)\n  return 'cheap'\n  local x = = 1\nend\n", ":3: "},
      {"an error while the file body runs", "local t = {}\nerror('no rules today')\n", ":2: "},
  };
  for (const Case& c : cases) {
    INFO(std::string(c.what));
    TempDir dir;
    const std::string file = dir.write("broken.lua", c.source);
    std::string out;
    CHECK(cli("check " + sh_quote(file), out) == 1);
    CHECK(out.starts_with(file + c.line_prefix));
    CHECK(lines_of(out).size() == 1);
  }

  TempDir dir;
  const std::string file = dir.write("empty.lua", "local x = 1\n");
  std::string out;
  CHECK(cli("check " + sh_quote(file), out) == 1);
  CHECK(out == file + ": the rules file defines no global function 'classify(step, ctx)'\n");

  const std::string missing = dir.path().string() + "/missing.lua";
  CHECK(cli("check " + sh_quote(missing), out) == 1);
  CHECK(out == missing + ": cannot read the file\n");
}

TEST_CASE("cli: route --json prints exactly the documented fields for each step") {
  Project p;
  const std::string steps = p.dir.write("steps.jsonl",
                                        R"({"role":"format","input_tokens":1000,"expected_output_tokens":200})"
                                        "\n"
                                        "\n"
                                        R"({"role":"plan","input_tokens":1000,"expected_output_tokens":1000})"
                                        "\n");
  std::string out;
  CHECK(cli("route --json --config " + sh_quote(p.config) + " --workload w " + sh_quote(steps), out) == 0);
  const std::vector<std::string> lines = lines_of(out);
  REQUIRE(lines.size() == 2);
  const std::string version = detail::sha256_hex(kRulesW);

  const nlohmann::json format = nlohmann::json::parse(lines[0]);
  CHECK(keys_of(format) == kRouteJsonFields);
  CHECK(format["index"] == 1);
  CHECK(format["workload"] == "w");
  CHECK(format["tier"] == "cheap");
  CHECK(format["model"] == "m-cheap");
  CHECK(format["reasoning"] == "low");
  CHECK(format["fanout"] == 1);
  CHECK(format["reason"] == "cheap role format");
  CHECK(format["estimated_usd"].get<double>() == to_usd(2'000));  // 1000 × $1 + 200 × $5
  CHECK(format["rules_version"] == version);
  CHECK(format["error"].is_null());

  const nlohmann::json plan = nlohmann::json::parse(lines[1]);
  CHECK(keys_of(plan) == kRouteJsonFields);
  CHECK(plan["index"] == 3);  // the line number in STEPS.jsonl
  CHECK(plan["tier"] == "premium");
  CHECK(plan["model"] == "m-premium");
  CHECK(plan["reasoning"].is_null());
  CHECK(plan["reason"] == "");
  CHECK(plan["estimated_usd"].get<double>() == to_usd(90'000));  // 1000 × $15 + 1000 × $75
  CHECK(plan["error"].is_null());
}

TEST_CASE("cli: route --json shows a rule error and the fallback it led to") {
  Project p;
  p.dir.write("rules/w.lua", "function classify(step, ctx) return { tier = 'gold' } end\n");
  const std::string steps = p.dir.write("steps.jsonl", R"({"role":"plan","input_tokens":10})" "\n");
  std::string out;
  CHECK(cli("route --json --config " + sh_quote(p.config) + " --workload w " + sh_quote(steps), out) == 0);
  const std::vector<std::string> lines = lines_of(out);
  REQUIRE(lines.size() == 1);
  const nlohmann::json j = nlohmann::json::parse(lines[0]);
  CHECK(j["tier"] == "cheap");
  CHECK(j["error"] == "rules/w.lua: classify returned unknown tier 'gold'");
}

TEST_CASE("cli: route reports a malformed STEPS line with its number, skips it and routes the rest") {
  Project p;
  const std::string steps = p.dir.write("steps.jsonl",
                                        R"({"role":"format","input_tokens":100})" "\n"
                                        R"({"role":"format","input_tokens":)" "\n"
                                        R"({"role":"format","tokens":5})" "\n"
                                        R"({"role":"plan","input_tokens":100})" "\n");
  std::string out;
  CHECK(cli("route --json --workload w --config " + sh_quote(p.config) + " " + sh_quote(steps), out) == 1);
  std::vector<int> routed;
  std::vector<std::string> errors;
  for (const std::string& line : lines_of(out)) {
    if (line.starts_with("{")) {
      routed.push_back(nlohmann::json::parse(line)["index"].get<int>());
    } else {
      errors.push_back(line);
    }
  }
  CHECK(routed == std::vector<int>{1, 4});
  CHECK(errors == std::vector<std::string>{
                      steps + ":2: not valid JSON; skipped",
                      steps + ":3: unknown step field 'tokens' (extra fields go under \"meta\"); skipped"});
}

TEST_CASE("cli: route --rules decides with another rules file") {
  Project p;
  const std::string alt = p.dir.write("alt.lua", R"lua(function classify(step, ctx)
  return { tier = "premium", reasoning = "high", reason = "alt" }
end
)lua");
  const std::string steps = p.dir.write("steps.jsonl", R"({"role":"format","input_tokens":100})" "\n");
  std::string out;
  CHECK(cli("route --json --workload w --config " + sh_quote(p.config) + " --rules " + sh_quote(alt) + " " + sh_quote(steps),
            out) == 0);
  const std::vector<std::string> lines = lines_of(out);
  REQUIRE(lines.size() == 1);
  const nlohmann::json j = nlohmann::json::parse(lines[0]);
  CHECK(j["tier"] == "premium");
  CHECK(j["reasoning"] == "high");
  CHECK(j["reason"] == "alt");
  CHECK(j["rules_version"] == detail::sha256_hex(
                                  "function classify(step, ctx)\n"
                                  "  return { tier = \"premium\", reasoning = \"high\", reason = \"alt\" }\n"
                                  "end\n"));
}

TEST_CASE("cli: route --workload selects whose rules decide") {
  Project p;
  const std::string steps = p.dir.write("steps.jsonl", R"({"role":"format","input_tokens":100})" "\n");
  std::string out;
  CHECK(cli("route --json --config " + sh_quote(p.config) + " --workload v " + sh_quote(steps), out) == 0);
  REQUIRE(lines_of(out).size() == 1);
  nlohmann::json j = nlohmann::json::parse(lines_of(out)[0]);
  CHECK(j["workload"] == "v");
  CHECK(j["tier"] == "premium");
  CHECK(j["reason"] == "v says premium");
  CHECK(j["rules_version"] == detail::sha256_hex(kRulesV));

  // "default" is the workload when none is named; this config has none
  CHECK(cli("route --json --config " + sh_quote(p.config) + " " + sh_quote(steps), out) == 2);
  CHECK(out == p.config + ": unknown workload 'default'\n");
  CHECK(cli("route --json --config " + sh_quote(p.config) + " --workload nope " + sh_quote(steps), out) == 2);
  CHECK(out == p.config + ": unknown workload 'nope'\n");
}

TEST_CASE("cli: route's table ends with the routed cost, the all-premium cost and the saving") {
  Project p;
  const std::string steps = p.dir.write("steps.jsonl",
                                        R"({"role":"format","input_tokens":1000,"expected_output_tokens":1000})"
                                        "\n"
                                        R"({"role":"plan","input_tokens":1000,"expected_output_tokens":1000})"
                                        "\n");
  std::string out;
  CHECK(cli("route --config " + sh_quote(p.config) + " --workload w " + sh_quote(steps), out) == 0);
  // format on cheap: 1000 × $1 + 1000 × $5 = $0.006; plan on premium: $0.015 + $0.075 = $0.09
  // all on premium: 2 × $0.09 = $0.18; saving $0.084 = 46.7%
  CHECK(has_line(out, "2 steps routed for workload 'w' (rules " + detail::sha256_hex(kRulesW).substr(0, 12) + ")"));
  CHECK(has_line(out, "  cheap          1 steps     $0.006000"));
  CHECK(has_line(out, "  premium        1 steps     $0.090000"));
  CHECK(has_line(out, "  routed by the rules          $0.096000"));
  CHECK(has_line(out, "  all on 'premium' (m-premium) $0.180000"));
  CHECK(has_line(out, "  saving                       $0.084000  (46.7%)"));
  CHECK(has_line(out, "Estimates at list prices; no model was called."));
  CHECK(out.find("cheap role format") != std::string::npos);
}

TEST_CASE("cli: route's summary keeps the amounts apart with a long premium model name") {
  Project p("m-premium-with-a-rather-long-model-name");
  const std::string steps = p.dir.write("steps.jsonl",
                                        R"({"role":"plan","input_tokens":1000,"expected_output_tokens":1000})"
                                        "\n");
  std::string out;
  CHECK(cli("route --config " + sh_quote(p.config) + " --workload w " + sh_quote(steps), out) == 0);
  CHECK(has_line(out, "  routed by the rules          $0.090000"));
  CHECK(has_line(out, "  all on 'premium' (m-premium-with-a-rather-long-model-name) $0.090000"));
  CHECK(has_line(out, "  saving                       $0.000000  (0.0%)"));
}

TEST_CASE("cli: route's summary counts rule errors and skipped lines") {
  Project p;
  p.dir.write("rules/w.lua", "function classify(step, ctx) return 42 end\n");
  const std::string steps = p.dir.write("steps.jsonl",
                                        R"({"role":"plan","input_tokens":10})" "\n" "oops\n");
  std::string out;
  CHECK(cli("route --config " + sh_quote(p.config) + " " + sh_quote(steps) + " --workload w", out) == 1);
  CHECK(out.find("1 steps routed for workload 'w' (rules ") != std::string::npos);
  CHECK(out.find("), 1 fell back after a rule error, 1 malformed lines skipped") != std::string::npos);
}

TEST_CASE("cli: test prints N passed, M failed and exits 1 when a case fails") {
  Project p;
  const std::string file = p.dir.write("rules/w.test.toml",
                                       "workload = \"w\"\n"
                                       "[[case]]\n"
                                       "name = \"format is cheap\"\n"
                                       "step = { role = \"format\" }\n"
                                       "expect = { tier = \"cheap\", reasoning = \"low\" }\n"
                                       "[[case]]\n"
                                       "name = \"plan is premium\"\n"
                                       "step = { role = \"plan\" }\n"
                                       "expect = { tier = \"premium\" }\n");
  std::string out;
  CHECK(cli("test --config " + sh_quote(p.config), out) == 0);
  CHECK(out == "1 test files\n2 passed, 0 failed\n");

  p.dir.write("rules/w.test.toml",
              "workload = \"w\"\n"
              "[[case]]\n"
              "name = \"format is cheap\"\n"
              "step = { role = \"format\" }\n"
              "expect = { tier = \"cheap\" }\n"
              "[[case]]\n"
              "name = \"plan is cheap\"\n"
              "step = { role = \"plan\" }\n"
              "expect = { tier = \"cheap\" }\n");
  CHECK(cli("test --config " + sh_quote(p.config) + " " + sh_quote(file), out) == 1);
  CHECK(out == "FAIL plan is cheap\n     " + file + ":6:1: tier: expected \"cheap\", got \"premium\"\n"
               "1 test files\n1 passed, 1 failed\n");

  p.dir.write("rules/w.test.toml", "workload = \"w\"\n[[case]]\nname = \n");
  CHECK(cli("test --config " + sh_quote(p.config) + " " + sh_quote(file), out) == 1);
  CHECK(out.starts_with("FAIL " + file + ":3:"));
  CHECK(has_line(out, "0 passed, 1 failed"));
}

TEST_CASE("cli: test with no cases to run exits 1") {
  Project p;
  const std::string empty_dir = p.path("nothing-here");
  std::filesystem::create_directories(empty_dir);
  std::string out;
  CHECK(cli("test --config " + sh_quote(p.config) + " " + sh_quote(empty_dir), out) == 1);
  CHECK(out == "0 test files\n0 passed, 0 failed\n");
}

TEST_CASE("cli: a broken config is reported with its location and exit code 2") {
  TempDir dir;
  const std::string config = dir.write("switchboard.toml", "[models.m]\nprovider = 5\n");
  const std::string steps = dir.write("steps.jsonl", "{\"role\":\"x\"}\n");
  std::string out;
  CHECK(cli("route --config " + sh_quote(config) + " " + sh_quote(steps), out) == 2);
  CHECK(out == config + ":2:12: model 'm': 'provider' must be a string\n");
  CHECK(cli("test --config " + sh_quote(config), out) == 2);
  CHECK(out == config + ":2:12: model 'm': 'provider' must be a string\n");
}

TEST_CASE("cli: --help on every command exits 0") {
  for (const char* args : {"--help", "check --help", "route --help", "test --help", "-h"}) {
    INFO(std::string(args));
    std::string out;
    CHECK(cli(args, out) == 0);
    CHECK(out.find("Usage") != std::string::npos);
  }
  std::string out;
  CHECK(cli("route --help", out) == 0);
  CHECK(out.find("--workload") != std::string::npos);
  CHECK(out.find("--rules") != std::string::npos);
  CHECK(out.find("--json") != std::string::npos);
  CHECK(out.find("--explain") != std::string::npos);
  CHECK(cli("test --help", out) == 0);
  for (const char* flag : {"--coverage", "--min-coverage", "--bench", "--json"}) {
    CHECK_MESSAGE(out.find(flag) != std::string::npos, flag);
  }
}

TEST_SUITE("rule_tools") {

// w.lua's lines with code: 1 and 4 run in the file body, 2 and 3 are
// classify's. v.lua (no test file): 1 and 3 in the body, 2 and 3 classify's.
constexpr const char* kPlanOnlyCases =
    "workload = \"w\"\n"
    "[[case]]\n"
    "name = \"plan is premium\"\n"
    "step = { role = \"plan\" }\n"
    "expect = { tier = \"premium\" }\n";

TEST_CASE("cli: test --coverage prints each rules file's share of lines run and the lines missed") {
  Project p;
  p.dir.write("rules/w.test.toml", kPlanOnlyCases);
  std::string out;
  CHECK(cli("test --coverage --config " + sh_quote(p.config), out) == 0);
  CHECK(has_line(out, "1 passed, 0 failed"));
  CHECK(has_line(out, "  rules/v.lua   66.6%  (2/3 lines)  no test cases"));
  CHECK(has_line(out, "  rules/w.lua   75.0%  (3/4 lines)"));
  CHECK(has_line(out, "    missed 3: return { tier = \"cheap\", reasoning = \"low\", reason = \"cheap role \" ..."));

  // --min-coverage fails the run under it, naming each file; it implies --coverage.
  CHECK(cli("test --min-coverage 70 --config " + sh_quote(p.config), out) == 1);
  CHECK(has_line(out, "  rules/w.lua   75.0%  (3/4 lines)"));
  CHECK(has_line(out, "UNDER MINIMUM rules/v.lua: 66.6% of its lines ran, under --min-coverage 70%"));
  CHECK(out.find("UNDER MINIMUM rules/w.lua") == std::string::npos);
  CHECK(cli("test --min-coverage 66 --config " + sh_quote(p.config), out) == 0);
  CHECK(cli("test --min-coverage 101 --config " + sh_quote(p.config), out) != 0);  // not a percentage
}

TEST_CASE("cli: test --bench prints the cost per call and fails over a rule_cost budget") {
  Project p;
  p.dir.write("rules/w.test.toml", kPlanOnlyCases);
  std::string out;
  CHECK(cli("test --bench --config " + sh_quote(p.config), out) == 0);
  CHECK(std::regex_search(out, std::regex("\n  rules/w\\.lua +[0-9]+ instructions +[0-9]+ bytes +[0-9]+ ns   \\(1 cases\\)\n")));

  std::ifstream in(p.config);
  const std::string config = std::string(std::istreambuf_iterator<char>(in), {}) + "\n[rule_cost]\nmax_instructions = 1\n";
  p.dir.write("switchboard.toml", config);
  const size_t line = static_cast<size_t>(std::count(config.begin(), config.end(), '\n'));
  CHECK(cli("test --bench --config " + sh_quote(p.config), out) == 1);
  CHECK(has_line(out, "1 passed, 0 failed"));
  CHECK(std::regex_search(out, std::regex("\nOVER BUDGET rules/w\\.lua: [0-9]+ instructions per call, over the budget of 1 "
                                          "\\(max_instructions at " + std::regex_replace(p.config, std::regex("[.^$|()\\[\\]{}*+?\\\\]"), "\\$&") +
                                          ":" + std::to_string(line) + ":20\\)\n")));
  // Without --bench the budget is not checked.
  CHECK(cli("test --config " + sh_quote(p.config), out) == 0);
}

TEST_CASE("cli: test --json prints one object with the cases and the coverage and the costs") {
  Project p;
  p.dir.write("rules/w.test.toml", kPlanOnlyCases);
  std::string out;
  CHECK(cli("test --json --coverage --bench --config " + sh_quote(p.config), out) == 0);
  REQUIRE(lines_of(out).size() == 1);
  const nlohmann::json j = nlohmann::json::parse(out);
  CHECK(keys_of(j) == std::set<std::string>{"files", "passed", "failed", "failures", "coverage", "min_coverage",
                                            "under_min_coverage", "costs"});
  CHECK(j["passed"] == 1);
  CHECK(j["failed"] == 0);
  REQUIRE(j["coverage"].size() == 2);
  const nlohmann::json& w = j["coverage"][1];
  CHECK(w["rules"] == "rules/w.lua");
  CHECK(w["executable"] == 4);
  CHECK(w["executed"] == 3);
  CHECK(w["percent"].get<double>() == doctest::Approx(75.0));
  REQUIRE(w["missed"].size() == 1);
  CHECK(w["missed"][0]["first"] == 3);
  CHECK(w["missed"][0]["last"] == 3);
  REQUIRE(j["costs"].size() == 1);
  CHECK(j["costs"][0]["rules"] == "rules/w.lua");
  CHECK(j["costs"][0]["calls"] == 1);
  CHECK(j["costs"][0]["instructions"].get<double>() > 0);
  CHECK(j["costs"][0]["budget"]["max_instructions"].is_null());
  CHECK(j["costs"][0]["over_budget"].empty());
}

TEST_CASE("cli: route --explain shows each step's rule lines and reason and --json adds an explain field") {
  Project p;
  const std::string steps = p.dir.write("steps.jsonl",
                                        R"({"role":"format","input_tokens":100})" "\n"
                                        R"({"role":"plan","input_tokens":100})" "\n");
  std::string out;
  CHECK(cli("route --explain --config " + sh_quote(p.config) + " --workload w " + sh_quote(steps), out) == 0);
  const std::vector<std::string> lines = lines_of(out);
  const auto format = std::find_if(lines.begin(), lines.end(),
                                   [](const std::string& l) { return l.starts_with("    1  format"); });
  REQUIRE(format != lines.end());
  REQUIRE(lines.end() - format > 7);
  CHECK(format[1] == "           2    if step.role == \"plan\" then return \"premium\" end");
  CHECK(format[2] == "           3    return { tier = \"cheap\", reasoning = \"low\", reason = \"cheap role \" .. step.role }");
  CHECK(format[3] == "              reason: cheap role format");
  CHECK(format[4].starts_with("    2  plan"));
  CHECK(format[5] == "           2    if step.role == \"plan\" then return \"premium\" end");
  CHECK(format[6] == "              reason: (none given)");
  CHECK(has_line(out, "Estimates at list prices; no model was called."));

  CHECK(cli("route --explain --json --config " + sh_quote(p.config) + " --workload w " + sh_quote(steps), out) == 0);
  REQUIRE(lines_of(out).size() == 2);
  const nlohmann::json j = nlohmann::json::parse(lines_of(out)[0]);
  std::set<std::string> fields = kRouteJsonFields;
  fields.insert("explain");
  CHECK(keys_of(j) == fields);
  CHECK(j["explain"]["reason"] == "cheap role format");
  CHECK(j["explain"]["truncated"] == false);
  REQUIRE(j["explain"]["lines"].size() == 2);
  CHECK(j["explain"]["lines"][0]["line"] == 2);
  CHECK(j["explain"]["lines"][1]["line"] == 3);
  CHECK(j["explain"]["lines"][1]["text"] ==
        "  return { tier = \"cheap\", reasoning = \"low\", reason = \"cheap role \" .. step.role }");
  // Without --explain the fields stay as documented.
  CHECK(cli("route --json --config " + sh_quote(p.config) + " --workload w " + sh_quote(steps), out) == 0);
  CHECK(keys_of(nlohmann::json::parse(lines_of(out)[0])) == kRouteJsonFields);
}

}  // TEST_SUITE("rule_tools")

TEST_CASE("cli: rules-api prints the rule API page, in Markdown or as JSON, and --help lists it") {
  std::string out;
  CHECK(cli("rules-api", out) == 0);
  CHECK(out == rules_api_markdown());
  CHECK(cli("rules-api --json", out) == 0);
  CHECK(out == rules_api_json());
  const auto page = nlohmann::json::parse(out);
  CHECK(page["sections"][0]["fields"][0]["path"] == "step.role");
  CHECK(cli("--help", out) == 0);
  CHECK(out.find("rules-api") != std::string::npos);
  CHECK(cli("rules-api --help", out) == 0);
  CHECK(out.find("--json") != std::string::npos);
}

TEST_CASE("cli: no command or an unknown command is a usage error") {
  std::string out;
  CHECK(cli("", out) != 0);
  CHECK(cli("frobnicate", out) != 0);
}

#endif  // SWITCHBOARD_CLI
