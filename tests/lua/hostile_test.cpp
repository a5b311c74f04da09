// The hostile-rules suite: every tests/lua/hostile/*.lua attacks the sandbox one
// way (the header of each file says how and what error it must produce; see
// tests/lua/hostile/README.md). Each run of rules code (the file body, each
// call) must end within the sandbox's time limit plus 50 ms of the calling
// thread's CPU time (the bound the sandbox guarantees; see kCpuBound), with a
// clear error naming the file, fall back to the workload's fallback tier,
// keep the process inside its memory bound, and leave the host able to serve
// the next engine; and do the same again under the probes of coverage, cost
// and explain. Wall time, which depends on the machine's load, gets only a
// loose sanity bound. A few behaviours are clearer as direct LuaSandbox
// tests, at the end.
#include <doctest/doctest.h>

#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "rules/decide.h"
#include "lua/sandbox.h"
#include "rules/rule_set.h"
#include "test_util.h"

extern "C" {
#include <lauxlib.h>
#include <lua.h>
}

using namespace switchboard;
using switchboard::testing::engine_with_rules;
using switchboard::testing::TempDir;
using Clock = std::chrono::steady_clock;

namespace {

// The sandbox ends every run within time_limit_ms (1000, small_config keeps
// the default) plus 50 ms: a clock read comes at least every ~20 ms of
// work whatever the rules do. A decide() does a little more than its one
// run, which kAllowance covers: building the step, closing a killed state
// (a full collection of up to the 16 MiB cap) and, on the call after a kill,
// opening a fresh one (the hostile files' bodies build a few long strings,
// a few ms each); and the CPU clock's own accounting. Measured: the slowest
// attack ends within ~10 ms of the limit.
constexpr std::int64_t kTimeLimitMs = 1000;
constexpr std::int64_t kGuaranteeMs = 50;
constexpr std::int64_t kAllowanceMs = 100;
constexpr auto kCpuBound = std::chrono::milliseconds(kTimeLimitMs + kGuaranteeMs + kAllowanceMs);
// Wall time only has to show that nothing hangs: generous enough for a
// loaded 2-core machine running a sanitizer build.
constexpr auto kWallBound = std::chrono::seconds(30);
constexpr std::int64_t kMiB = 1024 * 1024;
constexpr std::int64_t kMemoryCap = 16 * kMiB;   // small_config() keeps the default
constexpr std::int64_t kMemorySlack = 64 * kMiB;  // what the host may add on top of it
constexpr const char* kChunk = "rules/w.lua";    // how the rules are named in messages
constexpr const char* kErrorMarker = "-- <- error";

constexpr const char* kWellBehavedRules = R"lua(
  local PREMIUM_ROLES = { plan = true }
  function classify(step, ctx)
    if PREMIUM_ROLES[step.role] then return { tier = "premium", reason = "planning" } end
    return "cheap"
  end
)lua";

// One tests/lua/hostile/*.lua file and what its header promises.
struct HostileCase {
  std::string name;    // file stem
  std::string source;
  std::string attack;  // "-- attack:"
  std::string expect;  // "-- expect:", the error substring
  bool at_load = false;              // "-- phase: load"
  std::vector<std::string> calls;    // "-- expect-calls:", or {"error", "error"}
  bool check_memory = false;         // "-- check-memory"
  int error_line = 0;                // the line marked "-- <- error", 0 if none
};

std::string trim(std::string s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t\r") - first + 1);
}

HostileCase parse_case(const std::filesystem::path& path) {
  HostileCase c;
  c.name = path.stem().string();
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  c.source = text.str();
  std::istringstream lines(c.source);
  std::string line;
  for (int n = 1; std::getline(lines, line); ++n) {
    auto header = [&](const std::string& key, std::string& value) {
      if (line.rfind(key, 0) != 0) return false;
      value = trim(line.substr(key.size()));
      return true;
    };
    std::string value;
    if (header("-- attack:", c.attack) || header("-- expect:", c.expect)) continue;
    if (header("-- phase:", value)) {
      c.at_load = value == "load";
    } else if (header("-- expect-calls:", value)) {
      std::istringstream tokens(value);
      for (std::string t; tokens >> t;) c.calls.push_back(t);
    } else if (header("-- check-memory", value)) {
      c.check_memory = true;
    } else if (line.find(kErrorMarker) != std::string::npos) {
      c.error_line = n;
    }
  }
  if (c.calls.empty()) c.calls = {"error", "error"};
  return c;
}

