// The engine's budget book reaching the rules, and the budget settings in the config.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

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

namespace {

// Always premium, so the over-budget tier is what moves the call.
const char* const kPremium = R"lua(function classify(step, ctx) return { tier = "premium", reason = "deep" } end
)lua";

}  // namespace

TEST_CASE("admit reserves the worst case: counted input and the output cap at list price") {
  TempDir dir;
  auto engine = switchboard::testing::engine_with_rules(dir, kPremium, "budget_usd = 1.0\n");
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  const Step step = plan();
  const Decision d = *(*engine)->decide("w", step);
  Admission a = (*engine)->admit(d, step, "trace-1");
  REQUIRE(a.status.ok());
  // 100 input × $15/M + 1000 (m-premium's default output) × $75/M = $0.0015 + $0.075
  CHECK(a.worst_case == 76'500);
  CHECK(a.reservation.amount() == 76'500);
  CHECK_FALSE(a.rerouted);
  CHECK((*engine)->budgets().snapshot("workload:w").reserved == 76'500);
  a.reservation.settle(20'000);
  CHECK((*engine)->budgets().snapshot("workload:w").spent == 20'000);
  CHECK((*engine)->budgets().snapshot("workload:w").reserved == 0);
}

TEST_CASE("over the cap a call is refused with a ledger record, or moved to the over-budget tier") {
  TempDir dir;
  SUBCASE("refused when not even a minimal answer fits") {
    auto engine = switchboard::testing::engine_with_rules(dir, kPremium, "budget_usd = 0.002\n");
    REQUIRE_MESSAGE(engine.ok(), engine.status().message());
    const Decision d = *(*engine)->decide("w", plan());
    const Admission a = (*engine)->admit(d, plan(), "trace-2");
    CHECK(a.status.code() == Status::Code::kOverBudget);
    CHECK_FALSE(a.reservation);
    REQUIRE(a.refusal.has_value());
    CHECK(a.refusal->status == CallStatus::kRefusedByBudget);
    CHECK(a.refusal->trace_id == "trace-2");
    CHECK(a.refusal->workload == "w");
    CHECK(a.refusal->role == "plan");
    CHECK(a.refusal->model == "m-premium");
    CHECK(a.refusal->cost == 0);
    CHECK(a.refusal->catalog_version == "test-1");
    CHECK(a.refusal->rules_version == d.rules_version);
    // 100 × $15 + 16 (min_answer_tokens) × $75 per Mtok
    CHECK(a.refusal->error.find("budget workload:w: request $0.002700 is over the cap $0.002000") == 0);
    CHECK(a.worst_case == 2'700);
  }
  SUBCASE("the output cap lowered to what fits") {
    auto engine = switchboard::testing::engine_with_rules(dir, kPremium, "budget_usd = 0.05\n");
    REQUIRE_MESSAGE(engine.ok(), engine.status().message());
    const Decision d = *(*engine)->decide("w", plan());
    const Admission a = (*engine)->admit(d, plan());
    REQUIRE(a.status.ok());
    CHECK_FALSE(a.rerouted);
    CHECK(a.output_cap_lowered);
    // 100 × $15 + 646 × $75 per Mtok = $0.04995; 647 would be $0.050025
    CHECK(a.decision.max_output_tokens == 646);
    CHECK(a.worst_case == 49'950);
    CHECK(a.reservation.amount() == 49'950);
  }
  SUBCASE("a larger min_answer_tokens refuses sooner") {
    auto engine = switchboard::testing::engine_with_rules(dir, kPremium,
                                                          "budget_usd = 0.05\n[calls]\nmin_answer_tokens = 700\n");
    REQUIRE_MESSAGE(engine.ok(), engine.status().message());
    const Decision d = *(*engine)->decide("w", plan());
    const Admission a = (*engine)->admit(d, plan());
    CHECK(a.status.code() == Status::Code::kOverBudget);
    CHECK(a.worst_case == 54'000);  // 100 × $15 + 700 × $75 per Mtok
  }
  SUBCASE("moved to the over-budget tier") {
    auto engine = switchboard::testing::engine_with_rules(dir, kPremium,
                                                          "budget_usd = 0.05\nover_budget_tier = \"cheap\"\n");
    REQUIRE_MESSAGE(engine.ok(), engine.status().message());
    const Decision d = *(*engine)->decide("w", plan());
    const Admission a = (*engine)->admit(d, plan());
    REQUIRE(a.status.ok());
    CHECK(a.rerouted);
    CHECK(a.decision.tier == "cheap");
    CHECK(a.decision.model == "m-cheap");
    CHECK(a.decision.reason == "deep; over budget: moved to tier 'cheap'");
    // 100 × $1/M + 500 × $5/M
    CHECK(a.worst_case == 2'600);
    CHECK_FALSE(a.refusal.has_value());
  }
}

TEST_SUITE("concurrency") {
TEST_CASE("many threads admitting calls against a small cap never settle past it") {
  TempDir dir;
  // Cap $1: 13 premium worst cases ($0.0765 each) fit at once.
  auto engine = switchboard::testing::engine_with_rules(dir, kPremium, "budget_usd = 1.0\n");
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  std::atomic<int> admitted{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        const Decision d = *(*engine)->decide("w", plan());
        Admission a = (*engine)->admit(d, plan());
        if (!a.status.ok()) {
          refused++;
          continue;
        }
        admitted++;
        a.reservation.settle(a.worst_case);  // the worst case happens every time
      }
    });
  }
  for (auto& th : threads) th.join();
  const auto snap = (*engine)->budgets().snapshot("workload:w");
  CHECK(snap.spent <= 1'000'000);
  CHECK(snap.reserved == 0);
  // floor($1 / $0.0765) whole caps, then one lowered to what is left
  // ($0.0055: 100 × $15 + 53 × $75 per Mtok = $0.005475), then refusals.
  CHECK(admitted.load() == 14);
  CHECK(snap.spent == 13 * 76'500 + 5'475);
  CHECK(refused.load() == 8 * 200 - 14);
}
}

TEST_CASE("an extra budget scope must also hold the worst case: the cap is lowered to fit, then refused") {
  TempDir dir;
  // No workload budget: only the key's scope limits the call.
  auto engine = switchboard::testing::engine_with_rules(dir, R"lua(function classify(step, ctx) return "premium" end)lua");
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  BudgetBook& book = (*engine)->budgets();
  book.set_limit(BudgetLimit{"key:team-a", 100'000, BudgetPeriod::kDay});  // $0.10
  const Decision d = *(*engine)->decide("w", plan());
  // Worst case on m-premium: 100 × $15 + 1,000 × $75 per Mtok = $0.0765.
  Admission first = (*engine)->admit(d, plan(), "t1", {"key:team-a"});
  REQUIRE(first.status.ok());
  CHECK(first.worst_case == 76'500);
  CHECK_FALSE(first.output_cap_lowered);
  CHECK(first.scopes == std::vector<std::string>{"workload:w", "key:team-a"});
  CHECK(first.reservation.scopes() == first.scopes);
  CHECK(book.snapshot("key:team-a").reserved == 76'500);
  CHECK(book.snapshot("workload:w").reserved == 76'500);  // tracked without a limit

  // $0.0235 left: 100 × $15 + 293 × $75 per Mtok = $0.023475 is the most that fits.
  Admission second = (*engine)->admit(d, plan(), "t2", {"key:team-a"});
  REQUIRE(second.status.ok());
  CHECK(second.output_cap_lowered);
  CHECK(second.decision.max_output_tokens == 293);
  CHECK(second.worst_case == 23'475);
  CHECK(second.reservation.amount() == 23'475);
  CHECK(second.decision.reason.find("output cap lowered to 293") != std::string::npos);

  // $0.000025 left: not even a minimal answer (16 tokens: $0.0027) fits.
  Admission third = (*engine)->admit(d, plan(), "t3", {"key:team-a"});
  CHECK(third.status.code() == Status::Code::kOverBudget);
  REQUIRE(third.refusal.has_value());
  CHECK(third.refusal->status == CallStatus::kRefusedByBudget);
  CHECK(third.refusal->error.find("budget key:team-a: request $0.002700") == 0);
  CHECK(third.refusal->budget_scopes == std::vector<std::string>{"workload:w", "key:team-a"});
  CHECK_FALSE(third.reservation);
  CHECK(book.snapshot("key:team-a").reserved == 99'975);

  first.reservation.settle(50'000);
  CHECK(book.snapshot("key:team-a").spent == 50'000);
  CHECK(book.snapshot("workload:w").spent == 50'000);
  CHECK(book.snapshot("key:team-a").reserved == 23'475);
}
