// The rule API table (lua/rules_api.h) against the sandbox: what a rule sees
// through pairs() and indexing is exactly what the table lists, with the
// types it lists, present when it says; the examples are values of their
// types; the result fields the sandbox reads are the table's. The other
// direction (a key the sandbox sets or reads that the table lacks) does not
// compile (rules_api::key()).
//
// Adding a field is its row and the sandbox code that sets it, plus setting
// it in full_step() / full_ctx() below. A new table reached from step or ctx
// is a new section and one line in the driver rules' SUBJECTS.
#include <doctest/doctest.h>

extern "C" {
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
}

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "lua/rules_api.h"
#include "lua/sandbox.h"
#include "test_util.h"

using namespace switchboard;
using namespace switchboard::detail;
namespace api = switchboard::detail::rules_api;

namespace {

// A model small_config() has; and one it has not.
constexpr const char* kModel = "m-cheap";
constexpr const char* kUnknownModel = "no-such-model";

// Reads the table of rule values one answer per call, driven by step.meta:
//   ask = "key", section, i: the i-th key (sorted) that pairs() gives, and
//         the math.type or type of its value: "key kind" (tier "end" past the last)
//   ask = "read", section, key: the kind of t[key], and whether pairs() lists it
//   ask = "value", section: the kind of the section's table itself
//   ask = "cost", model: how many values ctx.cost returns, and their kinds
// A section with no subject here answers tier "no-subject".
constexpr const char* kDriftRules = R"lua(
local function kind(v) return math.type(v) or type(v) end

local SUBJECTS = {
  ["step"] = function(step, ctx) return step end,
  ["ctx"] = function(step, ctx) return ctx end,
  ["ctx.models[name]"] = function(step, ctx) return ctx.models[step.meta.model] end,
  ["ctx.price(name)"] = function(step, ctx) return ctx.price(step.meta.model) end,
  ["ctx.session"] = function(step, ctx) return ctx.session end,
}

function classify(step, ctx)
  local m = step.meta
  if m.ask == "cost" then
    local n = select("#", ctx.cost(m.model, 8000, 800, 100))
    local micro, usd = ctx.cost(m.model, 8000, 800, 100)
    return { tier = "x", reason = n .. " " .. kind(micro) .. " " .. kind(usd) }
  end
  local subject = SUBJECTS[m.section]
  if subject == nil then return { tier = "no-subject" } end
  local t = subject(step, ctx)
  if m.ask == "value" then return { tier = "x", reason = kind(t) } end
  if m.ask == "key" then
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    table.sort(keys)
    local k = keys[m.i]
    if k == nil then return { tier = "end" } end
    return { tier = "x", reason = k .. " " .. kind(t[k]) }
  end
  local listed = false
  for k in pairs(t) do listed = listed or k == m.key end
  return { tier = "x", reason = kind(t[m.key]) .. " " .. tostring(listed) }
end
)lua";

// The math.type or type of each LuaTypes bit.
std::set<std::string> kinds_of(unsigned types) {
  std::set<std::string> kinds;
  const std::pair<unsigned, const char*> names[] = {
      {api::kNil, "nil"},       {api::kBoolean, "boolean"}, {api::kInteger, "integer"},
      {api::kFloat, "float"},   {api::kString, "string"},   {api::kTable, "table"},
      {api::kFunction, "function"}, {api::kUserdata, "userdata"}};
  for (const auto& [bit, name] : names) {
    if ((types & bit) != 0) kinds.insert(name);
  }
  return kinds;
}

// The key of `field` in `section` ("" for the section's value row).
std::string key_in(const api::Section& section, const api::Field& field) {
  return field.path == section.name ? "" : std::string(field.path.substr(section.prefix.size()));
}

bool is_value_row(const api::Section& section, const api::Field& field) { return field.path == section.name; }

// A step with every field set (the driver's keys go in meta as well).
Step full_step() {
  Step step;
  step.role = "plan";
  step.input_tokens = 1200;
  step.prompt = "text";
  step.expected_output_tokens = 300;
  step.needs_chain_of_thought = true;
  step.output_must_be_json = true;
  step.untrusted_input = true;
  step.tool_depth = 2;
  step.turns = 3;
  step.has_tools = true;
  step.tool_names = {"read_file", "grep"};
  step.last_tool = "grep";
  step.has_images = true;
  step.has_documents = true;
  step.agent = "3f9a1c0b7e21";
  return step;
}

