// The call path: sim answers, retries with backoff and Retry-After, fallbacks,
// context-window skips, fan-out with an aggregator, budgets and the ledger.
#include <doctest/doctest.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <thread>

#include "test_util.h"

using namespace switchboard;
using namespace switchboard::testing;
using namespace std::chrono_literals;

namespace {

// A host-supplied client that answers from a script: each call takes the next
// outcome (the last one repeats), after an optional delay.
class ScriptedClient final : public ModelClient {
 public:
  struct Outcome {
    Status failure;                   // ok = answer with `usage`
    Usage usage;
    std::chrono::milliseconds delay{0};
    std::vector<std::string> chunks;  // streamed before the outcome
    bool hang = false;                // after the chunks, wait until the step's bounds stop the call
  };
  explicit ScriptedClient(std::vector<Outcome> script) : script_(std::move(script)) {}

  std::string provider() const override { return "scripted"; }
  Result<ModelResponse> invoke(const ModelRequest& request) override { return stream(request, nullptr); }
  Result<ModelResponse> stream(const ModelRequest& request, const ChunkHandler& on_chunk) override {
    Outcome o;
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(request);
      o = script_[std::min(calls_, script_.size() - 1)];
      ++calls_;
    }
    // Waits as a transport does: until the delay is over or the bounds stop the call.
    const CallBounds& bounds = request.bounds;
    const auto wait = [&](std::chrono::milliseconds d) {
      if (const auto left = bounds.remaining(); left && *left < d) d = *left;
      if (bounds.cancellation) {
        bounds.cancellation->sleep_for(d);
      } else {
        std::this_thread::sleep_for(d);
      }
      return bounds.check();
    };
    if (Status s = wait(o.delay); !s.ok()) return s;
    for (const std::string& c : o.chunks) {
      StreamChunk chunk;
      chunk.text = c;
      if (on_chunk) on_chunk(chunk);
    }
    if (o.hang) {
      Status s;
      while ((s = wait(10'000ms)).ok()) {
      }
      return s;
    }
    if (!o.failure.ok()) return o.failure;
    ModelResponse r;
    r.content.push_back(ContentBlock::of_text("answer " + std::to_string(calls())));
    r.usage = o.usage;
    return r;
  }
  size_t calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  std::vector<ModelRequest> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Outcome> script_;
  size_t calls_ = 0;
  std::vector<ModelRequest> requests_;
};

ScriptedClient::Outcome ok_with(std::int64_t input, std::int64_t output, std::chrono::milliseconds delay = 0ms) {
  ScriptedClient::Outcome o;
  o.usage.input_tokens = input;
  o.usage.output_tokens = output;
  o.delay = delay;
  return o;
}

ScriptedClient::Outcome failing(Status s) {
  ScriptedClient::Outcome o;
  o.failure = std::move(s);
  return o;
}

// An engine on small_config() whose rules return `answer`, a dispatcher over
// it with the given clients, its ledger records collected, its waits recorded.
struct Rig {
  TempDir dir;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<Dispatcher> dispatcher;
  std::mutex mu;
  std::vector<CostRecord> ledger;
  std::vector<std::chrono::milliseconds> waits;

  Rig(const std::string& rules, const std::string& extra_config,
      std::map<std::string, std::shared_ptr<ModelClient>> overrides) {
    auto e = engine_with_rules(dir, rules, extra_config);
    REQUIRE_MESSAGE(e.ok(), e.status().to_string());
    engine = std::move(e).value();
    auto clients = ModelClients::from_config(engine->config());
    REQUIRE(clients.ok());
    for (auto& [model, client] : overrides) clients->set(model, client);
    DispatcherOptions o;
    o.ledger = std::make_shared<Ledger>(std::vector<std::shared_ptr<LedgerSink>>{callback_ledger([this](const CostRecord& r) {
      std::lock_guard<std::mutex> lock(mu);
      ledger.push_back(r);
    })});
    o.sleep = [this](std::chrono::milliseconds d) {
      std::lock_guard<std::mutex> lock(mu);
      waits.push_back(d);
    };
    o.seed = 42;
    dispatcher = std::make_unique<Dispatcher>(*engine, std::move(clients).value(), std::move(o));
  }

