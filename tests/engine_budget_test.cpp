// The engine's budget book reaching the rules, and the budget settings in the config.
#include <doctest/doctest.h>

#include "test_util.h"

using namespace switchboard;
using switchboard::testing::TempDir;

namespace {

const char* const kEcho = R"lua(
function classify(step, ctx)
  if ctx.budget_left_usd ~= nil and ctx.budget_left_usd < 1.0 then
    return { tier = "cheap", reason = "near the cap: " .. ctx.budget_left_usd }
  end
  return { tier = "premium", reason = string.format("left=%s spent=%s",
    tostring(ctx.budget_left_usd), tostring(ctx.spent_usd)) }
end
)lua";

Step plan() {
  Step s;
  s.role = "plan";
  s.input_tokens = 100;
  return s;
}

}  // namespace

TEST_CASE("the rules see the budget book: reservations and settled spend shrink budget_left_usd") {
  TempDir dir;
  auto engine = switchboard::testing::engine_with_rules(dir, kEcho, "budget_usd = 10.0\nbudget_period = \"day\"\n");
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  CHECK((*engine)->decide("w", plan())->reason == "left=10.0 spent=0.0");

  BudgetBook& book = (*engine)->budgets();
  auto held = book.reserve("workload:w", 4'000'000);
  REQUIRE(held.ok());
  CHECK((*engine)->decide("w", plan())->reason == "left=6.0 spent=0.0");
  held->settle(3'500'000);
  CHECK((*engine)->decide("w", plan())->reason == "left=6.5 spent=3.5");

  // Near the cap the rules step down a tier.
  auto big = book.reserve("workload:w", 6'000'000);
  REQUIRE(big.ok());
  const auto d = (*engine)->decide("w", plan());
  CHECK(d->tier == "cheap");
  CHECK(d->reason == "near the cap: 0.5");
  // Over the cap, a reservation is refused with a clear error.
  auto refused = book.reserve("workload:w", 600'000);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == Status::Code::kOverBudget);
  CHECK(refused.status().message().find("budget workload:w: request $0.600000 is over the cap $10.000000 for day") == 0);
}

TEST_CASE("a host's CallContext still overrides the budget book") {
  TempDir dir;
  auto engine = switchboard::testing::engine_with_rules(dir, kEcho, "budget_usd = 10.0\n");
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  CallContext ctx;
  ctx.spent = 2'000'000;
  CHECK((*engine)->decide("w", plan(), ctx)->reason == "left=8.0 spent=2.0");
}

TEST_CASE("budget_period and over_budget_tier are read and checked with their positions") {
  TempDir dir;
  dir.write("rules/w.lua", kEcho);
  dir.write("prices.toml", switchboard::testing::small_prices());
  const std::string ok_path = dir.write(
      "ok.toml", switchboard::testing::small_config("budget_usd = 5.0\nbudget_period = \"day\"\nover_budget_tier = \"cheap\"\n"));
  auto ok = load_config(ok_path);
  REQUIRE_MESSAGE(ok.ok(), ok.status().message());
  const Workload& w = *ok->find_workload("w");
  CHECK(w.budget_period == BudgetPeriod::kDay);
  CHECK(w.over_budget_tier == "cheap");

  const std::string bad_period = dir.write("bad1.toml", switchboard::testing::small_config("budget_period = \"week\"\n"));
  auto r1 = load_config(bad_period);
  REQUIRE_FALSE(r1.ok());
  CHECK(r1.status().message().find("budget_period must be \"day\" or \"month\"") != std::string::npos);
  CHECK(r1.status().message().find(bad_period + ":") == 0);

  const std::string bad_tier = dir.write("bad2.toml", switchboard::testing::small_config("over_budget_tier = \"gold\"\n"));
  auto r2 = load_config(bad_tier);
  REQUIRE_FALSE(r2.ok());
  CHECK(r2.status().message().find("over_budget_tier: unknown tier 'gold'") != std::string::npos);
}