// One rules state and the two ctx it is asked under: everything set, and as
// little as can be (no budget, no health figures).
struct Rig {
  testing::TempDir dir;
  Config config;
  std::unique_ptr<HealthBook> health;
  SessionView session{"t-001", kModel, 3, {{kModel, 4000}}};
  std::unique_ptr<LuaSandbox> box;

  Rig() {
    dir.write("rules/w.lua", kDriftRules);  // the config names it; the sandbox below runs it
    auto loaded = load_config(testing::write_small_config(dir));
    REQUIRE_MESSAGE(loaded.ok(), loaded.status().to_string());
    config = std::move(*loaded);
    health = std::make_unique<HealthBook>(HealthSettings{});
    RateLimits limits;
    limits.requests_left = 10;
    limits.tokens_left = 2000;
    limits.requests_reset = std::chrono::milliseconds(600000);
    limits.tokens_reset = std::chrono::milliseconds(600000);
    health->record_success(kModel, std::chrono::milliseconds(40), limits);
    auto created = LuaSandbox::create(SandboxLimits{}, "rules/drift.lua", kDriftRules);
    REQUIRE_MESSAGE(created.ok(), created.status().to_string());
    box = std::move(*created);
  }

  RulesContext full_ctx() const {
    RulesContext ctx;
    ctx.workload = "w";
    ctx.rules_version = "abc123";
    ctx.budget_left_usd = 5.0;
    ctx.spent_usd = 1.25;
    ctx.rate_requests_left = 7;
    ctx.rate_tokens_left = 4200;
    ctx.config = &config;
    ctx.health = health.get();
    ctx.session = &session;
    return ctx;
  }
  RulesContext minimal_ctx() const {
    RulesContext ctx;
    ctx.workload = "w";
    ctx.rules_version = "abc123";
    ctx.config = &config;
    return ctx;
  }

  // Asks the driver rules; `meta` are step.meta's driver keys. Returns
  // "tier|reason".
  std::string ask(bool full, std::vector<std::pair<std::string, MetaValue>> meta) {
    Step step = full ? full_step() : Step{};
    step.meta = std::move(meta);
    const RulesContext ctx = full ? full_ctx() : minimal_ctx();
    auto raw = box->classify(step, step.input_tokens.value_or(0), ctx);
    REQUIRE_MESSAGE(raw.ok(), raw.status().to_string());
    return std::string(raw->tier.value_or("")) + "|" + std::string(raw->reason.value_or(""));
  }
};

// What pairs() gives on the section's table: key -> kind.
std::map<std::string, std::string> pairs_of(Rig& rig, bool full, const api::Section& section) {
  std::map<std::string, std::string> keys;
  for (std::int64_t i = 1;; ++i) {
    const std::string answer =
        rig.ask(full, {{"ask", std::string("key")}, {"section", std::string(section.name)}, {"model", std::string(kModel)},
                       {"i", i}});
    if (answer == "end|") break;
    REQUIRE_MESSAGE(answer != "no-subject|", "the drift rules have no subject for section '", section.name,
                    "': add it to SUBJECTS in tests/lua/rules_api_test.cpp");
    const std::string pair = answer.substr(2);
    const size_t space = pair.find(' ');
    keys[pair.substr(0, space)] = pair.substr(space + 1);
    REQUIRE(i < 1000);
  }
  return keys;
}

// Sections with a table the driver rules reach (all but ctx.cost's results
// and classify's return value, which have tests of their own).
bool is_table_section(const api::Section& section) { return section.name != "ctx.cost(...)" && section.name != "return"; }

}  // namespace

