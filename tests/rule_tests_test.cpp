// run_rule_tests: *.test.toml cases run in the real sandbox against temp dirs.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "test_util.h"

using namespace switchboard;
using switchboard::testing::TempDir;

namespace {

// Rules for workload w: plan is premium, "bad" answers an unknown tier, crash
// raises at line 5, everything else is cheap with low reasoning.
const char* const kRules = R"lua(function classify(step, ctx)
  if step.role == "plan" then return "premium" end
  if step.role == "bad" then return { tier = "gold" } end
  if step.role == "crash" then
    error("boom")
  end
  if step.role == "budget" then
    return { tier = "cheap", reason = "left " .. tostring(ctx.budget_left_usd) .. " spent " .. tostring(ctx.spent_usd) }
  end
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
expect = { tier = "premium", model = "m-premium", reasoning = "default" }
)toml");
  const RuleTestReport r = s.run({file});
  CHECK_MESSAGE(r.passed == 2, describe(r));
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
                                       "expect = { tier = \"cheap\", reasoning = \"low\", fanout = 2 }\n");
  const RuleTestReport r = s.run({file});
  CHECK(r.passed == 1);
  CHECK(r.failed == 1);
  REQUIRE(r.failures.size() == 1);
  CHECK(r.failures[0].file == file);
  CHECK(r.failures[0].case_name == "plan is cheap too");
  CHECK(r.failures[0].message == file +
                                     ":8:1: tier: expected \"cheap\", got \"premium\"; reasoning: expected "
                                     "\"low\", got \"default\"; fanout: expected 2, got 1");
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
       ":4:12: expect: unknown key 'teir' (expected one of: tier, model, reasoning, fanout, "
       "max_output_tokens, aggregate, reason_contains, error)"},
      {"a typo in step", "[[case]]\nname = \"x\"\nstep = { rol = \"format\" }\nexpect = { tier = \"cheap\" }\n",
       ":3:10: step: unknown key 'rol' (expected one of: role, input_tokens, prompt, "
       "expected_output_tokens, needs_chain_of_thought, output_must_be_json, untrusted_input, "
       "tool_depth, meta)"},
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