  StepResult run(std::int64_t input_tokens = 1000, std::string role = "plan") {
    StepCall call;
    call.step.role = std::move(role);
    call.step.input_tokens = input_tokens;
    return dispatcher->run("w", call);
  }
};

const char* kPremium = R"lua(function classify(step, ctx) return "premium" end)lua";

std::vector<CallStatus> statuses(const std::vector<CostRecord>& records) {
  std::vector<CallStatus> out;
  for (const CostRecord& r : records) out.push_back(r.status);
  return out;
}

}  // namespace

TEST_SUITE("dispatch") {

TEST_CASE("the sim provider answers deterministically from the request") {
  ModelSpec spec;
  spec.name = spec.model_id = "m";
  spec.default_output_tokens = 1000;
  auto sim = make_sim_client(spec, SimSettings{});
  ModelRequest req;
  req.messages = {Message::of_text("user", "summarise the report")};
  req.counted_input_tokens = 4321;
  auto a = sim->invoke(req);
  auto b = sim->invoke(req);
  REQUIRE(a.ok());
  CHECK(a->text() == b->text());
  CHECK(a->usage == b->usage);
  CHECK(a->text().find("[sim m ") == 0);
  CHECK(a->text().find("summarise the report") != std::string::npos);
  CHECK(a->stop_reason == StopReason::kEndTurn);
  CHECK(a->usage.input_tokens == 4321);
  CHECK(a->usage.output_tokens >= 250);
  CHECK(a->usage.output_tokens <= 750);
  CHECK(a->usage.reasoning_tokens == 0);

  req.reasoning.level = Reasoning::kHigh;
  req.max_output_tokens = 400;
  auto high = sim->invoke(req);
  REQUIRE(high.ok());
  CHECK(high->usage.reasoning_tokens > 0);
  CHECK(high->usage.output_tokens + high->usage.reasoning_tokens <= 400);
  // Its thinking comes first, signed; sent back altered, it is refused.
  REQUIRE(high->content.size() == 2);
  CHECK(high->content[0].type == ContentBlock::Type::kThinking);
  CHECK(high->content[0].origin == "sim");
  ModelRequest next = req;
  next.messages.push_back(Message::of("assistant", high->content));
  next.messages.push_back(Message::of_text("user", "go on"));
  CHECK(sim->invoke(next).ok());
  next.messages[1].content[0].text += " (edited)";
  auto altered = sim->invoke(next);
  REQUIRE_FALSE(altered.ok());
  CHECK(altered.status().code() == Status::Code::kUpstream);
  CHECK(altered.status().message().find("signature does not match") != std::string::npos);

  req.reasoning.level = Reasoning::kDefault;
  req.output_format.type = OutputFormat::Type::kJsonObject;
  auto json = sim->invoke(req);
  CHECK(json->text().find("{\"sim\":true") == 0);

  req.output_format.type = OutputFormat::Type::kJsonSchema;
  req.output_format.schema_json =
      R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"x":{"type":"string"}},"required":["name","age"]})";
  CHECK(sim->invoke(req)->text() == R"({"age":1,"name":"sim"})");

  req.tools = {ToolSpec::of_function("search", "web search", R"({"type":"object","properties":{"q":{"type":"string"}},"required":["q"]})")};
  auto tool = sim->invoke(req);
  REQUIRE(tool->tool_calls().size() == 1);
  CHECK(tool->tool_calls()[0].name == "search");
  CHECK(tool->tool_calls()[0].arguments_json == R"({"q":"sim"})");
  CHECK(tool->stop_reason == StopReason::kToolUse);
  req.tool_choice = ToolChoice{ToolChoice::Mode::kNone, ""};
  CHECK(sim->invoke(req)->tool_calls().empty());
  // After a tool result, auto answers; a forced tool is called all the same.
  req.tool_choice.reset();
  req.tools.push_back(ToolSpec::of_function("fetch", "", "{}"));
  req.messages.push_back(Message::of("tool", {ContentBlock::of_tool_result("c1", "search", "found")}));
  CHECK(sim->invoke(req)->tool_calls().empty());
  req.tool_choice = ToolChoice{ToolChoice::Mode::kNamed, "fetch"};
  auto named = sim->invoke(req);
  REQUIRE(named->tool_calls().size() == 1);
  CHECK(named->tool_calls()[0].name == "fetch");
  // A stop sequence ends the text.
  ModelRequest stopping;
  stopping.messages = {Message::of_text("user", "say it")};
  stopping.sampling.stop = {" answer"};
  auto stopped = sim->invoke(stopping);
  CHECK(stopped->stop_reason == StopReason::kStopSequence);
  CHECK(stopped->stop_sequence == " answer");
  CHECK(stopped->text().find(" answer") == std::string::npos);

  ModelRequest uncounted;
  uncounted.messages = {Message::of_text("user", std::string(300, 'x'))};
  CHECK(sim->invoke(uncounted)->usage.input_tokens == 100);  // one token per three bytes
  CHECK(sim->invoke(ModelRequest{}).status().code() == Status::Code::kInvalidArgument);
}