std::vector<HostileCase> hostile_cases() {
  std::vector<std::filesystem::path> paths;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::filesystem::path(SWITCHBOARD_TESTS_DIR) / "lua" / "hostile")) {
    if (entry.path().extension() == ".lua") paths.push_back(entry.path());
  }
  std::sort(paths.begin(), paths.end());
  std::vector<HostileCase> cases;
  for (const auto& p : paths) cases.push_back(parse_case(p));
  return cases;
}

std::int64_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

// Peak resident memory since the last reset_peak_rss() (VmHWM), or 0.
std::int64_t peak_rss_bytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return 0;
}

// Resets VmHWM to the current RSS; false where the kernel does not allow it.
bool reset_peak_rss() {
  std::ofstream clear_refs("/proc/self/clear_refs");
  clear_refs << "5";
  clear_refs.flush();
  return clear_refs.good() && peak_rss_bytes() <= rss_bytes() + kMiB;
}

bool printable_line(const std::string& s) {
  return std::none_of(s.begin(), s.end(), [](char ch) {
    const auto u = static_cast<unsigned char>(ch);
    return u < 0x20 || u == 0x7f;
  });
}

// A rule error must be one short printable line that names the file, and the
// line when the case marks one.
// A run that goes to its instruction budget may meet the time limit first on
// a loaded machine (a probed run is several times slower per instruction, and
// an attack whose CPU is all in C counts few instructions): either kill
// contains it.
void check_rule_error(const HostileCase& c, const std::string& message) {
  INFO("error: ", message);
  const bool timed_out_first = c.expect.find("instruction budget") != std::string::npos &&
                               message.find("time limit of") != std::string::npos;
  CHECK(message.find(timed_out_first ? "time limit of" : c.expect) != std::string::npos);
  CHECK(message.rfind(std::string(kChunk) + ":", 0) == 0);
  if (c.error_line > 0) {
    CHECK(message.find(std::string(kChunk) + ":" + std::to_string(c.error_line) + ":") !=
          std::string::npos);
  }
  CHECK(printable_line(message));
  CHECK(message.size() <= 512);
}

