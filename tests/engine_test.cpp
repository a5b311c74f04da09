#include <doctest/doctest.h>

#include "test_util.h"

using namespace switchboard;
using switchboard::testing::TempDir;

TEST_CASE("a tier name picks the tier's first model") {
  TempDir dir;
  auto engine = switchboard::testing::engine_with_rules(dir, R"lua(
    function classify(step, ctx) return "premium" end
  )lua");
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  Step step;
  step.role = "plan";
  step.input_tokens = 1000;
  auto d = (*engine)->decide("w", step);
  REQUIRE(d.ok());
  CHECK(d->tier == "premium");
  CHECK(d->model == "m-premium");
  CHECK_FALSE(d->error.has_value());
  // 1000 × $15/M + 1000 (model default) × $75/M = $0.015 + $0.075
  CHECK(d->estimated_cost == 90'000);
  CHECK(d->rules_version.size() == 64);
}
