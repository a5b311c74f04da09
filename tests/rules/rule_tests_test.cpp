// run_rule_tests: *.test.toml cases run in the real sandbox against temp dirs.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "test_util.h"

using namespace switchboard;
using switchboard::testing::TempDir;
using switchboard::testing::kCoverageRules;

namespace {

// Rules for workload w: plan is premium, "bad" answers an unknown tier, crash
// raises at line 5, review is premium with high reasoning pinned, everything
// else is cheap with low reasoning.
const char* const kRules = R"lua(function classify(step, ctx)
  if step.role == "plan" then return "premium" end
  if step.role == "bad" then return { tier = "gold" } end
  if step.role == "crash" then
    error("boom")
  end
  if step.role == "budget" then
    return { tier = "cheap", reason = "left " .. tostring(ctx.budget_left_usd) .. " spent " .. tostring(ctx.spent_usd) }
  end
  if step.role == "review" then return { tier = "premium", reasoning = "high", pin_reasoning = true } end
  return { tier = "cheap", reasoning = "low", reason = "mechanical: " .. step.role }
end
)lua";

// A temp dir holding small_config() with workload w falling back to "premium"
// (default_fallback_tier stays "cheap") and kRules as rules/w.lua.
struct Suite {
  TempDir dir;
  Config config;

  Suite() {
    dir.write("rules/w.lua", kRules);
    std::string text = switchboard::testing::small_config("budget_usd = 50.0\n");
    const std::string from = "rules = \"rules/w.lua\"\nfallback_tier = \"cheap\"";
    text.replace(text.find(from), from.size(), "rules = \"rules/w.lua\"\nfallback_tier = \"premium\"");
    auto loaded = load_config(switchboard::testing::write_config(dir, text));
    REQUIRE_MESSAGE(loaded.ok(), loaded.status().message());
    config = std::move(loaded).value();
  }
  std::string path(const std::string& name) const { return (dir.path() / name).string(); }
  RuleTestReport run(const std::vector<std::string>& paths) const { return run_rule_tests(config, paths); }
};

std::string describe(const RuleTestReport& r) {
  std::string out = std::to_string(r.passed) + " passed, " + std::to_string(r.failed) + " failed";
  for (const RuleTestFailure& f : r.failures) out += "\n  [" + f.case_name + "] " + f.message;
  return out;
}

}  // namespace

TEST_CASE("a test file whose cases all hold passes every case") {
  Suite s;
  const std::string file = s.dir.write("rules/w.test.toml", R"toml(
workload = "w"

[[case]]
name = "format is cheap with low reasoning"
step = { role = "format", input_tokens = 1200, meta = { lang = "go" } }
expect = { tier = "cheap", model = "m-cheap", reasoning = "low", fanout = 1, reason_contains = "mechanical", error = false }

[[case]]
name = "plan is premium"
step = { role = "plan", needs_chain_of_thought = true }
expect = { tier = "premium", model = "m-premium", reasoning = "default", pin_reasoning = false }

[[case]]
name = "review pins high reasoning"
step = { role = "review" }
expect = { tier = "premium", reasoning = "high", pin_reasoning = true }
)toml");
  const RuleTestReport r = s.run({file});
  CHECK_MESSAGE(r.passed == 3, describe(r));
  CHECK(r.failed == 0);
  CHECK(r.failures.empty());
  CHECK(r.files == std::vector<std::string>{file});
}

TEST_CASE("a failing case reports expected against actual at the case's file:line") {
  Suite s;
  const std::string file = s.dir.write("rules/w.test.toml",
                                       "workload = \"w\"\n"
                                       "\n"
                                       "[[case]]\n"
                                       "name = \"format is cheap\"\n"
                                       "step = { role = \"format\" }\n"
                                       "expect = { tier = \"cheap\" }\n"
                                       "\n"
                                       "[[case]]\n"  // line 8
                                       "name = \"plan is cheap too\"\n"
                                       "step = { role = \"plan\" }\n"
                                       "expect = { tier = \"cheap\", reasoning = \"low\", pin_reasoning = true, fanout = 2 }\n");
  const RuleTestReport r = s.run({file});
  CHECK(r.passed == 1);
  CHECK(r.failed == 1);
  REQUIRE(r.failures.size() == 1);
  CHECK(r.failures[0].file == file);
  CHECK(r.failures[0].case_name == "plan is cheap too");
  CHECK(r.failures[0].message == file +
                                     ":8:1: tier: expected \"cheap\", got \"premium\"; reasoning: expected "
                                     "\"low\", got \"default\"; pin_reasoning: expected true, got false; fanout: "
                                     "expected 2, got 1");
}