TEST_CASE("a sim call is billed from the catalog and recorded with both versions") {
  Rig rig(kPremium, "", {});
  StepResult r = rig.run(2000);
  REQUIRE_MESSAGE(r.status.ok(), r.status.to_string());
  CHECK(r.model == "m-premium");
  REQUIRE(rig.ledger.size() == 1);
  const CostRecord& rec = rig.ledger[0];
  CHECK(rec.status == CallStatus::kOk);
  CHECK(rec.provider == "sim");
  CHECK(rec.usage.input_tokens == 2000);
  CHECK(rec.catalog_version == "test-1");
  CHECK(rec.rules_version == rig.engine->rules_version("w"));
  CHECK(rec.trace_id == r.trace_id);
  CHECK(rec.cost == rig.engine->config().prices->cost("m-premium", rec.usage).value());
  CHECK(r.cost == rec.cost);
  // The output cap sent is the model's default (the budget reserved for it).
  CHECK(rec.usage.output_tokens <= 1000);
}

TEST_CASE("an answered call's record carries the engine's own count of what it sent, for calibration") {
  auto client = std::make_shared<ScriptedClient>(
      std::vector<ScriptedClient::Outcome>{failing(Status::upstream("bad request")), ok_with(70, 5)});
  Rig rig(kPremium, "", {{"m-premium", client}, {"m-cheap", client}});
  StepResult r = rig.run(2000);
  REQUIRE_MESSAGE(r.status.ok(), r.status.to_string());
  REQUIRE(rig.ledger.size() == 2);
  CHECK(rig.ledger[0].status == CallStatus::kFallback);
  CHECK(rig.ledger[0].counted_input_tokens == 0);  // no answer, nothing to calibrate against
  const CostRecord& answered = rig.ledger[1];
  REQUIRE(client->requests().size() == 2);
  const ModelSpec& spec = *rig.engine->config().find_model(answered.model);
  const Result<std::int64_t> counted = count_request_tokens_unscaled(spec, client->requests()[1]);
  REQUIRE(counted.ok());
  CHECK(*counted > 0);
  CHECK(answered.counted_input_tokens == *counted);
}

TEST_CASE("unavailable failures are retried with jittered exponential backoff") {
  auto flaky = std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Outcome>{
      failing(Status::unavailable("HTTP 503")), failing(Status::unavailable("HTTP 502")), ok_with(100, 20)});
  Rig rig(kPremium, "[calls]\nmax_attempts = 3\nbackoff_initial_ms = 100\nbackoff_max_ms = 150\n",
          {{"m-premium", flaky}});
  StepResult r = rig.run();
  REQUIRE(r.status.ok());
  CHECK(r.attempts == 3);
  CHECK(r.fallbacks == 0);
  CHECK(statuses(rig.ledger) == std::vector<CallStatus>{CallStatus::kError, CallStatus::kError, CallStatus::kOk});
  CHECK(rig.ledger[0].error == "HTTP 503");
  CHECK(rig.ledger[0].cost == 0);
  REQUIRE(rig.waits.size() == 2);
  CHECK(rig.waits[0] <= 100ms);  // uniform in [0, 100]
  CHECK(rig.waits[1] <= 150ms);  // uniform in [0, min(150, 200)]
}

TEST_CASE("Retry-After is waited exactly and a long one falls back at once") {
  auto limited = std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Outcome>{
      failing(Status::unavailable("HTTP 429", 1500ms)), ok_with(100, 20)});
  Rig rig(kPremium, "[calls]\nretry_after_max_ms = 2000\n", {{"m-premium", limited}});
  REQUIRE(rig.run().status.ok());
  REQUIRE(rig.waits.size() == 1);
  CHECK(rig.waits[0] == 1500ms);

  auto very_limited = std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Outcome>{
      failing(Status::unavailable("HTTP 429", 60'000ms))});
  Rig rig2(kPremium, "[calls]\nretry_after_max_ms = 2000\n", {{"m-premium", very_limited}});
  StepResult r = rig2.run();
  REQUIRE(r.status.ok());
  CHECK(rig2.waits.empty());
  CHECK(r.model == "m-cheap");  // premium's fallback
  CHECK(r.fallbacks == 1);
  CHECK(statuses(rig2.ledger) == std::vector<CallStatus>{CallStatus::kFallback, CallStatus::kOk});
  CHECK(rig2.ledger[0].model == "m-premium");
  CHECK(rig2.ledger[1].model == "m-cheap");
  CHECK(rig2.ledger[1].tier == "premium");
}

TEST_CASE("an upstream error is not retried but falls back to the next model") {
  auto broken = std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Outcome>{
      failing(Status::upstream("openai m-premium: malformed JSON"))});
  Rig rig(kPremium, "", {{"m-premium", broken}});
  StepResult r = rig.run();
  REQUIRE(r.status.ok());
  CHECK(broken->calls() == 1);
  CHECK(r.model == "m-cheap");
  CHECK(statuses(rig.ledger) == std::vector<CallStatus>{CallStatus::kFallback, CallStatus::kOk});
  CHECK(rig.ledger[0].error == "openai m-premium: malformed JSON");
}

TEST_CASE("when every model fails the step fails and every attempt is recorded") {
  auto down = std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Outcome>{
      failing(Status::unavailable("HTTP 500"))});
  Rig rig(kPremium, "[calls]\nmax_attempts = 2\nbackoff_initial_ms = 1\n",
          {{"m-premium", down}, {"m-cheap", down}});
  StepResult r = rig.run();
  CHECK(r.status.code() == Status::Code::kUnavailable);
  CHECK(r.attempts == 4);
  CHECK(statuses(rig.ledger) == std::vector<CallStatus>{CallStatus::kError, CallStatus::kFallback,
                                                        CallStatus::kError, CallStatus::kError});
  CHECK(r.records.size() == 4);
}

