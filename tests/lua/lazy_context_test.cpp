// The step table and ctx as the rules see them: step is built field by field
// as the rules read it and becomes the whole table as soon as anything could
// tell (pairs, next, rawget, a write, getmetatable, setmetatable); ctx and
// ctx.models are frozen tables the calls update, and each model's view takes
// its health once per call. Whatever the rules do, they see what an eagerly
// built table would show them.
#include <doctest/doctest.h>

#include <string>

#include "switchboard/engine.h"
#include "test_util.h"

using namespace switchboard;
using switchboard::testing::engine_with_rules;
using switchboard::testing::TempDir;

namespace {

Step full_step() {
  Step step;
  step.role = "plan";
  step.input_tokens = 1200;
  step.prompt = "hello";
  step.expected_output_tokens = 300;
  step.needs_chain_of_thought = true;
  step.output_must_be_json = true;
  step.untrusted_input = true;
  step.tool_depth = 2;
  step.turns = 3;
  step.has_tools = true;
  step.tool_names = {"search", "fetch"};
  step.last_tool = "fetch";
  step.has_images = true;
  step.has_documents = true;
  step.agent = "a1b2";
  step.meta = {{"task", std::string("t-1")}, {"n", std::int64_t{7}}};
  return step;
}

std::string reason_of(Engine& engine, const Step& step, const CallContext& ctx = {}) {
  auto d = engine.decide("w", step, ctx);
  REQUIRE(d.ok());
  REQUIRE_MESSAGE(!d->error.has_value(), d->error.value_or(""));
  return d->reason;
}

// The step's fields as "key=type" in key order, whatever way the rule walks it.
constexpr const char* kWalkStep = R"lua(
local function listing(t, walk)
  local keys = {}
  walk(t, function(k, v) keys[#keys + 1] = k .. "=" .. type(v) end)
  table.sort(keys)
  return table.concat(keys, " ")
end
local walks = {
  pairs = function(t, f) for k, v in pairs(t) do f(k, v) end end,
  next = function(t, f) local k, v = next(t) while k ~= nil do f(k, v) k, v = next(t, k) end end,
}
function classify(step, ctx)
  local how = step.meta.walk
  if how == "read_first" then
    local _ = step.role .. step.input_tokens  -- two fields read (and kept) before the walk
    how = "pairs"
  end
  return { tier = "cheap", reason = listing(step, walks[how]) }
end
)lua";

}  // namespace

TEST_CASE("a lazily built step shows every field to pairs and next, whether or not some were read first") {
  TempDir dir;
  auto engine = engine_with_rules(dir, kWalkStep);
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  const std::string all =
      "agent=string expected_output_tokens=number has_documents=boolean has_images=boolean has_tools=boolean "
      "input_tokens=number last_tool=string meta=table needs_chain_of_thought=boolean output_must_be_json=boolean "
      "prompt=string role=string tool_depth=number tool_names=table turns=number untrusted_input=boolean";
  for (const char* walk : {"pairs", "next", "read_first"}) {
    Step step = full_step();
    step.meta.push_back({"walk", std::string(walk)});
    CHECK_MESSAGE(reason_of(**engine, step) == all, walk);
  }
  // A bare step: the optional fields are absent, as they always were.
  Step bare;
  bare.role = "plan";
  bare.input_tokens = 5;
  bare.meta = {{"walk", std::string("pairs")}};
  CHECK(reason_of(**engine, bare) ==
        "has_documents=boolean has_images=boolean has_tools=boolean input_tokens=number meta=table "
        "needs_chain_of_thought=boolean output_must_be_json=boolean role=string tool_depth=number "
        "tool_names=table turns=number untrusted_input=boolean");
}

TEST_CASE("a step field the rule clears or sets stays as the rule left it, and the next call gets a whole step") {
  TempDir dir;
  auto engine = engine_with_rules(dir, R"lua(
function classify(step, ctx)
  local before = tostring(getmetatable(step)) .. " " .. tostring(rawget(step, "role"))
  step.role = nil
  step.tool_depth = step.tool_depth + 10
  local mt = setmetatable(step, { __index = function(t, k) return "mt:" .. k end })
  return { tier = "cheap", reason = before .. " " .. tostring(step.role) .. " " .. step.tool_depth .. " " ..
                                    tostring(step.nothing) .. " " .. tostring(mt == step) }
end
)lua");
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  Step step = full_step();
  CHECK(reason_of(**engine, step) == "nil plan mt:role 12 mt:nothing true");
  CHECK(reason_of(**engine, step) == "nil plan mt:role 12 mt:nothing true");  // nothing carried over
}

TEST_CASE("ctx is a read-only table: its fields follow each call, pairs and rawget read them, writes fail") {
  TempDir dir;
  auto engine = engine_with_rules(dir, R"lua(
function classify(step, ctx)
  if step.role == "write" then ctx.budget_left_usd = 1e9 end
  local keys = {}
  for k, v in pairs(ctx) do keys[#keys + 1] = k .. "=" .. type(v) end
  table.sort(keys)
  return { tier = "cheap", reason = type(ctx) .. " " .. tostring(rawget(ctx, "workload")) .. " " ..
           tostring(ctx.budget_left_usd) .. " " .. ctx.spent_usd .. " " .. table.concat(keys, " ") }
end
)lua");
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  Step step;
  step.role = "plan";
  CallContext with_budget;
  with_budget.budget_left = 2'500'000;
  with_budget.spent = 500'000;
  CHECK(reason_of(**engine, step, with_budget) ==
        "table w 2.5 0.5 budget_left_usd=number cost=function models=table price=function "
        "rules_version=string spent_usd=number workload=string");
  // The next call has no budget: the field is gone, not left from the last call.
  CallContext without;
  without.spent = 0;
  CHECK(reason_of(**engine, step, without) ==
        "table w nil 0.0 cost=function models=table price=function rules_version=string spent_usd=number "
        "workload=string");
  step.role = "write";
  auto d = (*engine)->decide("w", step);
  REQUIRE(d.ok());
  REQUIRE(d->error.has_value());
  CHECK(d->error->find("ctx is read-only") != std::string::npos);
}

TEST_CASE("a model's view takes its health once per call: the fields a rule reads in one call agree") {
  TempDir dir;
  auto engine = engine_with_rules(dir, R"lua(
function classify(step, ctx)
  local v = ctx.models["m-premium"]
  local first = v.consecutive_failures
  local fields = {}
  for k, x in pairs(v) do fields[#fields + 1] = k end
  return { tier = "cheap", reason = first .. " " .. tostring(v.healthy) .. " " .. v.state .. " " ..
           tostring(rawequal(v, ctx.models["m-premium"])) .. " " .. table.concat(fields, ",") }
end
)lua");
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  Step step;
  step.role = "plan";
  CHECK(reason_of(**engine, step) == "0 true closed true healthy,state,error_rate,calls,consecutive_failures");
  for (int i = 0; i < 2; ++i) (*engine)->health().record_failure("m-premium");
  CHECK(reason_of(**engine, step) == "2 true closed true healthy,state,error_rate,calls,consecutive_failures");
}
