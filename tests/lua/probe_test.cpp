// Probed runs of the sandbox (CallProbe): line traces, exact instruction
// counts and allocations; and the executable lines of a chunk, read from its
// binary dump and checked against lua_getinfo's own 'L'.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "lua/sandbox.h"
#include "test_util.h"

extern "C" {
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
}

using namespace switchboard;
using detail::CallProbe;
using detail::LuaSandbox;
using switchboard::testing::kCoverageRules;

namespace {

std::unique_ptr<LuaSandbox> sandbox(const std::string& source, const SandboxLimits& limits = {},
                                    CallProbe* load_probe = nullptr) {
  auto box = LuaSandbox::create(limits, "rules/p.lua", source, load_probe);
  REQUIRE_MESSAGE(box.ok(), box.status().message());
  return std::move(box).value();
}

Result<detail::RawDecision> call(LuaSandbox& box, const std::string& role, std::int64_t tokens,
                                 CallProbe* probe = nullptr) {
  Step step;
  step.role = role;
  detail::RulesContext ctx;
  ctx.workload = "w";
  ctx.rules_version = "v1";
  return box.classify(step, tokens, ctx, probe);
}

CallProbe probe_for(bool lines, bool instructions) {
  CallProbe p;
  p.lines = lines;
  p.instructions = instructions;
  return p;
}

// ---------------------------------------------------------------- lua_getinfo's view

struct StateCloser {
  void operator()(lua_State* L) const { lua_close(L); }
};

// The active lines lua_getinfo(">L") reports for the function on top of the stack (popped).
std::vector<int> active_lines(lua_State* L) {
  lua_Debug ar;
  REQUIRE(lua_getinfo(L, ">L", &ar));
  std::vector<int> lines;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lines.push_back(static_cast<int>(lua_tointeger(L, -2)));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  std::sort(lines.begin(), lines.end());
  return lines;
}

// Every Lua function reachable from the value on top of the stack (popped)
// through tables and upvalues, by (linedefined, lastlinedefined).
void collect_functions(lua_State* L, std::set<const void*>& seen,
                       std::map<std::pair<int, int>, std::vector<int>>& out) {
  const void* id = lua_topointer(L, -1);
  const int type = lua_type(L, -1);
  if ((type != LUA_TFUNCTION && type != LUA_TTABLE) || !seen.insert(id).second) {
    lua_pop(L, 1);
    return;
  }
  if (type == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) collect_functions(L, seen, out);
    lua_pop(L, 1);
    return;
  }
  if (lua_iscfunction(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  for (int i = 1; lua_getupvalue(L, -1, i) != nullptr; ++i) collect_functions(L, seen, out);
  lua_Debug ar;
  lua_pushvalue(L, -1);
  REQUIRE(lua_getinfo(L, ">S", &ar));
  out[{ar.linedefined, ar.lastlinedefined}] = active_lines(L);
}

}  // namespace

TEST_SUITE("rule_tools") {

TEST_CASE("the chunk reader agrees with lua_getinfo 'L' for every function it can reach") {
  // Vararg functions, closures made at load, a function defined inside a
  // loop, a local function never instantiated, a gap of more than 127 lines
  // and a function of more than 128 instructions (both make Lua store
  // absolute line numbers), and code after a long string.
  std::string source = R"lua(local function varargs(...)
  local n = select("#", ...)
  return n
end
local function adder(k)
  return function(x)
    return x + k
  end
end
local never = function(a, b)
  if a then return b end
  return nil
end
ADD2 = adder(2)
HANDLERS = {}
for i = 1, 3 do
  HANDLERS[i] = function(...) return i, ... end
end
function GAP()
  local t = {}
)lua";
  source += std::string(150, '\n');
  source += "  t[1] = 1\n  return t\nend\nfunction LONG(x)\n";
  for (int i = 0; i < 60; ++i) source += "  x = x + " + std::to_string(i) + " * x\n";
  source += "  return x\nend\nlocal s = [[\nnot code\n]]\nVARARGS = varargs\nADDER = adder\n";

  std::unique_ptr<lua_State, StateCloser> state(luaL_newstate());
  lua_State* L = state.get();
  luaL_openlibs(L);
  REQUIRE(luaL_loadbufferx(L, source.data(), source.size(), "=probe", "t") == LUA_OK);
  std::string chunk;
  lua_dump(
      L,
      [](lua_State*, const void* p, size_t n, void* ud) {
        static_cast<std::string*>(ud)->append(static_cast<const char*>(p), n);
        return 0;
      },
      &chunk, 0);
  auto protos = detail::read_chunk_lines(chunk);
  REQUIRE_MESSAGE(protos.ok(), protos.status().message());

  std::map<std::pair<int, int>, std::vector<int>> from_lua;
  lua_pushvalue(L, -1);
  from_lua[{0, 0}] = active_lines(L);  // the main chunk, before it runs
  REQUIRE(lua_pcall(L, 0, 0, 0) == LUA_OK);
  std::set<const void*> seen;
  lua_pushglobaltable(L);
  collect_functions(L, seen, from_lua);

  // main, varargs, adder, its closure, never, the loop's closure, GAP, LONG
  CHECK(protos->size() == 8);
  CHECK(from_lua.size() == 7);  // every one but `never`
  for (const auto& [where, lines] : from_lua) {
    INFO("function at lines ", where.first, "-", where.second);
    const auto it = std::find_if(protos->begin(), protos->end(), [&](const detail::PrototypeLines& p) {
      return p.line_defined == where.first && p.last_line_defined == where.second;
    });
    REQUIRE(it != protos->end());
    CHECK(it->lines == lines);
  }
  // The one the API cannot reach has its lines too.
  const auto never = std::find_if(protos->begin(), protos->end(),
                                  [](const detail::PrototypeLines& p) { return p.line_defined == 10; });
  REQUIRE(never != protos->end());
  CHECK(never->lines == std::vector<int>{11, 12, 13});
  // A vararg function's first line is its first statement, not its header.
  CHECK(protos->at(1).is_vararg);
  CHECK(protos->at(1).lines == std::vector<int>{2, 3, 4});
}

TEST_CASE("the chunk reader refuses what is not a whole Lua 5.4 chunk") {
  std::unique_ptr<lua_State, StateCloser> state(luaL_newstate());
  lua_State* L = state.get();
  REQUIRE(luaL_loadstring(L, "local x = 1\nreturn function() return x end\n") == LUA_OK);
  auto dump = [&](int strip) {
    std::string chunk;
    lua_pushvalue(L, -1);
    lua_dump(
        L,
        [](lua_State*, const void* p, size_t n, void* ud) {
          static_cast<std::string*>(ud)->append(static_cast<const char*>(p), n);
          return 0;
        },
        &chunk, strip);
    lua_pop(L, 1);
    return chunk;
  };
  const std::string whole = dump(0);
  REQUIRE(detail::read_chunk_lines(whole).ok());
  CHECK_FALSE(detail::read_chunk_lines(dump(1)).ok());  // stripped: no lines to read
  CHECK_FALSE(detail::read_chunk_lines("").ok());
  CHECK_FALSE(detail::read_chunk_lines("local x = 1").ok());
  CHECK_FALSE(detail::read_chunk_lines(whole + "x").ok());
  for (size_t n = 0; n < whole.size(); ++n) {
    INFO("cut at ", n);
    CHECK_FALSE(detail::read_chunk_lines(whole.substr(0, n)).ok());
  }
}

TEST_CASE("the chunk reader finds the upvalues a function can assign, itself or through a nested function") {
  std::unique_ptr<lua_State, StateCloser> state(luaL_newstate());
  lua_State* L = state.get();
  REQUIRE(luaL_loadstring(L, R"lua(
local a, b, c = 1, 2, 3
local function reads() return a + b end
local function sets() a = a + 1 end
local function deep() return function() return function() local f = function() c = 0 end; f(); return b end end end
local function own_local() local x = a; return function() x = 2 end, b end
local function env() _ENV = {} end
return reads, sets, deep, own_local, env
)lua") == LUA_OK);
  REQUIRE(lua_pcall(L, 0, 5, 0) == LUA_OK);
  // The names of the upvalues of the function at `f` the reader says it can
  // assign, from a dump stripped or not.
  auto assigned = [&](int f, int strip) {
    std::string chunk;
    lua_pushvalue(L, f);
    lua_dump(
        L,
        [](lua_State*, const void* p, size_t n, void* ud) {
          static_cast<std::string*>(ud)->append(static_cast<const char*>(p), n);
          return 0;
        },
        &chunk, strip);
    lua_pop(L, 1);
    detail::UpvalueSet set;
    if (!detail::assignable_upvalues(chunk, &set)) return std::string("unknown");
    std::string names;
    for (int i = 1; const char* name = lua_getupvalue(L, f, i); ++i) {
      lua_pop(L, 1);
      if (set.test(static_cast<size_t>(i - 1))) names += std::string(names.empty() ? "" : " ") + name;
    }
    return names;
  };
  for (int strip = 0; strip <= 1; ++strip) {
    INFO("strip = ", strip);
    CHECK(assigned(1, strip) == "");
    CHECK(assigned(2, strip) == "a");
    CHECK(assigned(3, strip) == "c");  // two levels down, through closures made at each call
    CHECK(assigned(4, strip) == "");   // its own local, a new one per call
    CHECK(assigned(5, strip) == "_ENV");
  }
  detail::UpvalueSet set;
  CHECK_FALSE(detail::assignable_upvalues("", &set));
  CHECK_FALSE(detail::assignable_upvalues("local x = 1", &set));
}

TEST_CASE("executable lines count every function including the never called one and the file body") {
  auto lines = detail::executable_lines(SandboxLimits{}, "rules/p.lua", kCoverageRules);
  REQUIRE_MESSAGE(lines.ok(), lines.status().message());
  CHECK(*lines == std::vector<int>{1, 4, 5, 8, 9, 11, 12, 14, 15, 16, 17, 19, 20});

  auto broken = detail::executable_lines(SandboxLimits{}, "rules/p.lua", "function classify(\n");
  REQUIRE_FALSE(broken.ok());
  CHECK(broken.status().message().rfind("rules/p.lua:2:", 0) == 0);
  SandboxLimits small;
  small.max_source_bytes = 10;
  CHECK_FALSE(detail::executable_lines(small, "rules/p.lua", kCoverageRules).ok());
}

TEST_CASE("a traced call records the lines of the branch it took in order") {
  CallProbe load = probe_for(true, false);
  auto box = sandbox(kCoverageRules, {}, &load);
  CHECK(load.lines_hit == std::vector<int>{1, 5, 12, 14, 20});  // the file body

  CallProbe plan = probe_for(true, false);
  auto r = call(*box, "plan", 100, &plan);
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  CHECK(plan.trace == std::vector<int>{15, 8, 9, 16, 17});
  CHECK(plan.lines_hit == std::vector<int>{8, 9, 15, 16, 17});
  CHECK_FALSE(plan.trace_truncated);

  CallProbe format = probe_for(true, false);
  r = call(*box, "format", 5, &format);
  REQUIRE(r.ok());
  CHECK(format.trace == std::vector<int>{15, 8, 11, 16, 19});

  // Between probes nothing is traced, and the next probe starts empty.
  REQUIRE(call(*box, "plan", 100).ok());
  CallProbe again = probe_for(true, false);
  REQUIRE(call(*box, "format", 5, &again).ok());
  CHECK(again.trace == format.trace);
}

TEST_CASE("a trace collapses repeats of one line and stops at its bound while the hits go on") {
  auto box = sandbox(R"lua(function classify(step, ctx)
  local x = 0
  for i = 1, step.input_tokens do x = x + i end
  for i = 1, step.input_tokens do
    x = x + i
  end
  return "cheap"
end
)lua");
  CallProbe short_run = probe_for(true, false);
  REQUIRE(call(*box, "r", 3, &short_run).ok());
  // The one-line loop shows once; the two-line loop alternates.
  CHECK(short_run.trace == std::vector<int>{2, 3, 4, 5, 4, 5, 4, 5, 4, 7});

  CallProbe long_run = probe_for(true, false);
  REQUIRE(call(*box, "r", 10'000, &long_run).ok());
  CHECK(long_run.trace_truncated);
  CHECK(long_run.trace.size() == detail::kMaxTracedLines);
  CHECK(long_run.lines_hit == std::vector<int>{2, 3, 4, 5, 7});
}

TEST_CASE("instruction counts are exact and deterministic and linear in a loop's iterations") {
  const char* const kLoop = R"lua(function classify(step, ctx)
  local x = 0
  for i = 1, step.input_tokens do x = x + i end
  return { tier = "cheap", reason = "sum " .. x }
end
)lua";
  auto box = sandbox(kLoop);
  auto count = [&](std::int64_t n) {
    CallProbe p = probe_for(false, true);
    auto r = call(*box, "r", n, &p);
    REQUIRE_MESSAGE(r.ok(), r.status().message());
    return p.instruction_count;
  };
  const std::int64_t none = count(0), hundred = count(100), two_hundred = count(200), thousand = count(1000);
  CHECK(none > 0);
  CHECK(count(100) == hundred);  // the same call costs the same
  const std::int64_t per_iteration = (two_hundred - hundred) / 100;
  CHECK(per_iteration >= 2);
  CHECK(two_hundred - hundred == 100 * per_iteration);
  CHECK(hundred - none == 100 * per_iteration);
  CHECK(thousand - none == 1000 * per_iteration);

  // A rule without the loop costs less than the loop's empty run.
  auto flat = sandbox("function classify(step, ctx) return 'cheap' end\n");
  CallProbe p = probe_for(false, true);
  REQUIRE(call(*flat, "r", 0, &p).ok());
  CHECK(p.instruction_count > 0);
  CHECK(p.instruction_count < none);

  // Lines and counts together change neither.
  CallProbe both = probe_for(true, true);
  REQUIRE(call(*box, "r", 100, &both).ok());
  CHECK(both.instruction_count == hundred);
}

TEST_CASE("a probe never moves the point where the budget stops a call") {
  SandboxLimits limits;
  limits.instructions_per_call = 10'000;
  const char* const kLoop = R"lua(function classify(step, ctx)
  local x = 0
  for i = 1, step.input_tokens do x = x + i end
  return "cheap"
end
)lua";
  // Around the limit, plain and probed calls pass or fail together.
  for (std::int64_t n = 2'000; n <= 6'000; n += 250) {
    INFO("iterations: ", n);
    auto plain = sandbox(kLoop, limits);
    auto probed = sandbox(kLoop, limits);
    CallProbe p = probe_for(true, true);
    const bool plain_ok = call(*plain, "r", n).ok();
    const bool probed_ok = call(*probed, "r", n, &p).ok();
    CHECK(plain_ok == probed_ok);
    CHECK(probed->poisoned() == !probed_ok);
  }
  // An endless loop runs exactly the budget, then stays stopped.
  auto box = sandbox("function classify(step, ctx) while true do end end\n");
  CallProbe p = probe_for(true, true);
  auto r = call(*box, "r", 0, &p);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "rules/p.lua:1: instruction budget of 1000000 exceeded");
  CHECK(p.instruction_count == 1'000'000);
  CHECK(p.trace == std::vector<int>{1});
  CHECK(box->poisoned());
}

TEST_CASE("bytes allocated are deterministic and grow with what the rules build") {
  auto box = sandbox(R"lua(local function depth(n)
  if n > 0 then return 1 + depth(n - 1) end
  return 0
end
function classify(step, ctx)
  if step.role == "deep" then depth(150) end
  local t = {}
  for i = 1, step.input_tokens do t[i] = { i } end
  return "cheap"
end
)lua");
  auto bytes = [&](std::int64_t n, const std::string& role = "r") {
    CallProbe p;
    auto r = call(*box, role, n, &p);
    REQUIRE_MESSAGE(r.ok(), r.status().message());
    return p.bytes_allocated;
  };
  const std::int64_t none = bytes(0), hundred = bytes(100), thousand = bytes(1000);
  CHECK(none > 0);         // the step and ctx tables
  CHECK(none < 4096);
  CHECK(bytes(0) == none);  // earlier calls leave nothing that changes the next one's count
  CHECK(bytes(100) == hundred);
  CHECK(bytes(0, "deep") > none);  // 150 nested calls grow the stack and the call frames
  CHECK(bytes(0) == none);         // ... which the next call does not pay for
  REQUIRE(call(*box, "r", 5000).ok());
  CHECK(bytes(100) == hundred);
  CHECK(hundred > none + 100 * 16);  // at least a table header per element
  CHECK(thousand > hundred * 5);
}

}  // TEST_SUITE("rule_tools")