TEST_CASE("models whose context window cannot hold the request are skipped") {
  // m-cheap holds 100k: 99,800 input + its 500 output cap do not fit; m-premium (200k) does.
  Rig rig(R"lua(function classify(step, ctx) return { tier = "wide" } end)lua",
          "[tiers.wide]\nmodels = [\"m-cheap\", \"m-premium\"]\n", {});
  StepResult r = rig.run(99'800);
  REQUIRE(r.status.ok());
  CHECK(r.model == "m-premium");
  CHECK(r.fallbacks == 0);
  REQUIRE(rig.ledger.size() == 1);
  CHECK(rig.ledger[0].model == "m-premium");

  StepResult too_big = rig.run(250'000);
  CHECK(too_big.status.code() == Status::Code::kUpstream);
  CHECK(too_big.status.message().find("no model of tier 'wide' has a context window for 250000") == 0);
  CHECK(too_big.status.reason() == Status::Reason::kNoContextWindow);  // what the gateway's 400 keys on
  REQUIRE(rig.ledger.size() == 2);
  CHECK(rig.ledger[1].status == CallStatus::kError);
  CHECK(too_big.attempts == 0);
}

TEST_CASE("a budget refusal is written to the ledger and a call settles its actual cost") {
  Rig rig(kPremium, "budget_usd = 0.01\n", {});
  // Not even a minimal answer fits: 1,000 input + 16 output on m-premium: $0.015 + $0.0012 > $0.01.
  StepResult refused = rig.run(1000);
  CHECK(refused.status.code() == Status::Code::kOverBudget);
  REQUIRE(rig.ledger.size() == 1);
  CHECK(rig.ledger[0].status == CallStatus::kRefusedByBudget);
  CHECK_FALSE(rig.ledger[0].call_id.empty());
  CHECK(rig.engine->budgets().snapshot("workload:w").spent == 0);

  Rig cheap(R"lua(function classify(step, ctx) return "cheap" end)lua", "budget_usd = 0.05\n", {});
  StepResult ok = cheap.run(1000);
  REQUIRE(ok.status.ok());
  const auto book = cheap.engine->budgets().snapshot("workload:w");
  CHECK(book.spent == ok.cost);
  CHECK(book.reserved == 0);
}

TEST_CASE("a stream that breaks after delivering text ends the step: no retry, no fallback, the record says why") {
  ScriptedClient::Outcome cut = failing(Status::unavailable("stream ended before its final event"));
  cut.chunks = {"Hel", "lo"};
  auto breaks = std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Outcome>{cut, ok_with(10, 5)});
  auto steady = std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Outcome>{ok_with(10, 5)});
  Rig rig(kPremium, "[calls]\nmax_attempts = 3\n", {{"m-premium", breaks}, {"m-cheap", steady}});
  std::vector<std::pair<std::string, bool>> seen;
  StepCall call;
  call.step.role = "chat";
  call.step.input_tokens = 10;
  call.on_chunk = [&](const StreamChunk& c) { seen.emplace_back(std::string(c.text), c.restart); };
  StepResult r = rig.dispatcher->run("w", call);
  CHECK(r.status.code() == Status::Code::kUnavailable);
  CHECK(r.attempts == 1);
  CHECK(r.fallbacks == 0);
  CHECK(breaks->requests().size() == 1);
  CHECK(steady->requests().empty());
  CHECK(seen == std::vector<std::pair<std::string, bool>>{{"Hel", false}, {"lo", false}});
  CHECK(statuses(rig.ledger) == std::vector<CallStatus>{CallStatus::kError});
  REQUIRE(r.records.size() == 1);
  CHECK(r.records[0].error.find("stream broke after its first chunks reached the caller") != std::string::npos);
  CHECK(r.records[0].error.find("stream ended before its final event") != std::string::npos);
}

