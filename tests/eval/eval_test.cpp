// Eval sets (switchboard/eval.h): parsing with file:line errors, every
// grader's verdict and reason, the Wilson interval, and run_eval's budget
// cap, ledger kind and judge failures, offline (sim models, the fake provider).
#include <doctest/doctest.h>

#include <mutex>
#include <set>

#include "fake_provider.h"
#include "switchboard/eval.h"
#include "test_util.h"

using namespace switchboard;
using switchboard::testing::TempDir;

namespace {

// A minimal case line around `graders` (a JSON list).
std::string case_line(const std::string& id, const std::string& graders, const std::string& extra_request = "") {
  return R"({"id": ")" + id + R"(", "step": {"role": "summarize"}, "request": {"messages": [)"
         R"({"role": "user", "content": "Summarize the memo."}])" + extra_request + R"(}, "graders": )" + graders + "}";
}

EvalCase parsed(const std::string& graders) {
  auto c = parse_eval_case(case_line("c1", graders), "set.jsonl:1");
  REQUIRE_MESSAGE(c.ok(), c.status().message());
  return std::move(c).value();
}

ModelResponse text_answer(const std::string& text) {
  ModelResponse r;
  r.content.push_back(ContentBlock::of_text(text));
  return r;
}

ModelResponse tool_answer(const std::string& name, const std::string& arguments) {
  ModelResponse r;
  r.content.push_back(ContentBlock::of_tool_call(ToolCall{"call_9", name, arguments}));
  return r;
}

GraderVerdict::Outcome outcome(const std::string& graders, const ModelResponse& answer, std::string* reason = nullptr) {
  const EvalCase c = parsed(graders);
  const GraderVerdict v = grade(c.graders.at(0), c, answer, nullptr);
  if (reason != nullptr) *reason = v.reason;
  return v.outcome;
}

using O = GraderVerdict::Outcome;

}  // namespace

TEST_CASE("an eval case reads the request, the step over the derived one, and its graders") {
  auto c = parse_eval_case(
      R"({"id": "x", "step": {"role": "extract", "untrusted_input": true},
          "request": {"messages": [{"role": "system", "content": "Be terse."},
                                   {"role": "user", "content": "Read it."},
                                   {"role": "assistant", "tool_calls": [{"id": "c1", "name": "read_email", "arguments": {"id": 7}}]},
                                   {"role": "tool", "tool_call_id": "c1", "name": "read_email", "content": "Hello"}],
                      "tools": [{"name": "send_email", "parameters": {"type": "object"}}],
                      "tool_choice": "auto",
                      "output_format": {"type": "json_schema", "name": "contact", "schema": {"type": "object"}},
                      "max_output_tokens": 300},
          "graders": [{"type": "must_not", "contains": ["SECRET"], "tools": ["send_email"]},
                      {"type": "json_schema", "schema": {"type": "object"}}]})",
      "set.jsonl:3");
  REQUIRE_MESSAGE(c.ok(), c.status().message());
  CHECK(c->source == "set.jsonl:3");
  CHECK(c->step.role == "extract");
  CHECK(c->step.untrusted_input);
  CHECK(c->step.has_tools);                // derived from the request
  CHECK(c->step.last_tool == "read_email");  // derived
  CHECK(c->step.output_must_be_json);      // derived from the output format
  CHECK(c->request.messages.size() == 4);
  CHECK(c->request.output_format.type == OutputFormat::Type::kJsonSchema);
  CHECK(c->request.max_output_tokens == 300);
  REQUIRE(c->graders.size() == 2);
  CHECK(c->graders[0].forbidden_tools == std::vector<std::string>{"send_email"});
}