TEST_SUITE("rules_api") {

TEST_CASE("pairs() over step, ctx, ctx.models[name] and ctx.price(name) gives exactly the table's fields, typed") {
  Rig rig;
  for (const bool full : {true, false}) {
    for (const api::Section& section : api::kSections) {
      if (!is_table_section(section)) continue;
      if (!full && section.name == "ctx.session") continue;  // nil without a session, as ctx's row says
      CAPTURE(section.name);
      CAPTURE(full);
      const std::map<std::string, std::string> listed = pairs_of(rig, full, section);
      std::set<std::string> rows;
      for (const api::Field& field : section.fields) {
        if (is_value_row(section, field)) continue;
        const std::string key = key_in(section, field);
        rows.insert(key);
        CAPTURE(field.path);
        const std::string read = rig.ask(
            full, {{"ask", std::string("read")}, {"section", std::string(section.name)}, {"model", std::string(kModel)},
                   {"key", key}});
        const std::string kind = read.substr(2, read.find(' ') - 2);
        const bool raw = read.ends_with(" true");
        // Present when everything is set; absent in the minimal call exactly when it may be nil.
        const bool nilable = (field.types & api::kNil) != 0;
        if (full || !nilable) {
          CHECK_MESSAGE(kind != "nil", field.path,
                        full ? " is in the rule API table but the sandbox does not set it"
                             : " is nil with nothing set, but the rule API table does not say 'or nil'");
          CHECK_MESSAGE(kinds_of(field.types).count(kind) == 1, field.path, " is a ", kind,
                        ", not a type the rule API table gives it");
        } else {
          CHECK_MESSAGE(kind == "nil", field.path, " is set with nothing to show; the table says it may be nil");
        }
        if (kind != "nil" && !raw) {
          // Reached through a metatable: the page must say so, since pairs() does not list it.
          CHECK_MESSAGE(listed.count(key) == 0, field.path);
          CHECK_MESSAGE(field.present.find("metatable") != std::string_view::npos, field.path,
                        " is reached through a metatable: its 'present' must say so");
        } else if (kind != "nil") {
          CHECK_MESSAGE(listed.count(key) == 1, field.path, " is a raw field that pairs() does not list");
        }
      }
      for (const auto& [key, kind] : listed) {
        CHECK_MESSAGE(rows.count(key) == 1, section.prefix, key, " (a ", kind,
                      ") is set by the sandbox but not in the rule API table (lua/rules_api.h)");
      }
    }
  }
}

TEST_CASE("the value rows: ctx.models[name] and ctx.price(name) are tables, nil for a model the config lacks") {
  Rig rig;
  for (const api::Section& section : api::kSections) {
    if (!is_table_section(section)) continue;
    for (const api::Field& field : section.fields) {
      if (!is_value_row(section, field)) continue;
      CAPTURE(field.path);
      for (const char* model : {kModel, kUnknownModel}) {
        const std::string answer = rig.ask(
            true, {{"ask", std::string("value")}, {"section", std::string(section.name)}, {"model", std::string(model)}});
        const std::string kind = answer.substr(2);
        CHECK(kinds_of(field.types).count(kind) == 1);
        if (std::string_view(model) == kUnknownModel) CHECK(kind == "nil");
      }
    }
  }
}

TEST_CASE("ctx.cost returns the table's results with their types, and one nil for an unknown model") {
  Rig rig;
  const api::Section& cost = api::kCost;
  std::string expected = std::to_string(cost.fields.size());
  for (const api::Field& field : cost.fields) {
    // The first kind of a result that is present: each is a number of one kind.
    std::set<std::string> kinds = kinds_of(field.types & ~api::kNil);
    REQUIRE(kinds.size() == 1);
    expected += " " + *kinds.begin();
  }
  CHECK(rig.ask(true, {{"ask", std::string("cost")}, {"model", std::string(kModel)}}) == "x|" + expected);
  std::string missing = "1";
  for (size_t i = 0; i < cost.fields.size(); ++i) {
    CHECK((cost.fields[i].types & api::kNil) != 0);
    missing += " nil";
  }
  CHECK(rig.ask(true, {{"ask", std::string("cost")}, {"model", std::string(kUnknownModel)}}) == "x|" + missing);
}

TEST_CASE("every example of the table is a value of its declared type, or a use of its function or object") {
  std::unique_ptr<lua_State, void (*)(lua_State*)> state(luaL_newstate(), lua_close);
  lua_State* L = state.get();
  luaL_openlibs(L);
  std::set<std::string_view> paths;
  for (const api::Section& section : api::kSections) {
    for (const api::Field& field : section.fields) {
      CAPTURE(field.path);
      CHECK(paths.insert(field.path).second);
      CHECK((is_value_row(section, field) || field.path.starts_with(section.prefix)));
      CHECK((field.types & ~api::kNil) != 0);
      CHECK_FALSE(field.present.empty());
      CHECK_FALSE(field.description.empty());
      CHECK(field.description.find('\n') == std::string_view::npos);
      const std::string chunk = "return " + std::string(field.example);
      REQUIRE_MESSAGE(luaL_loadstring(L, chunk.c_str()) == LUA_OK, lua_tostring(L, -1));
      if ((field.types & (api::kFunction | api::kUserdata)) != 0 || field.example.starts_with(field.path)) {
        // A use: it names the field itself.
        CHECK(field.example.starts_with(field.path));
        lua_pop(L, 1);
        continue;
      }
      REQUIRE(lua_pcall(L, 0, 1, 0) == LUA_OK);
      std::string kind = lua_typename(L, lua_type(L, -1));
      if (lua_type(L, -1) == LUA_TNUMBER) kind = lua_isinteger(L, -1) ? "integer" : "float";
      CHECK(kind != "nil");
      CHECK_MESSAGE(kinds_of(field.types).count(kind) == 1, "the example is a ", kind);
      lua_pop(L, 1);
    }
  }
}

TEST_CASE("the result fields the sandbox reads are the table's: each example is taken, a wrong type is an error naming it") {
  const api::Section& result = api::kResult;
  for (const api::Field& field : result.fields) {
    CAPTURE(field.path);
    if (is_value_row(result, field)) {
      // classify's value itself: the example (a table) and a string are taken.
      for (const std::string& value : {std::string(field.example), std::string("\"cheap\"")}) {
        auto box = LuaSandbox::create(SandboxLimits{}, "rules/r.lua", "function classify(step, ctx) return " + value + " end");
        REQUIRE(box.ok());
        CHECK((*box)->classify(Step{}, 0, RulesContext{}).ok());
      }
      continue;
    }
    const std::string key = key_in(result, field);
    auto good = LuaSandbox::create(SandboxLimits{}, "rules/r.lua",
                                   "function classify(step, ctx) return { " + key + " = " + std::string(field.example) +
                                       " } end");
    REQUIRE(good.ok());
    auto taken = (*good)->classify(Step{}, 0, RulesContext{});
    CHECK_MESSAGE(taken.ok(), taken.status().to_string());
    // No result field is a table: returning one is a type error, which shows the sandbox reads the field.
    REQUIRE((field.types & api::kTable) == 0);
    auto bad = LuaSandbox::create(SandboxLimits{}, "rules/r.lua", "function classify(step, ctx) return { " + key + " = {} } end");
    REQUIRE(bad.ok());
    auto refused = (*bad)->classify(Step{}, 0, RulesContext{});
    REQUIRE_MESSAGE(!refused.ok(), field.path, " is in the rule API table but the sandbox does not read it");
    CHECK(refused.status().message().find("'" + key + "' as a table") != std::string::npos);
  }
  // Keys the table does not list are ignored, whatever they hold.
  auto other = LuaSandbox::create(SandboxLimits{}, "rules/r.lua",
                                  "function classify(step, ctx) return { tier = \"cheap\", colour = {} } end");
  REQUIRE(other.ok());
  CHECK((*other)->classify(Step{}, 0, RulesContext{}).ok());
}

TEST_CASE("the page lists every field of the table, in Markdown and in JSON") {
  const std::string markdown = rules_api_markdown();
  CHECK(markdown.starts_with("# The rule API\n"));
  const auto page = nlohmann::json::parse(rules_api_json());
  REQUIRE(page["sections"].size() == std::size(api::kSections));
  size_t i = 0;
  for (const api::Section& section : api::kSections) {
    const auto& s = page["sections"][i++];
    CHECK(s["name"].get<std::string>() == section.name);
    REQUIRE(s["fields"].size() == section.fields.size());
    size_t j = 0;
    for (const api::Field& field : section.fields) {
      const auto& f = s["fields"][j++];
      CHECK(f["path"].get<std::string>() == field.path);
      CHECK(f["example"].get<std::string>() == field.example);
      std::set<std::string> types;
      for (const auto& t : f["types"]) types.insert(t.get<std::string>());
      CHECK(types == kinds_of(field.types));
      CHECK(markdown.find("| `" + std::string(field.path) + "` | " + f["type"].get<std::string>()) != std::string::npos);
    }
  }
  CHECK(markdown.find("| `step.expected_output_tokens` | integer or nil | ") != std::string::npos);
  CHECK(markdown.find("| `return` | string or table | ") != std::string::npos);
  CHECK(markdown.find("| `ctx.spent_usd` | number | ") != std::string::npos);
}

}  // TEST_SUITE