Step attack_step(int call) {
  Step step;
  step.role = "attack";
  step.input_tokens = 1000;
  step.meta = {{"call", std::int64_t{call}}};
  return step;
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// CPU time the calling thread has used: what the sandbox's bound is about,
// whatever else the machine runs.
std::chrono::nanoseconds thread_cpu_now() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

// Times one piece of work in both clocks.
struct Stopwatch {
  Clock::time_point wall = Clock::now();
  std::chrono::nanoseconds cpu = thread_cpu_now();
  Clock::duration wall_elapsed() const { return Clock::now() - wall; }
  std::chrono::nanoseconds cpu_elapsed() const { return thread_cpu_now() - cpu; }
  // "1.234 s wall, 1.010 s cpu"
  std::string describe() const {
    return std::to_string(seconds(wall_elapsed())) + " s wall, " + std::to_string(seconds(cpu_elapsed())) +
           " s cpu";
  }
};

// The bounds every timed piece of a hostile run must meet.
void check_bounds(const Stopwatch& w) {
  const auto cpu = w.cpu_elapsed();
  const auto wall = w.wall_elapsed();
  INFO("cpu ", seconds(cpu), " s, wall ", seconds(wall), " s");
  CHECK(cpu <= kCpuBound);
  CHECK(wall < kWallBound);
}

// With SWITCHBOARD_HOSTILE_TIMES set, prints what each attack produced and how long it took.
void report(const std::string& line) {
  if (std::getenv("SWITCHBOARD_HOSTILE_TIMES") != nullptr) std::printf("hostile: %s\n", line.c_str());
}

void check_host_survives() {
  TempDir dir;
  auto engine = engine_with_rules(dir, kWellBehavedRules);
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  Step plan;
  plan.role = "plan";
  plan.input_tokens = 500;
  auto d = (*engine)->decide("w", plan);
  REQUIRE(d.ok());
  CHECK_FALSE(d->error.has_value());
  CHECK(d->tier == "premium");
  CHECK(d->reason == "planning");
}

void run_case(const HostileCase& c) {
  INFO("attack: ", c.attack);
  REQUIRE_FALSE(c.attack.empty());
  const bool expects_error =
      c.at_load || std::find(c.calls.begin(), c.calls.end(), "error") != c.calls.end();
  if (expects_error) REQUIRE_FALSE(c.expect.empty());

  const std::int64_t rss_before = rss_bytes();
  const bool peak_reset = c.check_memory && reset_peak_rss();

  TempDir dir;
  Stopwatch open;
  auto engine = engine_with_rules(dir, c.source);
  check_bounds(open);
  report(c.name + ": open " + open.describe() +
         (engine.ok() ? std::string() : " -> " + engine.status().message()));
  if (c.at_load) {
    REQUIRE_FALSE(engine.ok());
    CHECK(engine.status().code() == Status::Code::kRuleError);
    check_rule_error(c, engine.status().message());
  } else {
    REQUIRE_MESSAGE(engine.ok(), engine.status().message());
    const Workload& workload = *(*engine)->config().find_workload("w");
    const Tier& fallback = *(*engine)->config().find_tier(workload.fallback_tier);
    for (size_t i = 0; i < c.calls.size(); ++i) {
      const int call = static_cast<int>(i) + 1;
      INFO("call ", call);
      Stopwatch watch;
      auto d = (*engine)->decide("w", attack_step(call));
      check_bounds(watch);
      REQUIRE(d.ok());
      report(c.name + ": call " + std::to_string(call) + " " + watch.describe() + " -> " +
             (d->error ? *d->error : "tier " + d->tier));
      if (c.calls[i] == "error") {
        REQUIRE(d->error.has_value());
        check_rule_error(c, *d->error);
        CHECK(d->tier == fallback.name);
        CHECK(d->model == fallback.models.front());
        CHECK(d->reason == "fallback tier: the rules failed");
      } else {
        CHECK_MESSAGE(!d->error.has_value(), d->error.value_or(""));
        CHECK(d->tier == c.calls[i]);
        CHECK(d->reason.size() <= 512);
        CHECK(printable_line(d->reason));
      }
    }
    // Closing the state runs no rules code either (no finalizer can be left behind).
    Stopwatch close;
    engine->reset();
    check_bounds(close);
  }

  if (c.check_memory) {
    const std::int64_t rss_after = rss_bytes();
    report(c.name + ": rss " + std::to_string(rss_before / kMiB) + " -> " +
           std::to_string(rss_after / kMiB) + " MiB" +
           (peak_reset ? ", peak " + std::to_string(peak_rss_bytes() / kMiB) + " MiB" : ""));
    CHECK(rss_after - rss_before < kMemoryCap + kMemorySlack);
    if (peak_reset) CHECK(peak_rss_bytes() - rss_before < kMemoryCap + kMemorySlack);
  }
  check_host_survives();
}

// The same attack under the probes `switchboard test --coverage --bench` and
// `route --explain` use: every line traced and every instruction counted, in
// the file body and in each call. Tracing must not let anything escape.
void run_probed_case(const HostileCase& c) {
  INFO("attack: ", c.attack);
  TempDir dir;
  dir.write("rules/w.lua", c.source);
  auto config = load_config(switchboard::testing::write_small_config(dir));
  REQUIRE_MESSAGE(config.ok(), config.status().message());
  const Workload& workload = *config->find_workload("w");
  auto probe = [] {
    detail::CallProbe p;
    p.lines = true;
    p.instructions = true;
    return p;
  };
  REQUIRE(config->sandbox.time_limit_ms == kTimeLimitMs);
  detail::CallProbe load = probe();
  Stopwatch open;
  auto rules = detail::WorkloadRules::compile(config->sandbox, kChunk, c.source, &load);
  check_bounds(open);
  report(c.name + ": probed open " + open.describe());
  if (c.at_load) {
    REQUIRE_FALSE(rules.ok());
    check_rule_error(c, rules.status().message());
    return;
  }
  REQUIRE_MESSAGE(rules.ok(), rules.status().message());
  for (size_t i = 0; i < c.calls.size(); ++i) {
    const int call = static_cast<int>(i) + 1;
    INFO("call ", call);
    detail::CallProbe p = probe();
    Stopwatch watch;
    const Decision d = detail::decide_with(*config, workload, **rules, attack_step(call), {}, nullptr, &p);
    check_bounds(watch);
    report(c.name + ": probed call " + std::to_string(call) + " " + watch.describe() + ", " +
           std::to_string(p.instruction_count) + " instructions, " + std::to_string(p.trace.size()) +
           " lines -> " + (d.error ? *d.error : "tier " + d.tier));
    CHECK(p.instruction_count <= config->sandbox.instructions_per_call);
    CHECK(p.trace.size() <= detail::kMaxTracedLines);
    if (c.calls[i] == "error") {
      REQUIRE(d.error.has_value());
      check_rule_error(c, *d.error);
    } else {
      CHECK_MESSAGE(!d.error.has_value(), d.error.value_or(""));
      CHECK(d.tier == c.calls[i]);
    }
  }
}

}  // namespace

