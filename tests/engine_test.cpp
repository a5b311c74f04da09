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

TEST_SUITE("rule_tools") {

TEST_CASE("explain shows the lines of the branch a step took and the same decision as decide") {
  TempDir dir;
  auto engine = switchboard::testing::engine_with_rules(dir, R"lua(local PREMIUM = { plan = true }
local function why(role)
  return "role " .. role
end
function classify(step, ctx)
  if PREMIUM[step.role] then
    return { tier = "premium", reason = why(step.role) }
  end
  for i = 1, 3 do
    local unused = i
  end
  return { tier = "cheap", reason = "everything else" }
end
)lua");
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  auto lines_of = [](const Explanation& e) {
    std::vector<int> lines;
    for (const TracedLine& l : e.lines) lines.push_back(l.line);
    return lines;
  };
  Step plan;
  plan.role = "plan";
  auto e = (*engine)->explain("w", plan);
  REQUIRE(e.ok());
  // Into why(); coming back to line 7 is not a new line for Lua's hook.
  CHECK(lines_of(*e) == std::vector<int>{6, 7, 3});
  CHECK(e->lines[0].text == "  if PREMIUM[step.role] then");
  CHECK(e->lines[2].text == "  return \"role \" .. role");
  CHECK_FALSE(e->truncated);
  auto d = (*engine)->decide("w", plan);
  REQUIRE(d.ok());
  CHECK(e->decision.tier == d->tier);
  CHECK(e->decision.reason == "role plan");
  CHECK(e->decision.estimated_cost == d->estimated_cost);

  Step other;
  other.role = "format";
  e = (*engine)->explain("w", other);
  REQUIRE(e.ok());
  CHECK(lines_of(*e) == std::vector<int>{6, 9, 10, 9, 10, 9, 10, 9, 12});
  CHECK(e->decision.tier == "cheap");
  CHECK(e->decision.reason == "everything else");

  CHECK_FALSE((*engine)->explain("nope", other).ok());
}

TEST_CASE("explain of a failing rule shows the lines up to the failure") {
  TempDir dir;
  auto engine = switchboard::testing::engine_with_rules(dir, R"lua(function classify(step, ctx)
  local n = step.input_tokens
  if step.role == "crash" then
    error("no such role")
  end
  return "cheap"
end
)lua");
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  Step crash;
  crash.role = "crash";
  auto e = (*engine)->explain("w", crash);
  REQUIRE(e.ok());
  REQUIRE(e->decision.error.has_value());
  CHECK(*e->decision.error == "rules/w.lua:4: no such role");
  REQUIRE(e->lines.size() == 3);
  CHECK(e->lines.back().line == 4);
  CHECK(e->lines.back().text == "    error(\"no such role\")");
}

}  // TEST_SUITE("rule_tools")
