// Replay: recorded steps grouped with their calls, per-model output ratios
// from the ledger's history, and the cost of a recorded step under another
// decision (exact input, scaled output, cold caches, fan-out, output caps).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "switchboard/replay.h"
#include "test_util.h"

using namespace switchboard;
using switchboard::testing::TempDir;

namespace {

Config small() {
  TempDir dir;  // read once: the config keeps nothing open in it
  dir.write("rules/w.lua", "function classify(step, ctx) return 'cheap' end");
  auto config = load_config(testing::write_small_config(dir));
  REQUIRE_MESSAGE(config.ok(), config.status().message());
  return *config;
}

Decision choice(const std::string& tier, const std::string& model, std::int64_t expected_output = 100) {
  Decision d;
  d.workload = "w";
  d.tier = tier;
  d.model = model;
  d.estimated_output_tokens = expected_output;
  return d;
}

CostRecord call(const std::string& trace, const std::string& model, Usage usage, MicroUsd cost = 0,
                std::string parent = "") {
  CostRecord c;
  c.trace_id = trace;
  c.model = model;
  c.usage = usage;
  c.cost = cost;
  c.parent_id = std::move(parent);
  return c;
}

RecordedStep step_on(const std::string& trace, const Decision& d, std::vector<CostRecord> calls) {
  RecordedStep s;
  s.decision.trace_id = trace;
  s.decision.decision = d;
  s.calls = std::move(calls);
  for (const CostRecord& c : s.calls) s.billed += c.cost;
  return s;
}

// `n` steps on `model` that each expected 100 output tokens and got `output`.
std::vector<RecordedStep> history(const std::string& tier, const std::string& model, std::int64_t output, int n) {
  std::vector<RecordedStep> steps;
  for (int i = 0; i < n; ++i) {
    const std::string trace = model + "-" + std::to_string(i);
    steps.push_back(step_on(trace, choice(tier, model), {call(trace, model, testing::usage_of(500, 0, 0, 0, output, 0))}));
  }
  return steps;
}

}  // namespace