TEST_CASE("a cancelled step stops its call at once, records it cancelled with estimated usage, starts nothing else") {
  ScriptedClient::Outcome hangs;
  hangs.chunks = {"Hello ", "wor"};
  hangs.hang = true;
  auto premium = std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Outcome>{hangs});
  auto cheap = std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Outcome>{ok_with(10, 5)});
  Rig rig(kPremium, "[calls]\nmax_attempts = 3\n", {{"m-premium", premium}, {"m-cheap", cheap}});
  StepCall call;
  call.step.role = "chat";
  call.step.input_tokens = 1000;
  call.bounds.cancellation = std::make_shared<Cancellation>();
  std::thread canceller;
  std::chrono::steady_clock::time_point cancelled_at;
  call.on_chunk = [&](const StreamChunk& c) {
    if (c.text == "wor") {
      canceller = std::thread([&] {
        std::this_thread::sleep_for(20ms);
        cancelled_at = std::chrono::steady_clock::now();
        call.bounds.cancellation->cancel("client disconnected");
      });
    }
  };
  StepResult r = rig.dispatcher->run("w", call);
  const auto returned = std::chrono::steady_clock::now();
  canceller.join();
  CHECK(returned - cancelled_at < 100ms);
  CHECK(r.status.code() == Status::Code::kCancelled);
  CHECK(r.status.message() == "client disconnected");
  CHECK(r.attempts == 1);
  CHECK(cheap->calls() == 0);
  CHECK(rig.waits.empty());
  CHECK(statuses(rig.ledger) == std::vector<CallStatus>{CallStatus::kCancelled});
  REQUIRE(r.records.size() == 1);
  const CostRecord& rec = r.records[0];
  CHECK(rec.usage_estimated);
  CHECK(rec.usage.input_tokens == 1000);
  CHECK(rec.usage.output_tokens == estimate_tokens("Hello wor"));
  CHECK(rec.cost > 0);
  CHECK(r.cost == rec.cost);
  CHECK(rec.error == "client disconnected");
}

TEST_CASE("a step cancelled before it starts calls no model") {
  auto premium = std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Outcome>{ok_with(10, 5)});
  Rig rig(kPremium, "", {{"m-premium", premium}});
  StepCall call;
  call.step.role = "chat";
  call.step.input_tokens = 10;
  call.bounds.cancellation = std::make_shared<Cancellation>();
  call.bounds.cancellation->cancel("client disconnected");
  StepResult r = rig.dispatcher->run("w", call);
  CHECK(r.status.code() == Status::Code::kCancelled);
  CHECK(premium->calls() == 0);
  CHECK(r.attempts == 0);
  CHECK(r.cost == 0);
}

TEST_CASE("a step's deadline covers every attempt: the one under way is cut and recorded cancelled") {
  ScriptedClient::Outcome slow_failure = failing(Status::unavailable("HTTP 503: overloaded"));
  slow_failure.delay = 60ms;
  auto premium = std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Outcome>{slow_failure});
  Rig rig(kPremium, "[calls]\nmax_attempts = 5\n", {{"m-premium", premium}});
  StepCall call;
  call.step.role = "chat";
  call.step.input_tokens = 10;
  const auto start = std::chrono::steady_clock::now();
  call.bounds.deadline = start + 100ms;
  call.bounds.deadline_source = "request_timeout_ms = 100";
  StepResult r = rig.dispatcher->run("w", call);
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(took >= 100ms);
  CHECK(took < 400ms);
  CHECK(r.status.code() == Status::Code::kDeadlineExceeded);
  CHECK(r.status.message() == "the step's deadline passed (request_timeout_ms = 100)");
  CHECK(premium->calls() == 2);
  CHECK(statuses(rig.ledger) == std::vector<CallStatus>{CallStatus::kError, CallStatus::kCancelled});
  CHECK(rig.ledger.back().usage_estimated);
}