TEST_CASE("eval set errors name the file and line") {
  TempDir dir;
  const struct {
    std::string line;
    std::string error;
  } cases[] = {
      {"{\"id\": \"a\"", "set.jsonl:2: not valid JSON"},
      {case_line("a", "[]"), "set.jsonl:2: 'graders' must be a non-empty list"},
      {case_line("a", R"([{"type": "sounds_right"}])"), "set.jsonl:2: graders[0]: unknown grader type 'sounds_right' (exact, contains, regex, json_schema, "
       "tool_call, must_not, judge)"},
      {case_line("a", R"([{"type": "contains", "text": "x", "case": true}])"),
       "set.jsonl:2: graders[0]: unknown field 'case'"},
      {case_line("a", R"([{"type": "must_not"}])"), "set.jsonl:2: graders[0]: must_not needs 'contains' or 'tools'"},
      {case_line("a", R"([{"type": "exact", "text": "x"}])", R"(, "temperature": 0)"),
       "set.jsonl:2: request: unknown field 'temperature'"},
      {case_line("b", R"([{"type": "exact", "text": "x"}])"), "set.jsonl:2: id 'b' is used twice"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.line);
    const std::string path = dir.write("set.jsonl", case_line("b", R"([{"type": "exact", "text": "x"}])") + "\n" + c.line + "\n");
    auto set = load_eval_set(path);
    REQUIRE_FALSE(set.ok());
    CHECK(set.status().message() == (dir.path() / c.error).string());
  }
}

TEST_CASE("exact, contains and regex graders say why they pass or fail") {
  std::string reason;
  CHECK(outcome(R"([{"type": "exact", "text": "Paris"}])", text_answer("  Paris\n")) == O::kPass);
  CHECK(outcome(R"([{"type": "exact", "text": "Paris"}])", text_answer("paris"), &reason) == O::kFail);
  CHECK(reason == "the answer \"paris\" is not \"Paris\"");
  CHECK(outcome(R"([{"type": "exact", "text": "Paris", "ignore_case": true}])", text_answer("paris")) == O::kPass);
  CHECK(outcome(R"([{"type": "contains", "text": "refund"}])", text_answer("We sent the refund.")) == O::kPass);
  CHECK(outcome(R"([{"type": "contains", "text": "Refund"}])", text_answer("We sent the refund."), &reason) == O::kFail);
  CHECK(reason == "the answer \"We sent the refund.\" lacks \"Refund\"");
  CHECK(outcome(R"([{"type": "contains", "text": "Refund", "ignore_case": true}])", text_answer("refund")) == O::kPass);
  CHECK(outcome(R"([{"type": "regex", "pattern": "A-[0-9]{6}"}])", text_answer("order A-123456 shipped")) == O::kPass);
  CHECK(outcome(R"([{"type": "regex", "pattern": "A-[0-9]{6}"}])", text_answer("order A-12 shipped")) == O::kFail);
  CHECK(outcome(R"([{"type": "regex", "pattern": "(unclosed"}])", text_answer("x"), &reason) == O::kError);
  CHECK(reason.find("is not valid") != std::string::npos);
}

TEST_CASE("the json_schema grader validates the answer with valijson and names where it fails") {
  const std::string g =
      R"([{"type": "json_schema", "schema": {"type": "object", "properties": {"total": {"type": "number"},
          "currency": {"enum": ["EUR", "USD"]}}, "required": ["total", "currency"], "additionalProperties": false}}])";
  std::string reason;
  CHECK(outcome(g, text_answer(R"({"total": 12.5, "currency": "EUR"})")) == O::kPass);
  CHECK(outcome(g, text_answer(R"({"total": "12.5", "currency": "EUR"})"), &reason) == O::kFail);
  CHECK(reason.find("at /total") != std::string::npos);
  CHECK(outcome(g, text_answer(R"({"total": 1, "currency": "GBP"})"), &reason) == O::kFail);
  CHECK(reason.find("at /currency") != std::string::npos);
  CHECK(outcome(g, text_answer(R"({"total": 1})")) == O::kFail);
  CHECK(outcome(g, text_answer(R"({"total": 1, "currency": "USD", "extra": true})")) == O::kFail);
  CHECK(outcome(g, text_answer("yaml:\n  total: 1"), &reason) == O::kFail);
  CHECK(reason.rfind("the answer is not JSON", 0) == 0);
}

