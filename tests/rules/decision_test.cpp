// Decisions through Engine::decide: what a rule's answer becomes, how invalid
// answers fall back, and what the rules see in `step` and `ctx`.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "util/sha256.h"
#include "test_util.h"

using namespace switchboard;
using switchboard::testing::TempDir;

namespace {

std::string replace_once(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, "not in the config: " << from);
  return text.replace(at, from.size(), to);
}

// small_config() (tiers cheap = [m-cheap], premium = [m-premium, m-cheap]) with
// max_fanout 3 and workload w falling back to "premium", so a fallback is never
// mistaken for a rule that chose "cheap". `workload_extra` lands inside [workloads.w].
Result<std::unique_ptr<Engine>> open_engine(const TempDir& dir, const std::string& rules,
                                            const std::string& workload_extra = "") {
  std::string config = switchboard::testing::small_config(workload_extra);
  config = replace_once(config, "default_fallback_tier = \"cheap\"\n",
                        "default_fallback_tier = \"cheap\"\nmax_fanout = 3\n");
  config = replace_once(config, "rules = \"rules/w.lua\"\nfallback_tier = \"cheap\"",
                        "rules = \"rules/w.lua\"\nfallback_tier = \"premium\"");
  dir.write("rules/w.lua", rules);
  return Engine::open_file(switchboard::testing::write_config(dir, config));
}

Step step_of(std::string role, std::int64_t input_tokens = 1000) {
  Step step;
  step.role = std::move(role);
  step.input_tokens = input_tokens;
  return step;
}

// Rules that answer every step with the Lua expression `answer`.
std::string answering(const std::string& answer) {
  return "function classify(step, ctx)\n  return " + answer + "\nend\n";
}

Decision decide_ok(const Engine& engine, const Step& step, const CallContext& ctx = {}) {
  auto d = engine.decide("w", step, ctx);
  REQUIRE_MESSAGE(d.ok(), d.status().message());
  return *d;
}

}  // namespace

TEST_CASE("a string naming a tier picks that tier's first model") {
  TempDir dir;
  auto engine = open_engine(dir, answering(R"lua("premium")lua"));
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  const Decision d = decide_ok(**engine, step_of("plan"));
  CHECK(d.workload == "w");
  CHECK(d.tier == "premium");
  CHECK(d.model == "m-premium");
  CHECK(d.reasoning == Reasoning::kDefault);
  CHECK(d.fanout == 1);
  CHECK(d.aggregate.empty());
  CHECK_FALSE(d.max_output_tokens.has_value());
  CHECK(d.reason.empty());
  CHECK_FALSE(d.error.has_value());
}

TEST_CASE("a string naming a model picks that model and the first tier listing it") {
  struct Case {
    const char* model;
    const char* tier;
  };
  // m-cheap is in "cheap" and second in "premium": the first tier by name wins.
  for (const Case& c : {Case{"m-cheap", "cheap"}, Case{"m-premium", "premium"}}) {
    INFO(std::string(c.model));
    TempDir dir;
    auto engine = open_engine(dir, answering("\"" + std::string(c.model) + "\""));
    REQUIRE_MESSAGE(engine.ok(), engine.status().message());
    const Decision d = decide_ok(**engine, step_of("plan"));
    CHECK(d.model == c.model);
    CHECK(d.tier == c.tier);
    CHECK_FALSE(d.error.has_value());
  }
}