// One test for both runs of each file, so that they never run at once: two
// runs of the slow attacks side by side would each take longer than alone.
TEST_CASE("every hostile rules file ends within the time limit plus 50 ms of CPU with a clear error traced or not") {
  const std::vector<HostileCase> cases = hostile_cases();
  REQUIRE(cases.size() >= 25);
  for (const HostileCase& c : cases) {
    SUBCASE(c.name.c_str()) { run_case(c); }
    SUBCASE((c.name + " traced and counted").c_str()) { run_probed_case(c); }
  }
}

TEST_CASE("a precompiled rules file is refused at load") {
  // Real bytecode of a valid rules file, made with an unsandboxed state.
  lua_State* L = luaL_newstate();
  REQUIRE(L != nullptr);
  REQUIRE(luaL_loadstring(L, "function classify() return 'premium' end") == LUA_OK);
  std::string bytecode;
  lua_dump(
      L,
      [](lua_State*, const void* p, size_t n, void* ud) {
        static_cast<std::string*>(ud)->append(static_cast<const char*>(p), n);
        return 0;
      },
      &bytecode, 0);
  lua_close(L);
  REQUIRE(bytecode.rfind("\x1bLua", 0) == 0);

  struct Variant {
    const char* what;
    std::string source;
    const char* expect;
  };
  const Variant variants[] = {
      {"bytecode", bytecode, "precompiled (binary) chunks are not accepted"},
      {"bytecode after a shebang line", "#!/usr/bin/lua\n" + bytecode, "rules/w.lua:1:"},
      {"bytecode after a blank line", "\n" + bytecode, "rules/w.lua:2:"},
  };
  for (const Variant& v : variants) {
    INFO(v.what);
    TempDir dir;
    auto engine = engine_with_rules(dir, v.source);
    REQUIRE_FALSE(engine.ok());
    CHECK(engine.status().code() == Status::Code::kRuleError);
    CHECK(engine.status().message().rfind("rules/w.lua:", 0) == 0);
    CHECK(engine.status().message().find(v.expect) != std::string::npos);
    CHECK(printable_line(engine.status().message()));
  }
  check_host_survives();
}