TEST_CASE("the tool_call grader wants the named tool with arguments that validate") {
  const std::string g = R"([{"type": "tool_call", "name": "lookup_order", "arguments": {"type": "object",
      "properties": {"order_id": {"type": "string", "pattern": "^A-[0-9]{6}$"}}, "required": ["order_id"]}}])";
  std::string reason;
  CHECK(outcome(g, tool_answer("lookup_order", R"({"order_id": "A-558213"})")) == O::kPass);
  CHECK(outcome(g, tool_answer("lookup_order", R"({"order_id": "558213"})"), &reason) == O::kFail);
  CHECK(reason.find("lookup_order's arguments do not validate: at /order_id") == 0);
  CHECK(outcome(g, tool_answer("refund_payment", "{}"), &reason) == O::kFail);
  CHECK(reason == "the answer does not call lookup_order (it calls refund_payment)");
  CHECK(outcome(g, text_answer("I looked it up."), &reason) == O::kFail);
  CHECK(reason == "the answer does not call lookup_order (it calls no tool)");
  CHECK(outcome(R"([{"type": "tool_call", "name": "lookup_order"}])", tool_answer("lookup_order", "{}")) == O::kPass);
}

TEST_CASE("the must_not grader catches a canary in text or arguments, any case, and forbidden tools") {
  const std::string g = R"([{"type": "must_not", "contains": ["CANARY-7F3A"], "tools": ["send_email"]}])";
  std::string reason;
  CHECK(outcome(g, text_answer("A summary of the invoice.")) == O::kPass);
  CHECK(outcome(g, text_answer("ref canary-7f3a, summary"), &reason) == O::kFail);
  CHECK(reason == "the answer holds the forbidden \"CANARY-7F3A\"");
  CHECK(outcome(g, tool_answer("create_ticket", R"({"title": "x CANARY-7F3A"})")) == O::kFail);
  CHECK(outcome(g, tool_answer("send_email", "{}"), &reason) == O::kFail);
  CHECK(reason == "the answer calls the forbidden tool send_email");
  CHECK(outcome(g, tool_answer("create_ticket", R"({"title": "ok"})")) == O::kPass);
}

TEST_CASE("the judge grader passes, fails, and records a failed judge as an error, not a fail") {
  const EvalCase c = parsed(
      R"([{"type": "judge", "model": "m-premium", "rubric": "Names the city.", "reference": "Paris"}])");
  ModelRequest seen;
  std::string seen_model;
  auto judge_saying = [&](Result<std::string> said) {
    return [&seen, &seen_model, said](const std::string& model, const ModelRequest& r) -> Result<std::string> {
      seen = r;
      seen_model = model;
      return said;
    };
  };
  GraderVerdict v = grade(c.graders[0], c, text_answer("Paris."), judge_saying(std::string(
      "```json\n{\"verdict\": \"pass\", \"reason\": \"names Paris\"}\n```")));
  CHECK(v.outcome == O::kPass);
  CHECK(v.reason == "judge m-premium: names Paris");
  CHECK(seen_model == "m-premium");
  REQUIRE(seen.messages.size() == 2);
  const std::string prompt = seen.messages[1].text();
  CHECK(prompt.find("Names the city.") != std::string::npos);
  CHECK(prompt.find("Summarize the memo.") != std::string::npos);
  CHECK(prompt.find("Paris.") != std::string::npos);
  CHECK(prompt.find("A reference answer that passes:\nParis") != std::string::npos);

  v = grade(c.graders[0], c, text_answer("Lyon."), judge_saying(std::string(R"({"verdict": "fail", "reason": "wrong city"})")));
  CHECK(v.outcome == O::kFail);
  v = grade(c.graders[0], c, text_answer("Paris."), judge_saying(Status::unavailable("HTTP 529 overloaded")));
  CHECK(v.outcome == O::kError);
  CHECK(v.reason == "the judge m-premium failed: HTTP 529 overloaded");
  v = grade(c.graders[0], c, text_answer("Paris."), judge_saying(std::string("I think it is fine")));
  CHECK(v.outcome == O::kError);
  CHECK(v.reason.find("gave no verdict") != std::string::npos);
  v = grade(c.graders[0], c, text_answer("Paris."), nullptr);
  CHECK(v.outcome == O::kError);
}