TEST_CASE("a table answer sets tier, model, reasoning, max_output_tokens, fanout and aggregate") {
  struct Case {
    const char* answer;
    const char* tier;
    const char* model;
    Reasoning reasoning;
    std::optional<std::int64_t> max_output_tokens;
    int fanout;
    const char* aggregate;
  };
  const std::vector<Case> cases = {
      {R"lua({ tier = "cheap" })lua", "cheap", "m-cheap", Reasoning::kDefault, {}, 1, ""},
      {R"lua({ model = "m-premium" })lua", "premium", "m-premium", Reasoning::kDefault, {}, 1, ""},
      {R"lua({ tier = "premium", model = "m-cheap" })lua", "premium", "m-cheap", Reasoning::kDefault,
       {}, 1, ""},
      {R"lua({ tier = "cheap", reasoning = "low" })lua", "cheap", "m-cheap", Reasoning::kLow, {}, 1, ""},
      {R"lua({ tier = "cheap", reasoning = "medium" })lua", "cheap", "m-cheap", Reasoning::kMedium, {},
       1, ""},
      {R"lua({ tier = "premium", reasoning = "high" })lua", "premium", "m-premium", Reasoning::kHigh,
       {}, 1, ""},
      {R"lua({ tier = "cheap", max_output_tokens = 800 })lua", "cheap", "m-cheap", Reasoning::kDefault,
       800, 1, ""},
      // the context window of m-cheap is 100000: exactly that is allowed
      {R"lua({ tier = "cheap", max_output_tokens = 100000 })lua", "cheap", "m-cheap",
       Reasoning::kDefault, 100000, 1, ""},
      {R"lua({ tier = "cheap", fanout = 3, aggregate = "premium" })lua", "cheap", "m-cheap",
       Reasoning::kDefault, {}, 3, "premium"},
      // with no aggregate the decision's own tier writes the final answer
      {R"lua({ tier = "premium", fanout = 2 })lua", "premium", "m-premium", Reasoning::kDefault, {}, 2,
       "premium"},
      {R"lua({ model = "m-cheap", fanout = 2 })lua", "cheap", "m-cheap", Reasoning::kDefault, {}, 2,
       "cheap"},
      // an integral float is a whole number
      {R"lua({ tier = "cheap", fanout = 2.0 })lua", "cheap", "m-cheap", Reasoning::kDefault, {}, 2,
       "cheap"},
      {R"lua({ tier = "cheap", fanout = 1 })lua", "cheap", "m-cheap", Reasoning::kDefault, {}, 1, ""},
  };
  for (const Case& c : cases) {
    INFO(std::string(c.answer));
    TempDir dir;
    auto engine = open_engine(dir, answering(c.answer));
    REQUIRE_MESSAGE(engine.ok(), engine.status().message());
    const Decision d = decide_ok(**engine, step_of("plan"));
    CHECK_FALSE(d.error.has_value());
    CHECK(d.tier == c.tier);
    CHECK(d.model == c.model);
    CHECK(d.reasoning == c.reasoning);
    CHECK(d.max_output_tokens == c.max_output_tokens);
    CHECK(d.fanout == c.fanout);
    CHECK(d.aggregate == c.aggregate);
  }
}