TEST_CASE("a rules file over max_source_bytes is refused before it is compiled") {
  TempDir dir;
  std::string source = "function classify() return 'premium' end\n";
  source += "--" + std::string(300 * 1024, 'x') + "\n";
  auto engine = engine_with_rules(dir, source);
  REQUIRE_FALSE(engine.ok());
  CHECK(engine.status().message().find("rules/w.lua: source is") == 0);
  CHECK(engine.status().message().find("over the limit of 262144") != std::string::npos);
}

TEST_CASE("after a budget, time or memory kill the next decide on the same engine works") {
  TempDir dir;
  auto engine = engine_with_rules(dir, R"lua(
    local big = string.rep("a", 4 << 20)
    function classify(step, ctx)
      if step.role == "loop" then while true do end end
      if step.role == "slow" then while true do utf8.len(big) end end
      if step.role == "big" then local s = string.rep("x", 1 << 30) end
      if step.role == "grow" then
        pcall(function() local t = {} for i = 1, 1e9 do t[i] = { i } end end)
      end
      return { tier = "premium", reason = "role " .. step.role }
    end
  )lua");
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  const std::pair<const char*, const char*> kills[] = {
      {"loop", "instruction budget"},
      {"slow", "time limit"},
      {"big", "memory limit"},
      {"grow", "memory limit"},
  };
  for (const auto& [role, expect] : kills) {
    INFO("killed by ", role);
    Step bad;
    bad.role = role;
    auto d = (*engine)->decide("w", bad);
    REQUIRE(d.ok());
    REQUIRE(d->error.has_value());
    CHECK(d->error->find(expect) != std::string::npos);
    CHECK(d->tier == "cheap");
    for (int i = 0; i < 3; ++i) {
      Step good;
      good.role = "plan";
      auto next = (*engine)->decide("w", good);
      REQUIRE(next.ok());
      CHECK_MESSAGE(!next->error.has_value(), next->error.value_or(""));
      CHECK(next->tier == "premium");
      CHECK(next->reason == "role plan");
    }
  }
}

// ---------------------------------------------------------------- LuaSandbox

namespace {

using detail::LuaSandbox;
using detail::RawDecision;

std::unique_ptr<LuaSandbox> sandbox(const std::string& source) {
  auto box = LuaSandbox::create(SandboxLimits{}, "rules/u.lua", source);
  REQUIRE_MESSAGE(box.ok(), box.status().message());
  return std::move(box).value();
}

Result<RawDecision> call(LuaSandbox& box, const std::string& role = "plan") {
  Step step;
  step.role = role;
  detail::RulesContext ctx;
  ctx.workload = "w";
  ctx.rules_version = "v1";
  return box.classify(step, 100, ctx);
}

// classify must return "ok"; anything else is the rules' own description of what went wrong.
void check_ok(LuaSandbox& box, const std::string& role = "plan") {
  auto r = call(box, role);
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  REQUIRE(r->name.has_value());
  CHECK_MESSAGE(*r->name == "ok", *r->name);
}

}  // namespace

TEST_CASE("sandbox: the budget stays exhausted inside pcall and the state is then poisoned") {
  auto box = sandbox(R"lua(
    function classify(step, ctx)
      local caught = 0
      for i = 1, 10 do
        if not pcall(function() while true do end end) then caught = caught + 1 end
      end
      return { tier = "premium", reason = "caught " .. caught }
    end
  )lua");
  auto r = call(*box);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("rules/u.lua:") == 0);
  CHECK(r.status().message().find("instruction budget of 1000000 exceeded") != std::string::npos);
  CHECK(box->poisoned());
  auto again = call(*box);
  REQUIRE_FALSE(again.ok());
  CHECK(again.status().code() == Status::Code::kInternal);
}