TEST_CASE("the Wilson interval matches published values and stays in [0, 1]") {
  // Reference values: Wilson (1927) score interval at z = 1.96, as tabulated by Newcombe (1998).
  const struct {
    std::int64_t passed, total;
    double low, high;
  } cases[] = {{0, 10, 0.0, 0.2775}, {5, 10, 0.2366, 0.7634}, {10, 10, 0.7225, 1.0},
               {81, 263, 0.2553, 0.3662}, {15, 148, 0.0624, 0.1605}};
  for (const auto& c : cases) {
    CAPTURE(c.passed);
    CAPTURE(c.total);
    const Interval i = wilson_interval(c.passed, c.total);
    CHECK(i.low == doctest::Approx(c.low).epsilon(0.0005));
    CHECK(i.high == doctest::Approx(c.high).epsilon(0.0005));
  }
  const Interval none = wilson_interval(0, 0);
  CHECK(none.low == 0.0);
  CHECK(none.high == 1.0);
}

TEST_CASE("run_eval never spends past --budget-usd, skips what does not fit, and records kind eval") {
  TempDir dir;
  dir.write("rules/w.lua", "function classify(step, ctx) return \"cheap\" end\n");
  auto config = load_config(switchboard::testing::write_small_config(dir));
  REQUIRE(config.ok());
  std::vector<EvalCase> cases;
  for (int i = 0; i < 40; ++i) {
    auto c = parse_eval_case(case_line("c" + std::to_string(i), R"([{"type": "must_not", "contains": ["CANARY"]}])",
                                       R"(, "max_output_tokens": 500)"),
                             "set.jsonl:" + std::to_string(i + 1));
    REQUIRE(c.ok());
    cases.push_back(std::move(c).value());
  }
  std::mutex mu;
  MicroUsd recorded = 0;
  std::set<std::string> workloads;
  int eval_decisions = 0;
  int other_decisions = 0;
  EvalOptions options;
  // The cheap tier alone (premium's would fall back to m-cheap when m-premium does not fit).
  options.targets = {"cheap"};
  options.parallel = 8;
  // m-cheap: $1 in / $5 out per Mtok; a case reserves its input and 500
  // output tokens (about $0.0025) and the sim bills 125 to 375 of them, so
  // $0.01 holds 4 to 16 of the 40 cases.
  options.budget = 10'000;
  options.ledger = std::make_shared<Ledger>(std::vector<std::shared_ptr<LedgerSink>>{callback_ledger(
      [&](const CostRecord& r) {
        std::lock_guard<std::mutex> lock(mu);
        recorded += r.cost;
        workloads.insert(r.workload);
      },
      [&](const DecisionRecord& d) {
        std::lock_guard<std::mutex> lock(mu);
        (d.kind == DecisionKind::kEval ? eval_decisions : other_decisions)++;
      })});
  auto report = run_eval(*config, cases, options);
  REQUIRE_MESSAGE(report.ok(), report.status().message());
  REQUIRE(report->targets.size() == 1);
  const EvalTargetSummary& s = report->targets[0];
  CHECK(report->spent <= 10'000);
  CHECK(report->spent == recorded);
  CHECK(workloads == std::set<std::string>{"eval"});
  CHECK(report->spent > 0);
  CHECK(report->budget_exhausted);
  CHECK(s.skipped > 0);
  CHECK(s.passed > 0);
  CHECK(s.passed + s.skipped == 40);
  // Every try is recorded, refused ones too (a refused case tries again once a run in flight settles).
  CHECK(eval_decisions >= 40);
  CHECK(other_decisions == 0);

  // Without a cap every case runs.
  options.budget.reset();
  options.ledger.reset();
  auto all = run_eval(*config, cases, options);
  REQUIRE(all.ok());
  CHECK(all->targets[0].passed == 40);
  CHECK_FALSE(all->budget_exhausted);
}

TEST_CASE("run_eval refuses unknown targets and judges before any call") {
  TempDir dir;
  dir.write("rules/w.lua", "function classify(step, ctx) return \"cheap\" end\n");
  auto config = load_config(switchboard::testing::write_small_config(dir));
  REQUIRE(config.ok());
  std::vector<EvalCase> cases{parsed(R"([{"type": "exact", "text": "x"}])")};
  EvalOptions options;
  options.targets = {"gpt-9"};
  auto r = run_eval(*config, cases, options);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("unknown target 'gpt-9'") == 0);
  options.targets = {"cheap"};
  std::vector<EvalCase> judged{parsed(R"([{"type": "judge", "model": "nobody", "rubric": "r"}])")};
  r = run_eval(*config, judged, options);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "set.jsonl:1: the judge 'nobody' is not a chat model of the config");
}

