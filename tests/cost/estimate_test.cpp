// Cost estimates in exact micro-dollars: one call, a decision (with its
// expected output and fanout), token estimates, and money formatting.
#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

#include "cost/estimate.h"
#include "test_util.h"

using namespace switchboard;
using switchboard::testing::TempDir;

namespace {

ModelSpec priced(MicroUsdPerMtok input, MicroUsdPerMtok output, std::int64_t default_output = 1000) {
  ModelSpec m;
  m.name = "m";
  m.provider = "sim";
  m.context_window = 100'000;
  m.default_output_tokens = default_output;
  m.price.input = input;
  m.price.cached_input = input;
  m.price.output = output;
  return m;
}

}  // namespace

TEST_CASE("estimate_call_cost is input times price plus output times price, rounded once") {
  struct Case {
    MicroUsdPerMtok input_price, output_price;
    std::int64_t input_tokens, output_tokens;
    MicroUsd cost;
  };
  const std::vector<Case> cases = {
      // $15/$75: 8k in, 2k out = $0.12 + $0.15
      {15'000'000, 75'000'000, 8'000, 2'000, 270'000},
      // $1/$5 = $0.008 + $0.01
      {1'000'000, 5'000'000, 8'000, 2'000, 18'000},
      {1'000'000, 5'000'000, 0, 0, 0},
      // 0.4 + 0.4 micro-dollars: each part alone rounds to 0, the sum to 1
      {400'000, 400'000, 1, 1, 1},
      {400'000, 400'000, 1, 0, 0},
      // exactly half a micro-dollar rounds up
      {500'000, 0, 1, 0, 1},
      {499'999, 0, 1, 0, 0},
      // 1.5 + 1.5 = 3 exactly (rounding each would give 4)
      {1'500'000, 1'500'000, 1, 1, 3},
      // $0.075 per Mtok over 1M tokens is 7.5 cents
      {75'000, 0, 1'000'000, 0, 75'000},
      // a 1M-token window at $75 output: no overflow
      {15'000'000, 75'000'000, 1'048'576, 1'048'576, 94'371'840},
  };
  for (const Case& c : cases) {
    CAPTURE(c.input_price);
    CAPTURE(c.output_price);
    CAPTURE(c.input_tokens);
    CAPTURE(c.output_tokens);
    CHECK(estimate_call_cost(priced(c.input_price, c.output_price), c.input_tokens, c.output_tokens) ==
          c.cost);
  }
}

TEST_CASE("cost_of rounds half up to whole micro-dollars") {
  struct Case {
    std::int64_t tokens;
    MicroUsdPerMtok price;
    MicroUsd cost;
  };
  for (const Case& c : {Case{1'000, 15'000'000, 15'000}, Case{1, 400'000, 0}, Case{1, 500'000, 1},
                        Case{3, 500'000, 2}, Case{0, 75'000'000, 0}, Case{1'000'000, 1, 1},
                        Case{999'999, 1, 1}, Case{499'999, 1, 0}, Case{1'000'000, 75'000'000, 75'000'000}}) {
    CAPTURE(c.tokens);
    CAPTURE(c.price);
    CHECK(cost_of(c.tokens, c.price) == c.cost);
  }
}

namespace {

// small_config(): m-cheap $1/$5 with 500 default output tokens and a 100,000
// window; m-premium $15/$75 with 1,000 default output tokens.
struct Priced {
  const char* what;
  const char* answer;  // what classify returns
  std::optional<std::int64_t> expected_output_tokens;
  std::int64_t output_tokens;  // what the estimate assumes
  MicroUsd cost;
};

// Decides one 1,000-token step answered by `c.answer` and checks its estimate.
void check_priced(const Priced& c, const char* role) {
  INFO(std::string(c.what));
  TempDir dir;
  auto engine = switchboard::testing::engine_with_rules(
      dir, std::string("function classify(step, ctx) return ") + c.answer + " end\n");
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  Step step;
  step.role = role;
  step.input_tokens = 1'000;
  step.expected_output_tokens = c.expected_output_tokens;
  auto d = (*engine)->decide("w", step);
  REQUIRE(d.ok());
  CHECK_FALSE(d->error.has_value());
  CHECK(d->estimated_input_tokens == 1'000);
  CHECK(d->estimated_output_tokens == c.output_tokens);
  CHECK(d->estimated_cost == c.cost);
}

}  // namespace

TEST_CASE("a decision's estimate takes expected output from the step, else max_output_tokens, else the model default") {
  const std::vector<Priced> cases = {
      {"the step's expected output wins", R"lua({ tier = "cheap", max_output_tokens = 300 })lua", 200, 200,
       1'000 + 1'000},
      {"else the decision's max_output_tokens", R"lua({ tier = "cheap", max_output_tokens = 300 })lua", {},
       300, 1'000 + 1'500},
      {"else the model's default", R"lua({ tier = "cheap" })lua", {}, 500, 1'000 + 2'500},
      {"priced at the chosen model", R"lua({ tier = "premium" })lua", {}, 1'000, 15'000 + 75'000},
      {"a model named within a tier is the one priced", R"lua({ tier = "premium", model = "m-cheap" })lua",
       {}, 500, 1'000 + 2'500},
      {"an expected output of zero is taken as given", R"lua({ tier = "premium" })lua", 0, 0, 15'000},
  };
  for (const Priced& c : cases) check_priced(c, "plan");
}

TEST_CASE("a fanout estimate is N branches plus one aggregation call reading the N answers") {
  const std::vector<Priced> cases = {
      // branches on m-cheap: 1000 × $1 + 200 × $5 = 2,000 each, × 3 = 6,000;
      // aggregation on premium's m-premium: (1000 + 3 × 200) × $15 + 200 × $75 = 24,000 + 15,000
      {"aggregate on another tier", R"lua({ tier = "cheap", fanout = 3, aggregate = "premium" })lua", 200,
       200, 6'000 + 39'000},
      // aggregation defaults to the decision's tier: (1000 + 2 × 200) × $1 + 200 × $5 = 2,400
      {"aggregate on the decision's tier", R"lua({ tier = "cheap", fanout = 2 })lua", 200, 200,
       4'000 + 2'400},
      // no expected output: the model default of 500 per branch and for the aggregate
      // branches 1000 + 2,500 = 3,500 × 2; aggregate (1000 + 1000) × $15 + 500 × $75 = 30,000 + 37,500
      {"branch output from the model default", R"lua({ tier = "cheap", fanout = 2, aggregate = "premium" })lua",
       {}, 500, 7'000 + 67'500},
      // aggregation is priced at the aggregate tier's first model, not the branch model
      {"a named branch model", R"lua({ model = "m-premium", fanout = 2, aggregate = "cheap" })lua", 100, 100,
       2 * (15'000 + 7'500) + (1'200 + 500)},
      {"fanout 1 has no aggregation call", R"lua({ tier = "cheap", fanout = 1, aggregate = "premium" })lua",
       200, 200, 2'000},
  };
  // the per-call token estimates stay those of one branch
  for (const Priced& c : cases) check_priced(c, "reason");
}

TEST_CASE("a fallback decision is estimated at the fallback model's price") {
  TempDir dir;
  auto engine = switchboard::testing::engine_with_rules(dir, R"lua(
    function classify(step, ctx) return { tier = "nowhere" } end
  )lua");
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  Step step;
  step.role = "plan";
  step.input_tokens = 2'000;
  auto d = (*engine)->decide("w", step);
  REQUIRE(d.ok());
  REQUIRE(d->error.has_value());
  CHECK(d->model == "m-cheap");
  CHECK(d->estimated_cost == 2'000 + 2'500);  // 2000 × $1 + 500 default × $5
}

TEST_CASE("tokens are estimated from prompt text as ceil(bytes / 3)") {
  struct Case {
    std::string text;
    std::int64_t tokens;
  };
  for (const Case& c : {Case{"", 0}, Case{"a", 1}, Case{"ab", 1}, Case{"abc", 1}, Case{"abcd", 2},
                        Case{"abcdef", 2}, Case{"abcdefg", 3}, Case{"\xc3\xa9", 1},  // "é": 2 bytes
                        Case{std::string(3'000, 'x'), 1'000}, Case{std::string(3'001, 'x'), 1'001}}) {
    CAPTURE(c.text.size());
    CHECK(detail::estimate_tokens(c.text) == c.tokens);
  }
}

TEST_CASE("a step with only a prompt is priced on the estimated tokens") {
  TempDir dir;
  auto engine = switchboard::testing::engine_with_rules(dir, R"lua(
    function classify(step, ctx) return "premium" end
  )lua");
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  Step step;
  step.role = "summarize";
  step.prompt = std::string(3'001, 'x');  // 1,001 tokens
  step.expected_output_tokens = 10;
  auto d = (*engine)->decide("w", step);
  REQUIRE(d.ok());
  CHECK(d->estimated_input_tokens == 1'001);
  CHECK(d->estimated_cost == 15'015 + 750);  // 1001 × $15 + 10 × $75
}

TEST_CASE("format_usd prints six decimals and rounds half away from zero with fewer") {
  struct Case {
    MicroUsd amount;
    int decimals;
    const char* text;
  };
  const std::vector<Case> cases = {
      {0, 6, "$0.000000"},
      {1, 6, "$0.000001"},
      {1'234'567, 6, "$1.234567"},
      {270'000, 6, "$0.270000"},
      {12'345'678'901'234, 6, "$12345678.901234"},
      {1'234'567, 2, "$1.23"},
      {1'235'000, 2, "$1.24"},
      {1'234'999, 2, "$1.23"},
      {999'999, 2, "$1.00"},
      {999'999, 5, "$1.00000"},
      {1'500'000, 0, "$2"},
      {1'499'999, 0, "$1"},
      {-5, 6, "-$0.000005"},
      {-1'234'567, 6, "-$1.234567"},
      {-1'235'000, 2, "-$1.24"},
      {-1'500'000, 0, "-$2"},
      {-84'000, 6, "-$0.084000"},
      // decimals outside 0..6 are clamped
      {1'234'567, 9, "$1.234567"},
      {1'500'000, -1, "$2"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.amount);
    CAPTURE(c.decimals);
    CHECK(format_usd(c.amount, c.decimals) == c.text);
  }
  CHECK(format_usd(42) == "$0.000042");  // six decimals by default
}

TEST_CASE("to_usd converts micro-dollars to dollars for JSON") {
  CHECK(to_usd(0) == 0.0);
  CHECK(to_usd(1'500'000) == 1.5);
  CHECK(to_usd(-250'000) == -0.25);
}
