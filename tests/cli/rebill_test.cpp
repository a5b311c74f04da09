// `switchboard rebill`: re-pricing a SQLite ledger from its tokens.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "test_util.h"

#ifdef SWITCHBOARD_CLI

using namespace switchboard;
using switchboard::testing::TempDir;

namespace {

CostRecord call(const std::string& workload, const std::string& model, Usage usage, MicroUsd cost) {
  CostRecord r;
  r.time = std::chrono::system_clock::now();
  r.trace_id = "t";
  r.call_id = "c";
  r.workload = workload;
  r.role = "plan";
  r.tier = "cheap";
  r.model = model;
  r.provider = "sim";
  r.rules_version = std::string(64, 'a');
  r.catalog_version = "test-1";
  r.usage = usage;
  r.cost = cost;
  return r;
}

// A ledger of three calls priced with small_prices() (catalog "test-1").
std::string write_ledger(const TempDir& dir) {
  const std::string path = (dir.path() / "ledger.db").string();
  auto sink = open_sqlite_ledger({.path = path});
  REQUIRE_MESSAGE(sink.ok(), sink.status().message());
  Usage a{.input_tokens = 1'000'000, .output_tokens = 100'000};       // m-cheap: $1 + $0.50
  Usage b{.input_tokens = 200'000, .cached_input_tokens = 800'000};   // m-premium: $3 + $1.20
  Usage c{.input_tokens = 10'000, .output_tokens = 2'000};            // m-cheap: $0.01 + $0.01
  REQUIRE((*sink)->write(call("w", "m-cheap", a, 1'500'000)).ok());
  REQUIRE((*sink)->write(call("v", "m-premium", b, 4'200'000)).ok());
  REQUIRE((*sink)->write(call("w", "m-cheap", c, 20'000)).ok());
  REQUIRE((*sink)->flush().ok());
  return path;
}

// m-cheap doubles its input price; m-premium's cache reads get cheaper.
const char* kNewPrices = R"toml(version = "test-2"
[models.m-cheap]
input = 2.0
output = 5.0
[models.m-premium]
input = 15.0
cached_input = 0.5
output = 75.0
)toml";

}  // namespace

TEST_CASE("rebill re-prices every call from its tokens and leaves the ledger alone without --write") {
  TempDir dir;
  const std::string ledger = write_ledger(dir);
  const std::string prices = dir.write("new.toml", kNewPrices);
  std::string out;
  REQUIRE_MESSAGE(switchboard::testing::run_command(std::string(SWITCHBOARD_CLI) + " rebill " + ledger +
                                                        " --prices " + prices + " --json", out) == 0, out);
  const auto j = nlohmann::json::parse(out);
  CHECK(j["calls"] == 3);
  CHECK(j["catalog_version"] == "test-2");
  CHECK(j["old_micro_usd"] == 1'500'000 + 4'200'000 + 20'000);
  // m-cheap: 1M × $2 + 100k × $5 = $2.50; 10k × $2 + 2k × $5 = $0.03. m-premium: $3 + 800k × $0.50 = $3.40.
  CHECK(j["by_model"]["m-cheap"]["new_micro_usd"] == 2'530'000);
  CHECK(j["by_model"]["m-premium"]["new_micro_usd"] == 3'400'000);
  CHECK(j["by_workload"]["w"]["old_micro_usd"] == 1'520'000);
  CHECK(j["by_workload"]["v"]["new_micro_usd"] == 3'400'000);
  CHECK(j["new_micro_usd"] == 5'930'000);
  CHECK(j["written"] == false);

  auto records = read_sqlite_ledger(ledger);
  REQUIRE(records.ok());
  for (const CostRecord& r : *records) CHECK(r.catalog_version == "test-1");
  CHECK((*records)[0].cost == 1'500'000);
}

TEST_CASE("rebill --write stores the new costs and the catalog version") {
  TempDir dir;
  const std::string ledger = write_ledger(dir);
  const std::string prices = dir.write("new.toml", kNewPrices);
  std::string out;
  REQUIRE_MESSAGE(switchboard::testing::run_command(std::string(SWITCHBOARD_CLI) + " rebill " + ledger +
                                                        " --prices " + prices + " --write", out) == 0, out);
  CHECK(out.find("re-priced 3 calls from catalog test-1 to test-2 (written to the ledger)") != std::string::npos);
  CHECK(out.find("$5.930000") != std::string::npos);
  auto records = read_sqlite_ledger(ledger);
  REQUIRE(records.ok());
  REQUIRE(records->size() == 3);
  CHECK((*records)[0].cost == 2'500'000);
  CHECK((*records)[1].cost == 3'400'000);
  CHECK((*records)[2].cost == 30'000);
  for (const CostRecord& r : *records) CHECK(r.catalog_version == "test-2");
}

TEST_CASE("rebill refuses a catalog that does not price a model in the ledger, never $0") {
  TempDir dir;
  const std::string ledger = write_ledger(dir);
  const std::string prices = dir.write("partial.toml", "version = \"test-3\"\n[models.m-cheap]\ninput = 1.0\noutput = 5.0\n");
  std::string out;
  CHECK(switchboard::testing::run_command(std::string(SWITCHBOARD_CLI) + " rebill " + ledger + " --prices " +
                                              prices + " --write", out) == 1);
  CHECK(out.find("no price for model 'm-premium' (1 calls)") != std::string::npos);
  auto records = read_sqlite_ledger(ledger);
  REQUIRE(records.ok());
  for (const CostRecord& r : *records) CHECK(r.catalog_version == "test-1");  // nothing written
}

#endif  // SWITCHBOARD_CLI