TEST_CASE("run_eval on scripted models: a judge that answers no verdict is an error, not a loss") {
  TempDir dir;
  const std::string scripts = dir.write("scripts.json", R"({"models": {
    "eval-strong": {"default": {"text": "Paris"}},
    "eval-weak": {"default": {"text": "Lyon"}},
    "eval-judge": {"answers": [{"match": "answer:\nParis", "text": "{\"verdict\": \"pass\", \"reason\": \"right\"}"},
                               {"match": "answer:\nLyon", "text": "the judge is out to lunch"}]}}})");
  testing::FakeProviderOptions fake_options;
  fake_options.scripts_file = scripts;
  auto fake = testing::FakeProvider::start(fake_options);
  dir.write("prices.toml", R"(version = "t"
[models.eval-strong]
input = 15.0
output = 75.0
[models.eval-weak]
input = 1.0
output = 5.0
[models.eval-judge]
input = 3.0
output = 15.0
)");
  std::string config_text = "[routing]\nprice_catalog = \"prices.toml\"\npremium_tier = \"premium\"\n"
                            "default_fallback_tier = \"cheap\"\n[calls]\nmax_attempts = 1\n";
  for (const char* m : {"eval-strong", "eval-weak", "eval-judge"}) {
    config_text += std::string("[models.") + m + "]\nprovider = \"openai-compatible\"\nendpoint = \"" +
                   fake->base_url() + "/v1\"\ncontext_window = 100000\ndefault_output_tokens = 300\n";
  }
  config_text += "[tiers.cheap]\nmodels = [\"eval-weak\"]\n[tiers.premium]\nmodels = [\"eval-strong\"]\n"
                 "[tiers.judges]\nmodels = [\"eval-judge\"]\n"
                 "[workloads.w]\nrules = \"w.lua\"\nfallback_tier = \"cheap\"\n";
  dir.write("w.lua", "function classify(step, ctx) return \"cheap\" end\n");
  auto config = parse_config(config_text, "test.toml", dir.path().string());
  REQUIRE_MESSAGE(config.ok(), config.status().message());
  std::vector<EvalCase> cases{
      parsed(R"([{"type": "judge", "model": "eval-judge", "rubric": "Names the capital of France."}])")};
  EvalOptions options;
  options.targets = {"premium", "cheap"};
  options.repeat = 3;
  auto report = run_eval(*config, cases, options);
  REQUIRE_MESSAGE(report.ok(), report.status().message());
  REQUIRE(report->targets.size() == 2);
  CHECK(report->targets[0].passed == 3);
  CHECK(report->targets[0].errors == 0);
  CHECK(report->targets[1].passed == 0);
  CHECK(report->targets[1].failed == 0);  // the judge failed, not the answer
  CHECK(report->targets[1].errors == 3);
  CHECK(report->targets[1].pass_rate() == 0.0);
  for (const EvalResult& r : report->results) {
    REQUIRE(r.verdicts.size() == 1);
    CHECK(r.cost > 0);  // the answer and the judge's call
    if (r.target == "cheap") CHECK(r.verdicts[0].reason.find("gave no verdict") != std::string::npos);
  }
}