TEST_CASE("a cancellation cuts a retry's backoff short") {
  TempDir dir;
  auto engine = engine_with_rules(dir, kPremium, "[calls]\nmax_attempts = 3\nretry_after_max_ms = 60000\n");
  REQUIRE(engine.ok());
  auto clients = ModelClients::from_config((*engine)->config());
  REQUIRE(clients.ok());
  auto premium = std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Outcome>{
      failing(Status::unavailable("HTTP 429: slow down", std::chrono::milliseconds(30'000)))});
  clients->set("m-premium", premium);
  Dispatcher dispatcher(**engine, std::move(clients).value());  // its own sleep: a real wait
  StepCall call;
  call.step.role = "chat";
  call.step.input_tokens = 10;
  call.bounds.cancellation = std::make_shared<Cancellation>();
  std::thread canceller([&] {
    std::this_thread::sleep_for(50ms);
    call.bounds.cancellation->cancel("client disconnected");
  });
  const auto start = std::chrono::steady_clock::now();
  StepResult r = dispatcher.run("w", call);
  canceller.join();
  CHECK(std::chrono::steady_clock::now() - start < 1s);  // not the 30 s Retry-After
  CHECK(r.status.code() == Status::Code::kCancelled);
  CHECK(premium->calls() == 1);
  CHECK(statuses(r.records) == std::vector<CallStatus>{CallStatus::kError});
}

TEST_CASE("a stream that breaks before delivering text still retries") {
  ScriptedClient::Outcome cut = failing(Status::unavailable("connection reset"));
  ScriptedClient::Outcome whole = ok_with(10, 5);
  whole.chunks = {"Good", "bye"};
  auto flaky = std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Outcome>{cut, whole});
  Rig rig(kPremium, "[calls]\nmax_attempts = 2\n", {{"m-premium", flaky}});
  std::vector<std::pair<std::string, bool>> seen;
  StepCall call;
  call.step.role = "chat";
  call.step.input_tokens = 10;
  call.on_chunk = [&](const StreamChunk& c) { seen.emplace_back(std::string(c.text), c.restart); };
  StepResult r = rig.dispatcher->run("w", call);
  REQUIRE(r.status.ok());
  CHECK(seen == std::vector<std::pair<std::string, bool>>{{"Good", false}, {"bye", false}});
  CHECK(statuses(rig.ledger) == std::vector<CallStatus>{CallStatus::kError, CallStatus::kOk});
}

TEST_CASE("with restart_streams a stream that breaks falls back and the next answer starts with restart") {
  ScriptedClient::Outcome cut = failing(Status::unavailable("stream ended before its final event"));
  cut.chunks = {"Hel", "lo"};
  auto breaks = std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Outcome>{cut});
  ScriptedClient::Outcome whole = ok_with(10, 5);
  whole.chunks = {"Good", "bye"};
  auto steady = std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Outcome>{whole});
  Rig rig(kPremium, "[calls]\nmax_attempts = 1\n", {{"m-premium", breaks}, {"m-cheap", steady}});
  std::vector<std::pair<std::string, bool>> seen;
  StepCall call;
  call.step.role = "chat";
  call.step.input_tokens = 10;
  call.on_chunk = [&](const StreamChunk& c) { seen.emplace_back(std::string(c.text), c.restart); };
  call.restart_streams = true;
  StepResult r = rig.dispatcher->run("w", call);
  REQUIRE(r.status.ok());
  CHECK(seen == std::vector<std::pair<std::string, bool>>{{"Hel", false}, {"lo", false}, {"Good", true}, {"bye", false}});
  CHECK(statuses(rig.ledger) == std::vector<CallStatus>{CallStatus::kFallback, CallStatus::kOk});
}

TEST_CASE("the decision's reasoning and output cap reach the client") {
  auto client = std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Outcome>{ok_with(10, 5)});
  Rig rig(R"lua(function classify(step, ctx)
    return { tier = "premium", reasoning = "high", max_output_tokens = 321 }
  end)lua", "", {{"m-premium", client}});
  StepCall call;
  call.step.role = "format";
  call.step.input_tokens = 10;
  call.step.output_must_be_json = true;
  REQUIRE(rig.dispatcher->run("w", call).status.ok());
  const ModelRequest req = client->requests().at(0);
  CHECK(req.reasoning.level == Reasoning::kHigh);
  CHECK(req.max_output_tokens == 321);
  CHECK(req.output_format.type == OutputFormat::Type::kJsonObject);
  CHECK(req.counted_input_tokens == 10);
  REQUIRE(req.messages.size() == 1);
  CHECK(req.messages[0].role == "user");
}

TEST_CASE("a caller's explicit reasoning wins unless the rules pin theirs") {
  for (const bool pinned : {false, true}) {
    CAPTURE(pinned);
    auto client = std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Outcome>{ok_with(10, 5)});
    Rig rig(std::string(R"lua(function classify(step, ctx)
      return { tier = "premium", reasoning = "low", pin_reasoning = )lua") +
                (pinned ? "true" : "false") + " }\nend",
            "", {{"m-premium", client}});
    StepCall call;
    call.step.role = "plan";
    call.step.input_tokens = 10;
    call.request.messages.push_back(Message::of_text("user", "think hard"));
    call.request.reasoning.effort = Effort::kXHigh;
    call.request.reasoning.budget_tokens = 20000;
    const StepResult result = rig.dispatcher->run("w", call);
    REQUIRE(result.status.ok());
    CHECK(result.decision.reasoning_pinned == pinned);
    const ModelRequest req = client->requests().at(0);
    CHECK(req.reasoning.level == Reasoning::kLow);
    CHECK(req.reasoning.effort.has_value() == !pinned);
    CHECK(req.reasoning.budget_tokens.has_value() == !pinned);
  }
}