TEST_CASE("expect.error matches a substring of the rules error, true for any, false for none") {
  Suite s;
  const std::string rules = "rules/w.lua";  // named as the config names the workload's file
  const std::string file = s.dir.write("rules/w.test.toml",
                                       "workload = \"w\"\n"
                                       "[[case]]\n"  // line 2: passes
                                       "name = \"unknown tier, by substring\"\n"
                                       "step = { role = \"bad\" }\n"
                                       "expect = { error = \"unknown tier 'gold'\", tier = \"premium\" }\n"
                                       "[[case]]\n"  // line 6: passes
                                       "name = \"any error\"\n"
                                       "step = { role = \"bad\" }\n"
                                       "expect = { error = true }\n"
                                       "[[case]]\n"  // line 10: fails, other text
                                       "name = \"wrong substring\"\n"
                                       "step = { role = \"bad\" }\n"
                                       "expect = { error = \"timeout\" }\n"
                                       "[[case]]\n"  // line 14: fails, no error happened
                                       "name = \"error expected but none\"\n"
                                       "step = { role = \"format\" }\n"
                                       "expect = { error = \"gold\" }\n"
                                       "[[case]]\n"  // line 18: fails, error = false
                                       "name = \"no error expected\"\n"
                                       "step = { role = \"bad\" }\n"
                                       "expect = { error = false }\n");
  const RuleTestReport r = s.run({file});
  CHECK_MESSAGE(r.passed == 2, describe(r));
  CHECK(r.failed == 3);
  REQUIRE(r.failures.size() == 3);
  const std::string got = "\"" + rules + ": classify returned unknown tier 'gold'\"";
  CHECK(r.failures[0].case_name == "wrong substring");
  CHECK(r.failures[0].message == file + ":10:1: error: expected containing \"timeout\", got " + got);
  CHECK(r.failures[1].case_name == "error expected but none");
  CHECK(r.failures[1].message == file + ":14:1: error: expected containing \"gold\", got no error");
  CHECK(r.failures[2].case_name == "no error expected");
  CHECK(r.failures[2].message == file + ":18:1: error: expected none, got " + got);
}

TEST_CASE("an unexpected rules error fails the case even when the fallback matches") {
  Suite s;
  const std::string rules = "rules/w.lua";  // named as the config names the workload's file
  const std::string file = s.dir.write("rules/w.test.toml",
                                       "workload = \"w\"\n"
                                       "[[case]]\n"
                                       "name = \"crash lands on the fallback\"\n"
                                       "step = { role = \"crash\" }\n"
                                       "expect = { tier = \"premium\" }\n");
  const RuleTestReport r = s.run({file});
  CHECK(r.passed == 0);
  CHECK(r.failed == 1);
  REQUIRE(r.failures.size() == 1);
  CHECK(r.failures[0].message == file + ":2:1: error: expected none, got \"" + rules + ":5: boom\"");
}

TEST_CASE("ctx in a case reaches the rules as dollars") {
  Suite s;
  const std::string file = s.dir.write("rules/w.test.toml", R"toml(
[[case]]
name = "explicit ctx"
step = { role = "budget" }
ctx = { budget_left_usd = 0.5, spent_usd = 49.5 }
expect = { reason_contains = "left 0.5 spent 49.5" }

[[case]]
name = "the workload's budget when ctx gives none"
step = { role = "budget" }
expect = { reason_contains = "left 50.0 spent 0.0" }
)toml");
  const RuleTestReport r = s.run({file});
  CHECK_MESSAGE(r.passed == 2, describe(r));
  CHECK(r.failed == 0);
}