TEST_CASE("sandbox: collectgarbage('collect') is refused and 'count' works") {
  auto box = sandbox(R"lua(
    function classify(step, ctx)
      local kb = collectgarbage("count")
      if type(kb) ~= "number" or kb <= 0 then return "count gave " .. tostring(kb) end
      if collectgarbage() ~= kb and type(collectgarbage()) ~= "number" then return "default is not count" end
      for _, opt in ipairs({ "collect", "stop", "restart", "step", "incremental", "generational" }) do
        local ok, err = pcall(collectgarbage, opt)
        if ok then return opt .. " was allowed" end
        if not err:find("is not allowed in rules", 1, true) then return err end
      end
      return "ok"
    end
  )lua");
  check_ok(*box);
}

TEST_CASE("sandbox: rawset on a frozen table or on _G is refused") {
  auto box = sandbox(R"lua(
    local T = { a = 1 }
    function classify(step, ctx)
      local ok, err = pcall(rawset, T, "b", 2)
      if ok or not err:find("cannot modify a table of the rules' loaded state", 1, true) then
        return "rawset(T): " .. tostring(err)
      end
      ok, err = pcall(rawset, T, "a", 2)
      if ok or T.a ~= 1 then return "rawset(T, existing key) was allowed" end
      ok, err = pcall(rawset, _G, "x", 1)
      if ok or not err:find("cannot set global 'x'", 1, true) then return "rawset(_G): " .. tostring(err) end
      ok, err = pcall(rawset, string, "upper", print)
      if ok then return "rawset(string) was allowed" end
      local fresh = {}
      rawset(fresh, "k", "v")
      if fresh.k ~= "v" then return "rawset on a fresh table failed" end
      return "ok"
    end
  )lua");
  check_ok(*box);
  check_ok(*box);
}

TEST_CASE("sandbox: getmetatable('') does not return the real string metatable") {
  auto box = sandbox(R"lua(
    function classify(step, ctx)
      local mt = getmetatable("")
      if type(mt) ~= "string" then return "getmetatable('') is a " .. type(mt) end
      if pcall(setmetatable, "", {}) then return "setmetatable on a string was allowed" end
      if ("abc"):upper() ~= "ABC" then return "string methods broken" end
      return "ok"
    end
  )lua");
  check_ok(*box);
}

TEST_CASE("sandbox: next, pairs, #, ipairs, rawget and rawlen read frozen tables correctly") {
  auto box = sandbox(R"lua(
    local LIST = { 10, 20, 30 }
    local MAP = { a = 1, b = 2, __tag = "kept in place" }
    local MIXED = { "x", "y", k = "v" }
    local function count(t, iter)
      local n, sum = 0, 0
      for k, v in iter(t) do
        n = n + 1
        if type(v) == "number" then sum = sum + v end
      end
      return n, sum
    end
    function classify(step, ctx)
      if #LIST ~= 3 or rawlen(LIST) ~= 3 then return "# gave " .. #LIST .. "/" .. rawlen(LIST) end
      if LIST[2] ~= 20 or rawget(LIST, 3) ~= 30 or rawget(LIST, 4) ~= nil then return "index/rawget" end
      local n, sum = count(LIST, ipairs)
      if n ~= 3 or sum ~= 60 then return "ipairs gave " .. n .. " items" end
      n, sum = count(LIST, pairs)
      if n ~= 3 or sum ~= 60 then return "pairs(LIST) gave " .. n .. " items" end
      n, sum = count(MAP, pairs)
      if n ~= 3 or sum ~= 3 then return "pairs(MAP) gave " .. n .. " items" end
      if rawget(MAP, "__tag") ~= "kept in place" or MAP.a ~= 1 then return "rawget(MAP)" end
      local seen, k, v = 0, next(MAP)
      while k ~= nil do
        seen = seen + 1
        if MAP[k] ~= v then return "next gave a wrong value for " .. tostring(k) end
        k, v = next(MAP, k)
      end
      if seen ~= 3 then return "next visited " .. seen .. " keys" end
      if next(MIXED) == nil or #MIXED ~= 2 or MIXED.k ~= "v" then return "MIXED" end
      if table.concat(LIST, ",") ~= "10,20,30" then return "table.concat gave " .. table.concat(LIST, ",") end
      if select("#", table.unpack(LIST)) ~= 3 then return "table.unpack" end
      return "ok"
    end
  )lua");
  check_ok(*box);
  check_ok(*box);
}