TEST_CASE("the rule's reason is passed through with control bytes turned into spaces") {
  TempDir dir;
  auto engine = open_engine(dir, answering(
                                     R"lua({ tier = "cheap", reason = "line one\nline\ttwo\r\0\27[31mred\127 ok" })lua"));
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  const Decision d = decide_ok(**engine, step_of("plan"));
  CHECK(d.reason == std::string("line one line two   [31mred  ok"));
  CHECK_FALSE(d.error.has_value());
}

TEST_CASE("a reason longer than 512 bytes is cut to 512") {
  TempDir dir;
  auto engine = open_engine(dir, answering(R"lua({ tier = "cheap", reason = string.rep("ab", 400) })lua"));
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  const Decision d = decide_ok(**engine, step_of("plan"));
  CHECK(d.reason.size() == 512);
  CHECK(d.reason.substr(0, 4) == "abab");
  CHECK_FALSE(d.error.has_value());
}

TEST_CASE("an invalid answer falls back to the workload's fallback tier with an error naming the rules file") {
  struct Case {
    const char* what;
    std::string rules;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"unknown tier", answering(R"lua({ tier = "gold" })lua"),
       "rules/w.lua: classify returned unknown tier 'gold'"},
      {"unknown model", answering(R"lua({ model = "gpt-0" })lua"),
       "rules/w.lua: classify returned unknown model 'gpt-0'"},
      {"a string that is neither", answering(R"lua("gold")lua"),
       "rules/w.lua: classify returned 'gold', which is neither a tier nor a model"},
      {"a name with control bytes is printed escaped", answering(R"lua("go\nld")lua"),
       "rules/w.lua: classify returned 'go\\x0ald', which is neither a tier nor a model"},
      {"a table with neither tier nor model", answering(R"lua({ reasoning = "low" })lua"),
       "rules/w.lua: classify returned a table with neither 'tier' nor 'model'"},
      {"bad reasoning", answering(R"lua({ tier = "cheap", reasoning = "extreme" })lua"),
       "rules/w.lua: classify returned reasoning 'extreme'; expected low, medium or high"},
      {"reasoning spelled in capitals", answering(R"lua({ tier = "cheap", reasoning = "LOW" })lua"),
       "rules/w.lua: classify returned reasoning 'LOW'; expected low, medium or high"},
      {"fanout 0", answering(R"lua({ tier = "cheap", fanout = 0 })lua"),
       "rules/w.lua: classify returned fanout = 0; expected 1 to 3 ([routing] max_fanout)"},
      {"fanout above max_fanout", answering(R"lua({ tier = "cheap", fanout = 4 })lua"),
       "rules/w.lua: classify returned fanout = 4; expected 1 to 3 ([routing] max_fanout)"},
      {"negative fanout", answering(R"lua({ tier = "cheap", fanout = -1 })lua"),
       "rules/w.lua: classify returned fanout = -1; expected 1 to 3 ([routing] max_fanout)"},
      {"non-integer fanout", answering(R"lua({ tier = "cheap", fanout = 1.5 })lua"),
       "rules/w.lua: classify returned 'fanout' = 1.5; expected a whole number"},
      {"fanout as a string", answering(R"lua({ tier = "cheap", fanout = "2" })lua"),
       "rules/w.lua: classify returned 'fanout' as a string; expected a whole number"},
      {"max_output_tokens above the model's context window",
       answering(R"lua({ tier = "cheap", max_output_tokens = 100001 })lua"),
       "rules/w.lua: classify returned max_output_tokens = 100001; expected 1 to the model's "
       "context window (100000)"},
      {"max_output_tokens above the named model's window, within another's",
       answering(R"lua({ tier = "premium", model = "m-cheap", max_output_tokens = 150000 })lua"),
       "rules/w.lua: classify returned max_output_tokens = 150000; expected 1 to the model's "
       "context window (100000)"},
      {"max_output_tokens of zero", answering(R"lua({ tier = "cheap", max_output_tokens = 0 })lua"),
       "rules/w.lua: classify returned max_output_tokens = 0; expected 1 to the model's context "
       "window (100000)"},
      {"aggregate naming no tier", answering(R"lua({ tier = "cheap", fanout = 2, aggregate = "gold" })lua"),
       "rules/w.lua: classify returned aggregate = unknown tier 'gold'"},
      {"tier of the wrong type", answering(R"lua({ tier = 7 })lua"),
       "rules/w.lua: classify returned 'tier' as a number; expected a string"},
      {"reason of the wrong type", answering(R"lua({ tier = "cheap", reason = {} })lua"),
       "rules/w.lua: classify returned 'reason' as a table; expected a string"},
      {"a boolean", answering("true"),
       "rules/w.lua: classify returned boolean; expected a tier or model name or a table"},
      {"nil", answering("nil"),
       "rules/w.lua: classify returned nil; expected a tier or model name or a table"},
      {"nothing at all", "function classify(step, ctx) end\n",
       "rules/w.lua: classify returned nil; expected a tier or model name or a table"},
      {"a number", answering("42"),
       "rules/w.lua: classify returned number; expected a tier or model name or a table"},
      {"a runtime error", "function classify(step, ctx)\n  error(\"boom\")\nend\n",
       "rules/w.lua:2: boom"},
  };
  for (const Case& c : cases) {
    INFO(std::string(c.what));
    TempDir dir;
    auto engine = open_engine(dir, c.rules);
    REQUIRE_MESSAGE(engine.ok(), engine.status().message());
    const Decision d = decide_ok(**engine, step_of("plan"));
    CHECK(d.tier == "premium");
    CHECK(d.model == "m-premium");
    CHECK(d.reasoning == Reasoning::kDefault);
    CHECK_FALSE(d.max_output_tokens.has_value());
    CHECK(d.fanout == 1);
    CHECK(d.aggregate.empty());
    CHECK(d.reason == "fallback tier: the rules failed");
    REQUIRE(d.error.has_value());
    CHECK(*d.error == c.error);
    CHECK(d.rules_version == (*engine)->rules_version("w"));
  }
}

TEST_CASE("an unknown workload is a not-found status, not a fallback") {
  TempDir dir;
  auto engine = open_engine(dir, answering(R"lua("cheap")lua"));
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  auto d = (*engine)->decide("nope", step_of("plan"));
  REQUIRE_FALSE(d.ok());
  CHECK(d.status().code() == Status::Code::kNotFound);
  CHECK(d.status().message() == "unknown workload 'nope'");
  CHECK((*engine)->rules_version("nope").empty());
}

namespace {

// Rules that report what they saw of ctx in the reason.
const char* const kCtxEcho = R"lua(
function classify(step, ctx)
  return { tier = "cheap", reason = string.format("workload=%s version=%s budget_left=%s spent=%s",
    ctx.workload, ctx.rules_version, tostring(ctx.budget_left_usd), tostring(ctx.spent_usd)) }
end
)lua";

}  // namespace