TEST_CASE("ctx in a case may give the rate-limit headroom, as integers") {
  Suite s;
  s.dir.write("rules/w.lua", R"lua(function classify(step, ctx)
  return { tier = "cheap", reason = tostring(ctx.rate_requests_left) .. "/" .. tostring(ctx.rate_tokens_left) }
end
)lua");
  const std::string file = s.dir.write("rules/w.test.toml", R"toml(
[[case]]
name = "headroom"
step = { role = "chat" }
ctx = { rate_requests_left = 3, rate_tokens_left = 4500 }
expect = { reason_contains = "3/4500" }

[[case]]
name = "no limit"
step = { role = "chat" }
expect = { reason_contains = "nil/nil" }
)toml");
  const RuleTestReport r = s.run({file});
  CHECK_MESSAGE(r.passed == 2, describe(r));
  CHECK(r.failed == 0);
}

TEST_CASE("a case's step may carry the fields derived from a conversation") {
  Suite s;
  s.dir.write("rules/w.lua", R"lua(function classify(step, ctx)
  if step.agent == "0123456789ab" and step.turns == 2 and step.has_tools and step.tool_names[2] == "web_fetch"
     and #step.tool_names == 2 and step.last_tool == "web_fetch" and step.has_images and step.has_documents then
    return { tier = "premium", reason = "all seen" }
  end
  return { tier = "cheap", reason = "defaults" }
end
)lua");
  const std::string file = s.dir.write("rules/w.test.toml", R"toml(
workload = "w"

[[case]]
name = "every derived field reaches the rules"
step = { role = "chat", turns = 2, has_tools = true, tool_names = ["read_file", "web_fetch"], last_tool = "web_fetch", has_images = true, has_documents = true, agent = "0123456789ab" }
expect = { tier = "premium", reason_contains = "all seen" }

[[case]]
name = "one field left at its default changes the answer"
step = { role = "chat", turns = 2, has_tools = true, tool_names = ["read_file", "web_fetch"], last_tool = "web_fetch", has_images = true, agent = "0123456789ab" }
expect = { tier = "cheap" }
)toml");
  const RuleTestReport r = s.run({file});
  CHECK_MESSAGE(r.passed == 2, describe(r));
  CHECK(r.failed == 0);

  const std::string bad = s.dir.write("rules/w.test.toml", R"toml([[case]]
name = "x"
step = { role = "chat", tool_names = "web_fetch" }
expect = { tier = "cheap" }
)toml");
  const RuleTestReport b = s.run({bad});
  REQUIRE(b.failures.size() == 1);
  CHECK(b.failures[0].message == bad + ":3:38: step: 'tool_names' must be an array of strings");
}

TEST_CASE("a malformed test file counts as one failure naming file:line:column") {
  struct Case {
    const char* what;
    std::string text;
    std::string message;  // after "FILE"
  };
  const std::vector<Case> cases = {
      {"TOML syntax", "workload = \"w\"\n[[case]]\nname = \"x\"\nstep = { role = }\n", ""},
      {"a case with no step", "workload = \"w\"\n[[case]]\nname = \"x\"\nexpect = { tier = \"cheap\" }\n",
       ":2:1: case 'x' has no 'step'"},
      {"a case with no expect", "workload = \"w\"\n[[case]]\nname = \"x\"\nstep = { role = \"format\" }\n",
       ":2:1: case 'x' has no 'expect'"},
      {"a case with no name", "[[case]]\nstep = { role = \"format\" }\nexpect = { tier = \"cheap\" }\n",
       ":1:1: case needs 'name'"},
      {"a typo in expect", "[[case]]\nname = \"x\"\nstep = { role = \"format\" }\nexpect = { teir = \"cheap\" }\n",
       ":4:12: expect: unknown key 'teir' (expected one of: tier, model, reasoning, pin_reasoning, fanout, "
       "max_output_tokens, aggregate, reason_contains, error)"},
      {"a typo in step", "[[case]]\nname = \"x\"\nstep = { rol = \"format\" }\nexpect = { tier = \"cheap\" }\n",
       ":3:10: step: unknown key 'rol' (expected one of: role, input_tokens, prompt, "
       "expected_output_tokens, needs_chain_of_thought, output_must_be_json, untrusted_input, "
       "tool_depth, turns, has_tools, tool_names, last_tool, has_images, has_documents, agent, session_id, meta)"},
      {"no cases at all", "workload = \"w\"\n", ":1:1: the test file has no [[case]] tables"},
      {"an unknown workload", "workload = \"nope\"\n[[case]]\nname = \"x\"\nstep = { role = \"f\" }\nexpect = {}\n",
       ":1:12: unknown workload 'nope'"},
  };
  for (const Case& c : cases) {
    INFO(std::string(c.what));
    Suite s;
    const std::string file = s.dir.write("rules/w.test.toml", c.text);
    const RuleTestReport r = s.run({file});
    CHECK(r.passed == 0);
    CHECK(r.failed == 1);
    REQUIRE(r.failures.size() == 1);
    CHECK(r.failures[0].file == file);
    CHECK(r.failures[0].case_name.empty());
    if (c.message.empty()) {
      CHECK(r.files.empty());  // nothing in it ran
      CHECK(r.failures[0].message.starts_with(file + ":4:17: "));
    } else {
      CHECK(r.failures[0].message == file + c.message);
    }
  }
}

