// `switchboard calibrate`: token factors from a ledger, printed and stored;
// `switchboard report` then shows the estimates against the bills.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "switchboard/calibration.h"
#include "test_util.h"

#ifdef SWITCHBOARD_CLI

using namespace switchboard;
using switchboard::testing::TempDir;

namespace {

// 100 answered calls of the shipped config's claude-haiku-4-5 (Anthropic:
// counted with a stand-in), billed 1.00 to 1.99 times the engine's count
// of 1,000, and one of gpt-5-mini (counted exactly).
std::string write_ledger(const TempDir& dir) {
  const std::string path = (dir.path() / "ledger.db").string();
  auto sink = open_sqlite_ledger({.path = path});
  REQUIRE_MESSAGE(sink.ok(), sink.status().message());
  for (int i = 0; i < 101; ++i) {
    CostRecord r;
    r.time = std::chrono::system_clock::now();
    r.trace_id = "t" + std::to_string(i);
    r.call_id = "c" + std::to_string(i);
    r.workload = "default";
    r.tier = "cheap";
    r.model = i < 100 ? "claude-haiku-4-5" : "gpt-5-mini";
    r.provider = i < 100 ? "anthropic" : "openai";
    r.rules_version = std::string(64, 'a');
    r.catalog_version = "test-1";
    r.usage.input_tokens = 1000 + i * 10;
    r.usage.output_tokens = 10;
    r.counted_input_tokens = 1000;
    REQUIRE((*sink)->write(r).ok());
  }
  REQUIRE((*sink)->flush().ok());
  return path;
}

}  // namespace

TEST_CASE("calibrate prints each stand-in model's factor, stores it, and report shows the estimates against the bills") {
  TempDir dir;
  const std::string ledger = write_ledger(dir);
  const std::string config = std::string(SWITCHBOARD_SOURCE_DIR) + "/switchboard.toml";
  std::string out;
  REQUIRE_MESSAGE(switchboard::testing::run_command(std::string(SWITCHBOARD_CLI) + " calibrate " + ledger +
                                                        " --config " + config + " --dry-run --json", out) == 0, out);
  auto j = nlohmann::json::parse(out);
  CHECK(j["stored"] == false);
  REQUIRE(j["models"].size() == 1);  // gpt-5-mini is counted exactly
  CHECK(j["models"]["claude-haiku-4-5"]["calls"] == 100);
  CHECK(j["models"]["claude-haiku-4-5"]["p50"].get<double>() == doctest::Approx(1.49));
  CHECK(j["models"]["claude-haiku-4-5"]["p99"].get<double>() == doctest::Approx(1.98));
  CHECK(j["models"]["claude-haiku-4-5"]["floor"].get<double>() == doctest::Approx(1.10));
  CHECK(j["models"]["claude-haiku-4-5"]["factor"].get<double>() == doctest::Approx(1.98));
  auto nothing = read_token_factors(ledger);
  REQUIRE(nothing.ok());
  CHECK(nothing->empty());

  REQUIRE_MESSAGE(switchboard::testing::run_command(std::string(SWITCHBOARD_CLI) + " calibrate " + ledger +
                                                        " --config " + config, out) == 0, out);
  CHECK(out.find("claude-haiku-4-5") != std::string::npos);
  CHECK(out.find("1.9800") != std::string::npos);
  CHECK(out.find("stored in " + ledger) != std::string::npos);
  auto stored = read_token_factors(ledger);
  REQUIRE(stored.ok());
  CHECK(stored->at("claude-haiku-4-5").factor == doctest::Approx(1.98));

  // The report, with the stored factor: 1,980 estimated per call against
  // bills of 1,000 to 1,990, so one call in 100 (the 1,990) is under.
  REQUIRE_MESSAGE(switchboard::testing::run_command(std::string(SWITCHBOARD_CLI) + " report " + ledger +
                                                        " --config " + config + " --json", out) == 0, out);
  j = nlohmann::json::parse(out);
  REQUIRE(j["token_estimates"].size() == 2);
  const auto& claude = j["token_estimates"][0];
  CHECK(claude["model"] == "claude-haiku-4-5");
  CHECK(claude["calls"] == 100);
  CHECK(claude["estimated_input_tokens"] == 198'000);
  CHECK(claude["billed_input_tokens"] == 100 * 1000 + 10 * (99 * 100 / 2));
  CHECK(claude["under"] == 1);
  CHECK(j["token_estimates"][1]["model"] == "gpt-5-mini");
  CHECK(j["token_estimates"][1]["factor"].get<double>() == 1.0);
  REQUIRE_MESSAGE(switchboard::testing::run_command(std::string(SWITCHBOARD_CLI) + " report " + ledger +
                                                        " --config " + config, out) == 0, out);
  CHECK(out.find("input tokens: the engine's estimate against the bill, per model") != std::string::npos);
}

#endif