TEST_SUITE("replay") {

TEST_CASE("recorded steps group calls by trace and leave out shadow decisions and orphan calls") {
  std::vector<DecisionRecord> decisions(3);
  decisions[0].trace_id = "a";
  decisions[1].trace_id = "b";
  decisions[2].trace_id = "a";
  decisions[2].kind = DecisionKind::kShadow;
  const std::vector<CostRecord> calls = {call("a", "m-cheap", {}, 10), call("x", "m-cheap", {}, 99),
                                         call("b", "m-cheap", {}, 5), call("a", "m-cheap", {}, 7)};
  const std::vector<RecordedStep> steps = recorded_steps(decisions, calls);
  REQUIRE(steps.size() == 2);
  CHECK(steps[0].decision.trace_id == "a");
  CHECK(steps[0].decision.kind == DecisionKind::kRules);
  CHECK(steps[0].calls.size() == 2);
  CHECK(steps[0].billed == 17);
  CHECK(steps[1].billed == 5);
}

TEST_CASE("output ratios come from answering calls and need enough of them") {
  std::vector<RecordedStep> steps = history("cheap", "m-cheap", 50, 10);
  // A fan-out step: two branches (parent set) answered 80, the aggregator 400.
  steps.push_back(step_on("f", choice("premium", "m-premium"),
                          {call("f", "m-premium", testing::usage_of(500, 0, 0, 0, 80, 20), 0, "agg"),
                           call("f", "m-premium", testing::usage_of(500, 0, 0, 0, 80, 20), 0, "agg"),
                           call("f", "m-premium", testing::usage_of(700, 0, 0, 0, 400, 0))}));
  const OutputRatios ratios = OutputRatios::from_history(steps);
  const auto cheap = ratios.find("m-cheap", Reasoning::kDefault);
  REQUIRE(cheap.has_value());
  CHECK(cheap->output == doctest::Approx(0.5));
  CHECK(cheap->calls == 10);
  // Two answers are too few to scale by, though they are reported.
  CHECK_FALSE(ratios.find("m-premium", Reasoning::kDefault).has_value());
  REQUIRE(ratios.by_model().count("m-premium") == 1);
  CHECK(ratios.by_model().at("m-premium").output == doctest::Approx(0.8));  // the aggregator is not counted
  CHECK(ratios.by_model().at("m-premium").reasoning == doctest::Approx(0.25));
}

TEST_CASE("the same choice costs what its calls cost under the replay's catalog") {
  const Config config = small();
  const RecordedStep s =
      step_on("t", choice("cheap", "m-cheap"), {call("t", "m-cheap", testing::usage_of(1000, 0, 0, 0, 200, 0), 2000)});
  auto same = replay_cost(config, *config.prices, s, choice("cheap", "m-cheap"), OutputRatios{});
  REQUIRE(same.ok());
  CHECK(same->cost == 2000);  // 1000 × $1 + 200 × $5 per Mtok
  CHECK_FALSE(same->scaled);

  auto dearer = PriceCatalog::parse(testing::small_prices().replace(
                                        testing::small_prices().find("input = 1.0"), 11, "input = 2.0"),
                                    "dearer.toml");
  REQUIRE_MESSAGE(dearer.ok(), dearer.status().message());
  auto repriced = replay_cost(config, *dearer, s, choice("cheap", "m-cheap"), OutputRatios{});
  REQUIRE(repriced.ok());
  CHECK(repriced->cost == 3000);
}

TEST_CASE("another model keeps the recorded input on a cold cache and scales the output by the ratios") {
  const Config config = small();
  std::vector<RecordedStep> steps = history("cheap", "m-cheap", 50, 10);      // ratio 0.5
  auto premium = history("premium", "m-premium", 100, 10);                   // ratio 1.0
  steps.insert(steps.end(), premium.begin(), premium.end());
  const OutputRatios ratios = OutputRatios::from_history(steps);
  // 600 uncached + 400 cached input, 50 output on m-cheap.
  const RecordedStep s =
      step_on("t", choice("cheap", "m-cheap"), {call("t", "m-cheap", testing::usage_of(600, 400, 0, 0, 50, 0))});

  auto moved = replay_cost(config, *config.prices, s, choice("premium", "m-premium"), ratios);
  REQUIRE(moved.ok());
  CHECK(moved->scaled);
  CHECK(moved->cost == 1000 * 15 + 100 * 75);  // all 1000 input uncached; 50 × 1.0 / 0.5 output

  auto unscaled = replay_cost(config, *config.prices, s, choice("premium", "m-premium"), OutputRatios{});
  REQUIRE(unscaled.ok());
  CHECK_FALSE(unscaled->scaled);
  CHECK(unscaled->cost == 1000 * 15 + 50 * 75);

  Decision capped = choice("premium", "m-premium");
  capped.max_output_tokens = 60;
  auto clipped = replay_cost(config, *config.prices, s, capped, ratios);
  REQUIRE(clipped.ok());
  CHECK(clipped->cost == 1000 * 15 + 60 * 75);

  // The same model at another reasoning level keeps its cache.
  Decision thinking = choice("cheap", "m-cheap");
  thinking.reasoning = Reasoning::kHigh;
  auto warm = replay_cost(config, *config.prices, s, thinking, ratios);
  REQUIRE(warm.ok());
  CHECK(warm->cost == 600 * 1 + 400 / 10 + 50 * 5);  // $0.10 per Mtok cached
}

TEST_CASE("a fan-out costs its branches and an aggregation call that reads every branch") {
  const Config config = small();
  const RecordedStep s =
      step_on("t", choice("premium", "m-premium"), {call("t", "m-premium", testing::usage_of(1000, 0, 0, 0, 100, 0))});
  Decision fanned = choice("premium", "m-premium");
  fanned.fanout = 3;
  fanned.aggregate = "cheap";
  auto cost = replay_cost(config, *config.prices, s, fanned, OutputRatios{});
  REQUIRE(cost.ok());
  // 3 × (1000 × $15 + 100 × $75) on m-premium, then m-cheap reads 1000 + 3 × 100 and writes 100.
  CHECK(cost->cost == 3 * (15000 + 7500) + (1300 * 1 + 100 * 5));
}

TEST_CASE("a step with no successful call is priced from the engine's estimates") {
  const Config config = small();
  CostRecord failed = call("t", "m-cheap", {});
  failed.status = CallStatus::kError;
  const RecordedStep s = step_on("t", choice("cheap", "m-cheap"), {failed});
  Decision d = choice("premium", "m-premium", 300);
  d.estimated_input_tokens = 2000;
  auto cost = replay_cost(config, *config.prices, s, d, OutputRatios{});
  REQUIRE(cost.ok());
  CHECK(cost->from_estimates);
  CHECK(cost->cost == 2000 * 15 + 300 * 75);
}

}  // TEST_SUITE("replay")