TEST_CASE("cases before a malformed case still count") {
  Suite s;
  const std::string file = s.dir.write("rules/w.test.toml",
                                       "[[case]]\n"
                                       "name = \"good\"\n"
                                       "step = { role = \"format\" }\n"
                                       "expect = { tier = \"cheap\" }\n"
                                       "[[case]]\n"
                                       "name = \"bad\"\n"
                                       "step = { role = \"format\", input_tokens = \"many\" }\n"
                                       "expect = { tier = \"cheap\" }\n");
  const RuleTestReport r = s.run({file});
  CHECK(r.passed == 1);
  CHECK(r.failed == 1);
  REQUIRE(r.failures.size() == 1);
  CHECK(r.failures[0].message == file + ":7:42: step: 'input_tokens' must be a whole number");
}

TEST_CASE("a test path that does not exist is a failure naming the path") {
  Suite s;
  const std::string missing = s.path("rules/nope.test.toml");
  const RuleTestReport r = s.run({missing});
  CHECK(r.passed == 0);
  CHECK(r.failed == 1);
  REQUIRE(r.failures.size() == 1);
  CHECK(r.failures[0].message == missing + ": cannot read the test file");
}

TEST_CASE("a rules file that does not load fails its test file with the rules error") {
  Suite s;
  s.dir.write("suite/broken.lua", "function classify(step, ctx)\n  return 'cheap'\n");
  const std::string file = s.dir.write("suite/broken.test.toml",
                                       "[[case]]\nname = \"x\"\nstep = { role = \"f\" }\nexpect = {}\n");
  const RuleTestReport r = s.run({file});
  CHECK(r.passed == 0);
  CHECK(r.failed == 1);
  REQUIRE(r.failures.size() == 1);
  CHECK(r.failures[0].message.starts_with(s.path("suite/broken.lua") + ":"));
}

TEST_CASE("a directory is searched for *.test.toml files only, in name order") {
  Suite s;
  const char* const kCheap = R"lua(function classify(step, ctx) return "cheap" end)lua";
  const std::string kCase = "[[case]]\nname = \"x\"\nstep = { role = \"f\" }\nexpect = { tier = \"cheap\" }\n";
  s.dir.write("suite/b.lua", kCheap);
  s.dir.write("suite/a.lua", kCheap);
  const std::string b = s.dir.write("suite/b.test.toml", kCase);
  const std::string a = s.dir.write("suite/a.test.toml", kCase);
  s.dir.write("suite/notes.toml", "not = [a test");
  s.dir.write("suite/a.test.toml.orig", "not = [a test");
  s.dir.write("suite/.test.toml", "not = [a test");
  s.dir.write("suite/nested/c.test.toml", "not = [a test");
  const RuleTestReport r = s.run({s.path("suite")});
  CHECK(r.files == std::vector<std::string>{a, b});
  CHECK_MESSAGE(r.passed == 2, describe(r));
  CHECK(r.failed == 0);
}

TEST_CASE("with no paths the tests beside each workload's rules run") {
  Suite s;
  const std::string file = s.dir.write(
      "rules/w.test.toml", "[[case]]\nname = \"x\"\nstep = { role = \"plan\" }\nexpect = { tier = \"premium\" }\n");
  const RuleTestReport r = s.run({});
  CHECK(r.files == std::vector<std::string>{file});
  CHECK_MESSAGE(r.passed == 1, describe(r));
  CHECK(r.failed == 0);
}