TEST_CASE("ctx shows the workload, the rules version and no budget when the workload has none") {
  TempDir dir;
  auto engine = open_engine(dir, kCtxEcho);
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  const std::string version = (*engine)->rules_version("w");
  CHECK(version == detail::sha256_hex(kCtxEcho));
  const Decision d = decide_ok(**engine, step_of("plan"));
  CHECK(d.reason == "workload=w version=" + version + " budget_left=nil spent=0.0");
  CHECK(d.rules_version == version);

  CallContext spent;
  spent.spent = 1'250'000;
  CHECK(decide_ok(**engine, step_of("plan"), spent).reason ==
        "workload=w version=" + version + " budget_left=nil spent=1.25");
}

TEST_CASE("ctx.budget_left_usd is the workload's budget minus what was spent") {
  TempDir dir;
  auto engine = open_engine(dir, kCtxEcho, "budget_usd = 200.0\n");
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  const std::string version = (*engine)->rules_version("w");
  CHECK(decide_ok(**engine, step_of("plan")).reason ==
        "workload=w version=" + version + " budget_left=200.0 spent=0.0");
  CallContext ctx;
  ctx.spent = 12'500'000;
  CHECK(decide_ok(**engine, step_of("plan"), ctx).reason ==
        "workload=w version=" + version + " budget_left=187.5 spent=12.5");
}

TEST_CASE("ctx.budget_left_usd comes from the CallContext when the host gives it") {
  TempDir dir;
  auto engine = open_engine(dir, kCtxEcho, "budget_usd = 200.0\n");
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  const std::string version = (*engine)->rules_version("w");
  CallContext ctx;
  ctx.budget_left = 2'500'000;
  ctx.spent = 197'500'000;
  CHECK(decide_ok(**engine, step_of("plan"), ctx).reason ==
        "workload=w version=" + version + " budget_left=2.5 spent=197.5");

  // also for a workload with no budget of its own
  TempDir other;
  auto unbudgeted = open_engine(other, kCtxEcho);
  REQUIRE_MESSAGE(unbudgeted.ok(), unbudgeted.status().message());
  CallContext left;
  left.budget_left = 750'000;
  CHECK(decide_ok(**unbudgeted, step_of("plan"), left).reason ==
        "workload=w version=" + (*unbudgeted)->rules_version("w") + " budget_left=0.75 spent=0.0");
}

TEST_CASE("the rules see every step field and the caller's meta with their types") {
  TempDir dir;
  auto engine = open_engine(dir, R"lua(
function classify(step, ctx)
  local m = step.meta
  return { tier = "cheap", reason = string.format(
    "role=%s in=%s(%s) cot=%s json=%s untrusted=%s depth=%s(%s) out=%s " ..
    "lang=%s n=%s(%s) x=%s(%s) flag=%s absent=%s",
    step.role, tostring(step.input_tokens), math.type(step.input_tokens),
    tostring(step.needs_chain_of_thought), tostring(step.output_must_be_json),
    tostring(step.untrusted_input), tostring(step.tool_depth), math.type(step.tool_depth),
    tostring(step.expected_output_tokens),
    tostring(m.lang), tostring(m.n), math.type(m.n), tostring(m.x), math.type(m.x),
    tostring(m.flag), tostring(m.absent)) }
end
)lua");
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  Step step = step_of("review", 4321);
  step.needs_chain_of_thought = true;
  step.output_must_be_json = false;
  step.untrusted_input = true;
  step.tool_depth = 3;
  step.expected_output_tokens = 250;
  step.meta = {{"lang", std::string("go")}, {"n", std::int64_t{7}}, {"x", 0.5}, {"flag", true}};
  CHECK(decide_ok(**engine, step).reason ==
        "role=review in=4321(integer) cot=true json=false untrusted=true depth=3(integer) out=250 "
        "lang=go n=7(integer) x=0.5(float) flag=true absent=nil");

  // defaults: no flags, depth 0, no meta fields, no expected output
  CHECK(decide_ok(**engine, step_of("format", 10)).reason ==
        "role=format in=10(integer) cot=false json=false untrusted=false depth=0(integer) out=nil "
        "lang=nil n=nil(nil) x=nil(nil) flag=nil absent=nil");
}