TEST_CASE("pin_reasoning must be a boolean") {
  auto client = std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Outcome>{ok_with(10, 5)});
  Rig rig(R"lua(function classify(step, ctx) return { tier = "premium", pin_reasoning = "yes" } end)lua", "",
          {{"m-premium", client}});
  const StepResult result = rig.run(10);
  REQUIRE(result.decision.error.has_value());
  CHECK(result.decision.error->find("'pin_reasoning' as a string; expected true or false") != std::string::npos);
}

TEST_CASE("a restarted host loads this period's spend from the SQLite ledger") {
  TempDir dir;
  const std::string db = (dir.path() / "ledger.db").string();
  MicroUsd spent = 0;
  {
    auto sink = open_sqlite_ledger(SqliteLedgerOptions{db});
    REQUIRE(sink.ok());
    Rig rig(kPremium, "budget_usd = 100.0\n", {});
    DispatcherOptions o;
    o.ledger = std::make_shared<Ledger>(std::vector<std::shared_ptr<LedgerSink>>{*sink});
    auto clients = ModelClients::from_config(rig.engine->config());
    Dispatcher d(*rig.engine, std::move(clients).value(), o);
    StepCall call;
    call.step.role = "plan";
    call.step.input_tokens = 500;
    for (int i = 0; i < 3; ++i) spent += d.run("w", call).cost;
    REQUIRE((*sink)->flush().ok());
  }
  Rig fresh(kPremium, "budget_usd = 100.0\n", {});
  auto counted = load_budget_spend(*fresh.engine, db);
  REQUIRE(counted.ok());
  CHECK(*counted == 3);
  CHECK(fresh.engine->budgets().snapshot("workload:w").spent == spent);
}

TEST_CASE("a step's upstream time is its model calls' and backoffs', not the caller's work on the chunks") {
  ScriptedClient::Outcome streamed = ok_with(100, 20, 50ms);
  streamed.chunks = {"a", "b", "c"};
  auto client = std::make_shared<ScriptedClient>(
      std::vector<ScriptedClient::Outcome>{failing(Status::unavailable("HTTP 503")), streamed});
  Rig rig(kPremium, "[calls]\nmax_attempts = 2\n", {{"m-premium", client}});
  StepCall call;
  call.step.role = "plan";
  call.step.input_tokens = 1000;
  call.on_chunk = [](const StreamChunk&) { std::this_thread::sleep_for(20ms); };  // the host's work
  const StepResult r = rig.dispatcher->run("w", call);
  REQUIRE_MESSAGE(r.status.ok(), r.status.to_string());
  CHECK(r.attempts == 2);
  CHECK(r.upstream >= 50ms);
  // The three chunks' 60 ms in the handler are outside it (latency is whole milliseconds, rounded down).
  CHECK(r.latency - std::chrono::duration_cast<std::chrono::milliseconds>(r.upstream) >= 59ms);
}

TEST_CASE("contemplating mode runs branches in parallel then aggregates") {
  auto slow = std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Outcome>{ok_with(100, 50, 300ms)});
  auto aggregator = std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Outcome>{ok_with(400, 80, 100ms)});
  Rig rig(R"lua(function classify(step, ctx) return { tier = "cheap", fanout = 3, aggregate = "premium" } end)lua", "",
          {{"m-cheap", slow}, {"m-premium", aggregator}});
  StepResult r = rig.run();
  REQUIRE_MESSAGE(r.status.ok(), r.status.to_string());
  CHECK(slow->calls() == 3);
  CHECK(aggregator->calls() == 1);
  // Latency tracks the slowest branch plus the aggregator (400 ms), not the sum (1,000 ms).
  CHECK(r.latency >= 400ms);
  CHECK(r.latency < 1000ms);
  // So does the time spent waiting on models.
  CHECK(r.upstream >= 400ms);
  CHECK(r.upstream <= r.latency + 1ms);
  REQUIRE(rig.ledger.size() == 4);
  const CostRecord& agg = rig.ledger.back();
  CHECK(agg.model == "m-premium");
  CHECK(agg.tier == "premium");
  CHECK(agg.parent_id.empty());
  MicroUsd sum = 0;
  for (const CostRecord& rec : rig.ledger) {
    CHECK(rec.trace_id == r.trace_id);
    if (&rec != &agg) CHECK(rec.parent_id == agg.call_id);
    sum += rec.cost;
  }
  CHECK(r.cost == sum);
  CHECK(r.cost > 0);
  // The aggregator read every branch's answer.
  const std::string prompt = aggregator->requests()[0].messages.back().content.at(0).text;
  CHECK(prompt.find("### Answer 3") != std::string::npos);
}