TEST_CASE("the rules file is the .lua of the test file's stem, and its workload is inferred") {
  Suite s;
  // beside the configured rules/w.lua: workload w, whose fallback tier is premium
  const std::string configured = s.dir.write(
      "rules/w.test.toml",
      "[[case]]\nname = \"w falls back to premium\"\nstep = { role = \"crash\" }\n"
      "expect = { tier = \"premium\", error = \"boom\" }\n");
  // a rules file no workload names: [routing] default_fallback_tier (cheap)
  s.dir.write("suite/other.lua", R"lua(
function classify(step, ctx)
  if step.role == "crash" then error("other boom") end
  return { tier = "premium", reason = "workload " .. ctx.workload }
end
)lua");
  const std::string other = s.dir.write(
      "suite/other.test.toml",
      "[[case]]\nname = \"other.lua decides\"\nstep = { role = \"plan\" }\n"
      "expect = { tier = \"premium\", reason_contains = \"workload other\" }\n"
      "[[case]]\nname = \"other falls back to the default tier\"\nstep = { role = \"crash\" }\n"
      "expect = { tier = \"cheap\", error = \"other boom\" }\n");
  // `rules` overrides the stem, relative to the test file
  const std::string named = s.dir.write(
      "suite/named.test.toml",
      "rules = \"../rules/w.lua\"\n"
      "[[case]]\nname = \"w.lua by name\"\nstep = { role = \"plan\" }\nexpect = { tier = \"premium\" }\n"
      "[[case]]\nname = \"and w's fallback\"\nstep = { role = \"crash\" }\nexpect = { tier = \"premium\", error = true }\n");
  const RuleTestReport r = s.run({configured, other, named});
  CHECK_MESSAGE(r.passed == 5, describe(r));
  CHECK(r.failed == 0);
}

// ---------------------------------------------------------------- coverage and cost

namespace {

const char* const kPlanCase =
    "[[case]]\nname = \"plan\"\nstep = { role = \"plan\", input_tokens = 100 }\nexpect = { tier = \"premium\" }\n";
const char* const kFormatCase =
    "[[case]]\nname = \"format\"\nstep = { role = \"format\", input_tokens = 5 }\nexpect = { tier = \"cheap\" }\n";

// A loop of step.input_tokens iterations; "crash" fails.
const char* const kLoopRules = R"lua(function classify(step, ctx)
  if step.role == "crash" then error("boom") end
  local x = 0
  for i = 1, step.input_tokens do x = x + i end
  return { tier = "cheap", reason = "sum " .. x }
end
)lua";

std::string loop_case(const std::string& name, int tokens) {
  return "[[case]]\nname = \"" + name + "\"\nstep = { role = \"r\", input_tokens = " + std::to_string(tokens) +
         " }\nexpect = { tier = \"cheap\" }\n";
}

// Short timing rounds: these tests check the numbers' shape, not the machine.
RuleTestOptions quick_bench() {
  RuleTestOptions o;
  o.bench = true;
  o.bench_rounds = 3;
  o.bench_round_time = std::chrono::milliseconds(5);
  o.bench_round_calls = 20;
  return o;
}

// "FILE:LINE:COLUMN" of the first `needle` in `text` (a file written as `file`).
std::string position_of(const std::string& file, const std::string& text, const std::string& needle,
                        size_t column_offset) {
  const size_t at = text.find(needle);
  REQUIRE(at != std::string::npos);
  const size_t line = 1 + static_cast<size_t>(std::count(text.begin(), text.begin() + static_cast<long>(at), '\n'));
  const size_t line_start = text.rfind('\n', at) == std::string::npos ? 0 : text.rfind('\n', at) + 1;
  return file + ":" + std::to_string(line) + ":" + std::to_string(at - line_start + 1 + column_offset);
}

}  // namespace