TEST_CASE("sandbox: a metatable-based class defined at load works in classify") {
  auto box = sandbox(R"lua(
    local Shape = {}
    Shape.__index = Shape
    Shape.__tostring = function(s) return s.kind .. "(" .. s:area() .. ")" end
    Shape.__eq = function(a, b) return a:area() == b:area() end
    function Shape.new(kind, w, h) return setmetatable({ kind = kind, w = w, h = h }, Shape) end
    function Shape:area() return self.w * self.h end

    local Square = setmetatable({}, { __index = Shape })
    Square.__index = Square
    Square.__tostring = Shape.__tostring
    Square.__eq = Shape.__eq
    function Square.new(side) return setmetatable(Shape.new("square", side, side), Square) end
    function Square:side() return self.w end

    local UNIT = Square.new(1)  -- an object made at load is frozen with its class

    function classify(step, ctx)
      local r = Shape.new("rect", 2, 8)
      local s = Square.new(4)
      if r:area() ~= 16 or s:area() ~= 16 or s:side() ~= 4 then return "methods" end
      if tostring(s) ~= "square(16)" then return "__tostring gave " .. tostring(s) end
      if not (r == s) then return "__eq" end
      if UNIT:area() ~= 1 or tostring(UNIT) ~= "square(1)" then return "frozen instance" end
      s.w = 5
      if s:area() ~= 20 then return "instance fields are not writable" end
      if pcall(function() UNIT.w = 3 end) then return "frozen instance was writable" end
      return "ok"
    end
  )lua");
  check_ok(*box);
  check_ok(*box);
}

TEST_CASE("sandbox: an upvalue reassigned by classify is restored before the next call") {
  auto box = sandbox(R"lua(
    local mode = "fresh"
    local unset            -- nil at load: must come back as nil, not as a neighbour's value
    local helper = function() return "original" end
    function classify(step, ctx)
      if mode ~= "fresh" or unset ~= nil or helper() ~= "original" then
        return "saw " .. mode .. "/" .. tostring(unset) .. "/" .. helper()
      end
      mode = "dirty"
      unset = step
      helper = function() return "replaced" end
      return "ok"
    end
  )lua");
  for (int i = 0; i < 3; ++i) check_ok(*box);
}

TEST_CASE("sandbox: xpcall's handler receives the error and its result") {
  auto box = sandbox(R"lua(
    function classify(step, ctx)
      local ok, msg = xpcall(function() error("boom") end, function(e) return "handled: " .. e end)
      if ok or msg ~= "handled: rules/u.lua:3: boom" then return tostring(msg) end
      local ok2, a, b = xpcall(function(x, y) return x + y, x * y end, tostring, 3, 4)
      if not ok2 or a ~= 7 or b ~= 12 then return "xpcall success path" end
      local ok3, e3 = xpcall(error, function(e) return e.code end, { code = 42 })
      if ok3 or e3 ~= 42 then return "table error object gave " .. tostring(e3) end
      local ok4, e4 = xpcall(error, function(e) error("handler failed") end, "x")
      if ok4 or not tostring(e4):find("handler failed", 1, true) then return "failing handler" end
      return "ok"
    end
  )lua");
  check_ok(*box);
}

TEST_CASE("sandbox: a string.gmatch iterator kept from load restarts on every call") {
  auto box = sandbox(R"lua(
    local words = string.gmatch("one two three", "%a+")
    function classify(step, ctx)
      local first, second = words(), words()
      if first ~= "one" or second ~= "two" then return tostring(first) .. "/" .. tostring(second) end
      return "ok"
    end
  )lua");
  for (int i = 0; i < 3; ++i) check_ok(*box);
}