TEST_CASE("a call lent with std::move reaches every model call whole and is whole again after") {
  const auto conversation = [] {
    StepCall call;
    call.step.role = "plan";
    call.step.input_tokens = 10;
    call.request.messages.push_back(Message::of_text("system", "be brief"));
    call.request.messages.push_back(Message::of_text("user", "what is 2+2?"));
    ToolSpec tool;
    tool.name = "calculator";
    tool.parameters_json = R"({"type":"object","properties":{"x":{"type":"string"}}})";
    call.request.tools.push_back(tool);
    return call;
  };
  const auto texts = [](const std::vector<Message>& messages) {
    std::vector<std::string> out;
    for (const Message& m : messages) out.push_back(m.role + ": " + m.text());
    return out;
  };
  const std::vector<std::string> sent = {"system: be brief", "user: what is 2+2?"};

  SUBCASE("run, with a fan-out: each branch and the aggregator get the messages and tools") {
    auto cheap = std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Outcome>{ok_with(10, 5)});
    auto premium = std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Outcome>{ok_with(10, 5)});
    Rig rig(R"lua(function classify(step, ctx) return { tier = "cheap", fanout = 3, aggregate = "premium" } end)lua",
            "", {{"m-cheap", cheap}, {"m-premium", premium}});
    StepCall call = conversation();
    const StepResult r = rig.dispatcher->run("w", std::move(call));
    REQUIRE_MESSAGE(r.status.ok(), r.status.to_string());
    REQUIRE(cheap->requests().size() == 3);
    for (const ModelRequest& req : cheap->requests()) {
      CHECK(texts(req.messages) == sent);
      REQUIRE(req.tools.size() == 1);
      CHECK(req.tools[0].name == "calculator");
    }
    const ModelRequest agg = premium->requests().at(0);
    REQUIRE(agg.messages.size() == 3);  // the conversation, then the answers to compare
    CHECK(agg.messages[1].text() == "what is 2+2?");
    CHECK(agg.tools.size() == 1);
    // Given back: the host reads the call as it was.
    CHECK(texts(call.request.messages) == sent);  // NOLINT(bugprone-use-after-move): lent, documented
    REQUIRE(call.request.tools.size() == 1);
    CHECK(call.request.tools[0].parameters_json == conversation().request.tools[0].parameters_json);
  }

  SUBCASE("execute: the same, and the call is given back") {
    auto premium = std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Outcome>{ok_with(10, 5)});
    Rig rig(kPremium, "", {{"m-premium", premium}});
    StepCall call = conversation();
    auto decision = rig.engine->decide("w", call.step, {});
    REQUIRE(decision.ok());
    const StepResult r = rig.dispatcher->execute(*decision, std::move(call));
    REQUIRE_MESSAGE(r.status.ok(), r.status.to_string());
    REQUIRE(premium->requests().size() == 1);
    CHECK(texts(premium->requests()[0].messages) == sent);
    CHECK(texts(call.request.messages) == sent);  // NOLINT(bugprone-use-after-move): lent, documented
    CHECK(call.request.tools.size() == 1);
  }

  SUBCASE("refused by the budget: nothing is sent and the call is as it was") {
    auto premium = std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Outcome>{ok_with(10, 5)});
    Rig rig(kPremium, "budget_usd = 0.01\n", {{"m-premium", premium}});
    StepCall call = conversation();
    call.step.input_tokens = 1000;  // $0.015 of input alone on m-premium
    CHECK(rig.dispatcher->run("w", std::move(call)).status.code() == Status::Code::kOverBudget);
    CHECK(premium->requests().empty());
    CHECK(texts(call.request.messages) == sent);  // NOLINT(bugprone-use-after-move): lent, documented
    CHECK(call.request.tools.size() == 1);
  }

  SUBCASE("a call without messages: the model gets one made from the step, the call keeps none") {
    auto premium = std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Outcome>{ok_with(10, 5)});
    Rig rig(kPremium, "", {{"m-premium", premium}});
    StepCall call;
    call.step.role = "plan";
    call.step.input_tokens = 10;
    call.step.prompt = "plan the trip";
    REQUIRE(rig.dispatcher->run("w", std::move(call)).status.ok());
    REQUIRE(premium->requests().at(0).messages.size() == 1);
    CHECK(premium->requests()[0].messages[0].text() == "plan the trip");
    CHECK(call.request.messages.empty());  // NOLINT(bugprone-use-after-move): lent, documented
  }
}

}  // TEST_SUITE