TEST_SUITE("rule_tools") {

TEST_CASE("coverage counts the lines that ran of every function's lines including a never called one") {
  Suite s;
  s.dir.write("rules/w.lua", kCoverageRules);
  const std::string file = s.dir.write("rules/w.test.toml", kPlanCase);
  RuleTestOptions options;
  options.coverage = true;
  RuleTestReport r = run_rule_tests(s.config, {file}, options);
  CHECK_MESSAGE(r.passed == 1, describe(r));
  REQUIRE(r.coverage.size() == 1);
  const RuleCoverage& c = r.coverage[0];
  CHECK(c.rules == "rules/w.lua");
  CHECK(c.test_files == std::vector<std::string>{file});
  CHECK(c.executable == 13);
  CHECK(c.executed == 10);
  CHECK(c.percent() == doctest::Approx(100.0 * 10 / 13));
  REQUIRE(c.missed.size() == 3);
  CHECK(c.missed[0].first == 4);  // the never called local function
  CHECK(c.missed[0].last == 4);
  CHECK(c.missed[0].text == "return x * 2");
  CHECK(c.missed[1].first == 11);  // size_of's untaken branch
  CHECK(c.missed[1].text == "return \"small\"");
  CHECK(c.missed[2].first == 19);  // classify's
  CHECK(c.missed[2].text == "return { tier = \"cheap\", reason = size }");

  // A second test file of the same rules adds what its cases ran.
  const std::string other = s.dir.write("suite/more.test.toml", std::string("rules = \"../rules/w.lua\"\n") + kFormatCase);
  r = run_rule_tests(s.config, {file, other}, options);
  CHECK_MESSAGE(r.passed == 2, describe(r));
  REQUIRE(r.coverage.size() == 1);
  CHECK(r.coverage[0].test_files == std::vector<std::string>{file, other});
  CHECK(r.coverage[0].executed == 12);
  REQUIRE(r.coverage[0].missed.size() == 1);
  CHECK(r.coverage[0].missed[0].first == 4);

  // Without the option, nothing is gathered.
  r = run_rule_tests(s.config, {file});
  CHECK(r.coverage.empty());
  CHECK(r.costs.empty());
}

TEST_CASE("a missed range spans lines without code but never a line that ran") {
  Suite s;
  s.dir.write("rules/w.lua", R"lua(function classify(step, ctx)
  if step.role == "plan" then
    local a = 1

    -- a comment
    local b = a + 1
    return "premium"
  end
  return "cheap"
end
)lua");
  const std::string file = s.dir.write("rules/w.test.toml", kFormatCase);
  RuleTestOptions options;
  options.coverage = true;
  const RuleTestReport r = run_rule_tests(s.config, {file}, options);
  REQUIRE(r.coverage.size() == 1);
  REQUIRE(r.coverage[0].missed.size() == 1);
  CHECK(r.coverage[0].missed[0].first == 3);
  CHECK(r.coverage[0].missed[0].last == 7);
  CHECK(r.coverage[0].missed[0].text == "local a = 1");
}

TEST_CASE("with no paths a workload without test cases is covered by its file body alone") {
  Suite s;
  s.dir.write("rules/w.lua", kCoverageRules);
  RuleTestOptions options;
  options.coverage = true;
  const RuleTestReport r = run_rule_tests(s.config, {}, options);
  CHECK(r.files.empty());
  CHECK(r.failed == 0);
  REQUIRE(r.coverage.size() == 1);
  CHECK(r.coverage[0].rules == "rules/w.lua");
  CHECK(r.coverage[0].test_files.empty());
  CHECK(r.coverage[0].executable == 13);
  CHECK(r.coverage[0].executed == 5);  // 1, 5, 12, 14, 20
}

TEST_CASE("bench reports exact instructions and bytes and the time per call the same on every run") {
  Suite s;
  s.dir.write("rules/w.lua", kLoopRules);
  const std::string small = s.dir.write("suite/small.test.toml",
                                        "rules = \"../rules/w.lua\"\n" + loop_case("ten", 10) + loop_case("twenty", 20) +
                                            "[[case]]\nname = \"crash\"\nstep = { role = \"crash\" }\n"
                                            "expect = { error = \"boom\" }\n");
  const std::string big = s.dir.write("suite/big.test.toml",
                                      "rules = \"../rules/w.lua\"\n" + loop_case("1010", 1010) + loop_case("1020", 1020));
  const RuleTestReport r = run_rule_tests(s.config, {small, big}, quick_bench());
  CHECK_MESSAGE(r.passed == 5, describe(r));
  REQUIRE(r.costs.size() == 2);
  const RuleCost& b = r.costs[0];  // files run in name order
  const RuleCost& a = r.costs[1];
  CHECK(a.test_file == small);
  CHECK(b.test_file == big);
  CHECK(a.rules == "rules/w.lua");
  CHECK(a.calls == 2);  // the failing case is no measure of a call
  CHECK(b.calls == 2);
  // 1000 more iterations of a two-instruction loop (ADD, FORLOOP).
  CHECK(b.instructions - a.instructions == doctest::Approx(2000.0));
  CHECK(a.instructions > 0);
  CHECK(a.bytes > 0);
  CHECK(a.ns > 0);
  CHECK(a.ns < 1e6);
  CHECK(b.ns > a.ns);
  CHECK(a.over_budget.empty());

  const RuleTestReport again = run_rule_tests(s.config, {small, big}, quick_bench());
  REQUIRE(again.costs.size() == 2);
  CHECK(again.costs[1].instructions == a.instructions);
  CHECK(again.costs[1].bytes == a.bytes);
  CHECK(again.costs[0].instructions == b.instructions);
  CHECK(again.costs[0].bytes == b.bytes);
}

TEST_CASE("a cost over its budget names the file and metric and value and where the budget is set") {
  TempDir dir;
  dir.write("rules/w.lua", kLoopRules);
  const std::string text = switchboard::testing::small_config(
      "\n[rule_cost]\nmax_instructions = 10\nmax_bytes = 1000000\nmax_ns = 60000000000\n");
  const std::string config_path = switchboard::testing::write_config(dir, text);
  auto config = load_config(config_path);
  REQUIRE_MESSAGE(config.ok(), config.status().message());
  REQUIRE(config->rule_cost.max_instructions.has_value());
  CHECK(config->rule_cost.max_instructions->value == 10);

  const std::string file = dir.write("rules/w.test.toml", loop_case("hundred", 100));
  RuleTestReport r = run_rule_tests(*config, {file}, quick_bench());
  CHECK(r.failed == 0);  // the cases pass; the cost is reported apart
  REQUIRE(r.costs.size() == 1);
  const RuleCost& c = r.costs[0];
  REQUIRE(c.over_budget.size() == 1);
  CHECK(c.over_budget[0] == "rules/w.lua: " + std::to_string(std::llround(c.instructions)) +
                                " instructions per call, over the budget of 10 (max_instructions at " +
                                position_of(config_path, text, "max_instructions = 10", 19) + ")");

  // The test file's own [rule_cost] overrides single fields.
  const std::string own = "[rule_cost]\nmax_instructions = 100000\nmax_bytes = 1\n" + loop_case("hundred", 100);
  dir.write("rules/w.test.toml", own);
  r = run_rule_tests(*config, {file}, quick_bench());
  REQUIRE(r.costs.size() == 1);
  CHECK(r.costs[0].budget.max_instructions->value == 100000);
  CHECK(r.costs[0].budget.max_ns->value == 60000000000);  // kept from the config
  REQUIRE(r.costs[0].over_budget.size() == 1);
  CHECK(r.costs[0].over_budget[0] == "rules/w.lua: " + std::to_string(std::llround(r.costs[0].bytes)) +
                                         " bytes per call, over the budget of 1 (max_bytes at " + file + ":3:13)");
}

TEST_CASE("a bad rule_cost table in a test file fails the file at its place") {
  Suite s;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[rule_cost]\nmax_ns = -1\n", ":2:10: [rule_cost]: 'max_ns' must be positive"},
      {"[rule_cost]\nmax_nanos = 5\n",
       ":2:1: [rule_cost]: unknown key 'max_nanos' (expected one of: max_instructions, max_bytes, max_ns)"},
      {"rule_cost = 5\n", ":1:13: [rule_cost] must be a table"},
  };
  for (const auto& [text, message] : cases) {
    INFO(text);
    const std::string file = s.dir.write("rules/w.test.toml", text + kFormatCase);
    const RuleTestReport r = s.run({file});
    CHECK(r.failed == 1);
    REQUIRE(r.failures.size() == 1);
    CHECK(r.failures[0].message == file + message);
  }
}

}  // TEST_SUITE("rule_tools")