TEST_CASE("sandbox: the table library still works on fresh tables and refuses frozen ones") {
  auto box = sandbox(R"lua(
    local FROZEN = { 3, 1, 2 }
    function classify(step, ctx)
      local t = { 1, 2, 3 }
      table.insert(t, 4)
      table.insert(t, 1, 0)
      if table.concat(t, ",") ~= "0,1,2,3,4" then return "insert gave " .. table.concat(t, ",") end
      if table.remove(t, 1) ~= 0 or table.remove(t) ~= 4 then return "remove" end
      if table.concat(t, ",") ~= "1,2,3" then return "remove gave " .. table.concat(t, ",") end
      if table.remove({}) ~= nil or table.remove({}, 0) ~= nil then return "remove on empty" end
      local moved = table.move(t, 1, 3, 2, {})
      if moved[1] ~= nil or moved[4] ~= 3 then return "move" end
      local ok, err = pcall(table.insert, t, 9, 1)
      if ok or not err:find("position out of bounds", 1, true) then return "insert bounds: " .. tostring(err) end
      if string.rep("ab", 3, "-") ~= "ab-ab-ab" or string.rep("x", 0) ~= "" then return "rep" end
      for _, f in ipairs({ function() table.insert(FROZEN, 1) end, function() table.remove(FROZEN) end,
                           function() table.sort(FROZEN) end }) do
        if pcall(f) then return "a frozen table was changed" end
      end
      if FROZEN[1] ~= 3 or #FROZEN ~= 3 then return "frozen table changed" end
      return "ok"
    end
  )lua");
  check_ok(*box);
}

TEST_CASE("sandbox: a state nested 20,000 levels deep freezes on a 512 KiB thread stack") {
  // Hosts run decisions on their own threads, often with small stacks: the
  // freeze walk must not recurse on the C stack once per nesting level.
  struct Job {
    std::string error;
    std::string answer;
  } job;
  auto run = [](void* arg) -> void* {
    auto* job = static_cast<Job*>(arg);
    auto box = LuaSandbox::create(SandboxLimits{}, "rules/u.lua", R"lua(
      local deep = "ok"
      for i = 1, 20000 do deep = { deep } end
      local f = function() return "ok" end
      for i = 1, 20000 do local g = f; f = function() return g() end end
      local chain = f
      function classify(step, ctx)
        local t = deep
        while type(t) == "table" do t = t[1] end
        return chain and t
      end
    )lua");
    if (!box.ok()) {
      job->error = box.status().message();
      return nullptr;
    }
    auto r = call(**box);
    if (!r.ok()) {
      job->error = r.status().message();
    } else {
      job->answer = r->name.value_or("");
    }
    return nullptr;
  };
  pthread_attr_t attr;
  REQUIRE(pthread_attr_init(&attr) == 0);
  REQUIRE(pthread_attr_setstacksize(&attr, 512 * 1024) == 0);
  pthread_t thread;
  REQUIRE(pthread_create(&thread, &attr, run, &job) == 0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
  CHECK_MESSAGE(job.error.empty(), job.error);
  CHECK(job.answer == "ok");
}

TEST_CASE("sandbox: errors from a rules file with a long path name their place once") {
  // Lua shortens long chunk names in positions ("...tail/w.lua:3:"); the
  // message handler must recognise that form and not add a second position.
  const std::string chunk = "rules/" + std::string(90, 'd') + "/w.lua";
  auto box = LuaSandbox::create(SandboxLimits{}, chunk, R"lua(
    function classify(step, ctx)
      if step.role == "nil" then return nil + 1 end
      error("boom", 0)
    end
  )lua");
  REQUIRE_MESSAGE(box.ok(), box.status().message());
  auto count = [](const std::string& s, const std::string& what) {
    size_t n = 0;
    for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
    return n;
  };
  auto arithmetic = call(**box, "nil");
  REQUIRE_FALSE(arithmetic.ok());
  CHECK(count(arithmetic.status().message(), "/w.lua:3:") == 1);
  auto level0 = call(**box, "plan");
  REQUIRE_FALSE(level0.ok());
  CHECK(count(level0.status().message(), "/w.lua:4:") == 1);
  CHECK(level0.status().message().find("/w.lua:4: boom") != std::string::npos);
}