TEST_CASE("the rules see the conversation's fields: turns, tools, last tool, media and agent") {
  TempDir dir;
  auto engine = open_engine(dir, R"lua(
function classify(step, ctx)
  local names = {}
  for i, name in ipairs(step.tool_names) do names[i] = name end
  return { tier = "cheap", reason = string.format(
    "turns=%s(%s) tools=%s names=%s[%d](%s) last=%s images=%s docs=%s agent=%s",
    tostring(step.turns), math.type(step.turns), tostring(step.has_tools), table.concat(names, ","),
    #step.tool_names, type(step.tool_names), tostring(step.last_tool), tostring(step.has_images),
    tostring(step.has_documents), tostring(step.agent)) }
end
)lua");
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  Step step = step_of("chat", 500);
  step.turns = 3;
  step.has_tools = true;
  step.tool_names = {"web_fetch", "read_file"};
  step.last_tool = "web_fetch";
  step.has_images = true;
  step.has_documents = true;
  step.agent = "0123456789ab";
  CHECK(decide_ok(**engine, step).reason ==
        "turns=3(integer) tools=true names=web_fetch,read_file[2](table) last=web_fetch images=true docs=true "
        "agent=0123456789ab");

  // Defaults: no turns, an empty list of tools (still a table), no last tool or agent.
  CHECK(decide_ok(**engine, step_of("chat", 10)).reason ==
        "turns=0(integer) tools=false names=[0](table) last=nil images=false docs=false agent=nil");
}

TEST_CASE("a step derived from a request reaches the rules: a deep tool loop and an untrusted page route apart") {
  TempDir dir;
  auto engine = open_engine(dir, R"lua(
function classify(step, ctx)
  if step.untrusted_input then return { tier = "cheap", reason = "untrusted after " .. step.last_tool } end
  if step.tool_depth >= 8 then return { tier = "premium", reason = "round-trip " .. step.tool_depth } end
  return { tier = "cheap", reason = "turn " .. step.turns }
end
)lua",
                            "untrusted_tools = [\"web_fetch\"]\n");
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  const Workload* w = (*engine)->config().find_workload("w");
  REQUIRE(w != nullptr);
  REQUIRE(w->untrusted_tools == std::vector<std::string>{"web_fetch"});
  ModelRequest r;
  r.messages = {Message::of_text("user", "fix it")};
  for (int i = 0; i < 8; ++i) {
    const std::string id = "c" + std::to_string(i);
    r.messages.push_back(Message::of("assistant", {ContentBlock::of_tool_call(ToolCall{id, "read_file", "{}"})}));
    r.messages.push_back(Message::of("tool", {ContentBlock::of_tool_result(id, "", "...")}));
  }
  Decision d = decide_ok(**engine, derive_step(r, w));
  CHECK(d.tier == "premium");
  CHECK(d.reason == "round-trip 8");

  r.messages.resize(3);  // one round-trip, and it read a web page
  r.messages[1] = Message::of("assistant", {ContentBlock::of_tool_call(ToolCall{"c0", "web_fetch", "{}"})});
  d = decide_ok(**engine, derive_step(r, w));
  CHECK(d.tier == "cheap");
  CHECK(d.reason == "untrusted after web_fetch");
}

TEST_CASE("input_tokens is estimated from the prompt when the caller gives no count") {
  TempDir dir;
  auto engine = open_engine(dir, answering(R"lua({ tier = "cheap", reason = tostring(step.input_tokens) })lua"));
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  Step step;
  step.role = "summarize";
  step.prompt = "ten bytes!";  // 10 bytes: ceil(10 / 3) = 4
  Decision d = decide_ok(**engine, step);
  CHECK(d.reason == "4");
  CHECK(d.estimated_input_tokens == 4);

  step.input_tokens = 900;  // a count from the caller wins over the estimate
  d = decide_ok(**engine, step);
  CHECK(d.reason == "900");
  CHECK(d.estimated_input_tokens == 900);

  Step bare;
  bare.role = "summarize";  // neither count nor prompt
  d = decide_ok(**engine, bare);
  CHECK(d.reason == "0");
  CHECK(d.estimated_input_tokens == 0);
}

TEST_CASE("the rules see the prompt text when the caller gives one") {
  TempDir dir;
  auto engine = open_engine(dir, answering(R"lua({ tier = "cheap", reason = step.prompt })lua"));
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  Step step = step_of("summarize");
  step.prompt = "hello";
  CHECK(decide_ok(**engine, step).reason == "hello");
}
