// Token factors in the ledger (calibration.h): each answered call's own
// count beside its bill, the factors `switchboard calibrate` stores, and how
// a config takes them at start-up.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "ledger/sqlite.h"
#include "switchboard/calibration.h"
#include "switchboard/ledger.h"
#include "test_util.h"

using namespace switchboard;
using switchboard::testing::TempDir;

namespace {

CostRecord answered(const std::string& model, std::int64_t billed, std::int64_t counted) {
  CostRecord r;
  r.time = std::chrono::system_clock::now();
  r.trace_id = "t";
  r.call_id = "c";
  r.workload = "w";
  r.model = model;
  r.usage.input_tokens = billed - billed / 4;
  r.usage.cached_input_tokens = billed / 4;  // the bill is every input token, cached ones too
  r.counted_input_tokens = counted;
  return r;
}

ModelSpec model(const std::string& name, const std::string& provider, double floor = 1.10) {
  ModelSpec m;
  m.name = name;
  m.model_id = name;
  m.provider = provider;
  m.calibration_floor = floor;
  m.token_factor = m.counted_with_stand_in() ? floor : 1.0;
  return m;
}

Config two_models() {
  Config c;
  c.models["claude"] = model("claude", "anthropic");
  c.models["gpt"] = model("gpt", "openai");
  return c;
}

}  // namespace

TEST_SUITE("ledger") {

TEST_CASE("the SQLite ledger keeps each call's own count and the stored factors, in parts per million") {
  TempDir dir;
  const std::string path = (dir.path() / "ledger.db").string();
  {
    auto sink = open_sqlite_ledger({.path = path});
    REQUIRE_MESSAGE(sink.ok(), sink.status().message());
    REQUIRE((*sink)->write(answered("claude", 1200, 1000)).ok());
    REQUIRE((*sink)->flush().ok());
  }
  CHECK(*sqlite_ledger_schema_version(path) == sqlite_ledger_latest_schema());
  auto records = read_sqlite_ledger(path);
  REQUIRE(records.ok());
  REQUIRE(records->size() == 1);
  CHECK((*records)[0].counted_input_tokens == 1000);
  CHECK((*records)[0].usage.total_input() == 1200);

  auto none = read_token_factors(path);
  REQUIRE_MESSAGE(none.ok(), none.status().message());
  CHECK(none->empty());
  TokenCalibration c{.calls = 7, .p50 = 1.0312345, .p99 = 1.25, .factor = 1.25};
  REQUIRE(store_token_factors(path, {{"claude", c}}).ok());
  c.factor = 1.5;  // a later calibration replaces the row
  REQUIRE(store_token_factors(path, {{"claude", c}}).ok());
  auto stored = read_token_factors(path);
  REQUIRE(stored.ok());
  REQUIRE(stored->size() == 1);
  CHECK(stored->at("claude").calls == 7);
  CHECK(stored->at("claude").p50 == doctest::Approx(1.031235).epsilon(1e-9));  // to the millionth
  CHECK(stored->at("claude").factor == doctest::Approx(1.5));
  CHECK(store_token_factors((dir.path() / "none.db").string(), {{"claude", c}}).code() == Status::Code::kNotFound);
  CHECK(check_sqlite_ledger(path).ok());
}

TEST_CASE("the ledger's calibration uses each stand-in model's last answered, counted calls") {
  std::vector<CostRecord> records;
  for (int i = 0; i < 1200; ++i) records.push_back(answered("claude", i < 200 ? 5000 : 1000 + i % 100, 1000));
  CostRecord estimated = answered("claude", 9000, 1000);
  estimated.usage_estimated = true;  // not the provider's figure
  records.push_back(estimated);
  CostRecord failed = answered("claude", 9000, 1000);
  failed.status = CallStatus::kError;
  records.push_back(failed);
  records.push_back(answered("claude", 9000, 0));  // not counted
  records.push_back(answered("gpt", 9000, 1000));  // counted exactly: never calibrated
  const auto factors = calibrate_ledger(two_models(), records);
  REQUIRE(factors.size() == 1);
  const TokenCalibration& c = factors.at("claude");
  CHECK(c.calls == 1000);  // the oldest 200 (ratio 5) are past the last 1,000
  CHECK(c.p50 == doctest::Approx(1.049));
  CHECK(c.p99 == doctest::Approx(1.098));
  CHECK(c.factor == doctest::Approx(1.10));  // the floor is higher
}

TEST_CASE("a config takes the stored factor above its floor, and only for models counted with a stand-in") {
  Config config = two_models();
  config.models["gemini"] = model("gemini", "gemini", 1.30);
  apply_token_factors(config, {{"claude", TokenCalibration{.calls = 10, .p50 = 1.1, .p99 = 1.4, .factor = 1.4}},
                               {"gemini", TokenCalibration{.calls = 10, .p50 = 1.0, .p99 = 1.2, .factor = 1.2}},
                               {"gpt", TokenCalibration{.calls = 10, .p50 = 2.0, .p99 = 2.0, .factor = 2.0}}});
  CHECK(config.find_model("claude")->token_factor == doctest::Approx(1.4));
  CHECK(config.find_model("gemini")->token_factor == doctest::Approx(1.30));  // a floor set higher wins
  CHECK(config.find_model("gpt")->token_factor == 1.0);
}

}  // TEST_SUITE
