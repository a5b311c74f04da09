// Every native adapter (openai, openai-compatible, anthropic, gemini) through
// the real Dispatcher, the libcurl transport and the FakeProvider: answers,
// streams, tool calls, reasoning controls, every injected fault, contemplating
// fan-out, and what the ledger holds afterwards. Each case runs the one table
// of providers.
#include <doctest/doctest.h>

#include <cstdlib>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>

#include "fake_provider.h"
#include "test_util.h"

using namespace switchboard;
using namespace switchboard::testing;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// Recognisable, so a leak anywhere is easy to find; kKeyMark is the part
// checked for, so a leaked fragment of the key is caught as well.
constexpr const char* kKey = "sk-test-SECRET-1234567890";
constexpr const char* kKeyMark = "SECRET";
constexpr const char* kKeyEnv = "SWITCHBOARD_PROVIDERS_TEST_KEY";

struct Provider {
  const char* name;        // the config's `provider`
  UsageFormat format;      // the fake's wire format for it
  const char* path;        // endpoint = base_url() + path
  const char* key_header;  // where the key travels
  const char* key_prefix;  // before the key in that header
  int overloaded_status;   // what Fault::kOverloaded answers
};

const Provider kProviders[] = {
    {"openai", UsageFormat::kOpenAI, "/v1", "Authorization", "Bearer ", 503},
    {"openai-compatible", UsageFormat::kOpenAI, "/v1", "Authorization", "Bearer ", 503},
    {"anthropic", UsageFormat::kAnthropic, "", "x-api-key", "", 529},
    {"gemini", UsageFormat::kGemini, "/v1beta", "x-goog-api-key", "", 503},
};

const char* kTierRules = R"lua(function classify(step, ctx) return "t" end)lua";

// p-first and p-second price differently, reasoning above output, so a cost
// taken from the wrong model or bucket shows.
const char* kPrices = R"toml(version = "prov-1"
[models.p-first]
input = 2.0
cached_input = 0.5
cache_write_5m = 2.5
output = 8.0
reasoning = 12.0

[models.p-second]
input = 1.0
cached_input = 0.25
cache_write_5m = 1.25
output = 4.0
)toml";

constexpr std::int64_t kHighThinkingBudget = 3072;

// Puts the key where both models' api_key_env look. Writes the environment
// only when it differs, so rigs on several threads (once it is set) only read it.
void set_key_env() {
  const char* now = std::getenv(kKeyEnv);
  if (now == nullptr || std::string_view(now) != kKey) REQUIRE(setenv(kKeyEnv, kKey, 1) == 0);
}

struct RigOptions {
  std::string rules = kTierRules;
  FakeProviderOptions fake;
  std::string first_path_suffix;  // appended to p-first's endpoint (a wrong route)
};

// A FakeProvider, an engine whose tier "t" is [p-first, p-second] of one
// provider, both pointing at the fake with a real key, and a dispatcher with
// its ledger records collected and its waits recorded instead of slept.
struct Rig {
  const Provider& provider;
  std::unique_ptr<FakeProvider> fake;
  TempDir dir;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<Dispatcher> dispatcher;
  std::mutex mu;
  std::vector<CostRecord> ledger;
  std::vector<std::chrono::milliseconds> waits;

  explicit Rig(const Provider& p, RigOptions options = {}) : provider(p) {
    fake = FakeProvider::start(options.fake);
    set_key_env();
    const std::string endpoint = fake->base_url() + p.path;
    auto model = [&](const std::string& name, const std::string& suffix) {
      return "[models." + name + "]\nprovider = \"" + p.name + "\"\nendpoint = \"" + endpoint + suffix +
             "\"\napi_key_env = \"" + kKeyEnv +
             "\"\ncontext_window = 100000\ndefault_output_tokens = 256\nmax_output_tokens = 32000\n"
             "capabilities = { thinking = true }\n"
             "thinking_budget = { low = 1024, medium = 2048, high = " +
             std::to_string(kHighThinkingBudget) + " }\n\n";
    };
    const std::string config = R"toml(
[routing]
price_catalog = "prices.toml"
premium_tier = "t"
default_fallback_tier = "t"

[calls]
first_byte_timeout_ms = 500
total_timeout_ms = 2000
stall_timeout_ms = 1000
max_response_bytes = 1048576
backoff_initial_ms = 1

)toml" + model("p-first", options.first_path_suffix) +
                               model("p-second", "") + R"toml(
[tiers.t]
models = ["p-first", "p-second"]

[workloads.w]
rules = "rules/w.lua"
fallback_tier = "t"
)toml";
    dir.write("prices.toml", kPrices);
    dir.write("rules/w.lua", options.rules);
    auto e = Engine::open_file(dir.write("switchboard.toml", config));
    REQUIRE_MESSAGE(e.ok(), e.status().to_string());
    engine = std::move(e).value();
    for (const auto& [name, spec] : engine->config().models) {
      REQUIRE(engine->config().effective_provider(spec) == p.name);
    }
    auto clients = ModelClients::from_config(engine->config());
    REQUIRE_MESSAGE(clients.ok(), clients.status().to_string());
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

  // "openai p-first: ": how every failure of that model starts.
  std::string prefix(const std::string& model = "p-first") const { return std::string(provider.name) + " " + model + ": "; }

  StepResult run(StepCall call) { return dispatcher->run("w", call); }

  // The fake's answer to the request it received last.
  FakeAnswer expected_for_last(const std::string& model) const {
    const std::vector<ReceivedRequest> got = fake->received();
    REQUIRE_FALSE(got.empty());
    std::optional<FakeAnswer> a = expected_answer(provider.format, model, got.back().body);
    REQUIRE(a.has_value());
    return *a;
  }

  MicroUsd catalog_cost(const std::string& model, const Usage& usage) const {
    auto cost = engine->config().prices->cost(model, usage);
    REQUIRE_MESSAGE(cost.ok(), cost.status().to_string());
    return *cost;
  }
};

StepCall chat_call() {
  StepCall call;
  call.step.role = "chat";
  call.step.prompt = "Say hello to the switchboard.";
  return call;
}

StepCall tool_call_step() {
  StepCall call = chat_call();
  call.request.tools = {ToolSpec::of_function("search", "Searches the web",
                         R"({"type":"object","properties":{"query":{"type":"string"}},"required":["query"]})")};
  return call;
}

std::vector<CallStatus> statuses(const std::vector<CostRecord>& records) {
  std::vector<CallStatus> out;
  for (const CostRecord& r : records) out.push_back(r.status);
  return out;
}

std::vector<std::string> models_of(const std::vector<CostRecord>& records) {
  std::vector<std::string> out;
  for (const CostRecord& r : records) out.push_back(r.model);
  return out;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The key reached the fake on every request, and nothing the dispatcher
// returned or recorded holds it (or any piece of it).
void check_key_sent_and_never_returned(Rig& rig, const StepResult& r) {
  for (const ReceivedRequest& req : rig.fake->received()) {
    CHECK(req.header(rig.provider.key_header) == std::string(rig.provider.key_prefix) + kKey);
  }
  auto clean = [](const std::string& s) { return !contains(s, kKeyMark); };
  CHECK(clean(r.status.message()));
  CHECK(clean(r.response.text()));
  CHECK(clean(r.response.model));
  for (const ToolCall& t : r.response.tool_calls()) CHECK(clean(t.name + t.arguments_json));
  CHECK(clean(r.model));
  CHECK(clean(r.decision.reason));
  std::vector<CostRecord> all = r.records;
  {
    std::lock_guard<std::mutex> lock(rig.mu);
    all.insert(all.end(), rig.ledger.begin(), rig.ledger.end());
  }
  for (const CostRecord& rec : all) {
    CHECK(clean(rec.error));
    CHECK(clean(rec.provider + rec.model + rec.tier + rec.workload + rec.role));
  }
}

// The ledger holds what the step returned, in the same order.
void check_ledger_matches(Rig& rig, const StepResult& r) {
  std::lock_guard<std::mutex> lock(rig.mu);
  REQUIRE(rig.ledger.size() == r.records.size());
  for (size_t i = 0; i < r.records.size(); ++i) CHECK(rig.ledger[i].call_id == r.records[i].call_id);
}

// The final `ok` record of a step that answered from `model`: exact usage,
// catalog cost, provider and versions.
void check_ok_record(Rig& rig, const CostRecord& rec, const std::string& model, const Usage& usage,
                     const StepResult& r) {
  CHECK(rec.status == CallStatus::kOk);
  CHECK(rec.error.empty());
  CHECK(rec.model == model);
  CHECK(rec.provider == rig.provider.name);
  CHECK(rec.tier == "t");
  CHECK(rec.workload == "w");
  CHECK(rec.trace_id == r.trace_id);
  CHECK(rec.usage == usage);
  CHECK(rec.cost == rig.catalog_cost(model, usage));
  CHECK(rec.cost > 0);
  CHECK_FALSE(rec.rules_version.empty());
  CHECK(rec.rules_version == rig.engine->rules_version("w"));
  CHECK(rec.catalog_version == "prov-1");
}

// A failed attempt: recorded under the real provider, billed nothing.
void check_unbilled(const Rig& rig, const CostRecord& rec) {
  CHECK(rec.provider == rig.provider.name);
  CHECK(rec.cost == 0);
  CHECK(rec.usage == Usage{});
  CHECK_FALSE(rec.error.empty());
}

// Text chunks as delivered, with their restart flags.
struct Chunks {
  std::vector<std::pair<std::string, bool>> seen;
  ChunkHandler handler() {
    return [this](const StreamChunk& c) {
      if (c.kind == StreamChunk::Kind::kText) seen.emplace_back(std::string(c.text), c.restart);
    };
  }
  std::string text() const {
    std::string out;
    for (const auto& [t, restart] : seen) out += t;
    return out;
  }
};

json body_json(const ReceivedRequest& req) {
  json j = json::parse(req.body, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

}  // namespace

TEST_SUITE("providers") {

TEST_CASE("a plain call answers the fake's text and bills its exact usage") {
  for (const Provider& p : kProviders) {
    INFO("provider ", std::string(p.name));
    Rig rig(p);
    StepResult r = rig.run(chat_call());
    REQUIRE_MESSAGE(r.status.ok(), r.status.to_string());
    REQUIRE(rig.fake->request_count() == 1);
    const FakeAnswer want = rig.expected_for_last("p-first");
    CHECK(r.model == "p-first");
    CHECK(r.response.text() == want.text);
    CHECK_FALSE(r.response.text().empty());
    CHECK(r.response.stop_reason == StopReason::kEndTurn);
    CHECK(r.response.usage == want.usage);
    CHECK(r.response.http_status == 200);
    CHECK(r.attempts == 1);
    CHECK(r.fallbacks == 0);
    REQUIRE(r.records.size() == 1);
    check_ok_record(rig, r.records[0], "p-first", want.usage, r);
    CHECK(r.cost == r.records[0].cost);
    CHECK(rig.waits.empty());
    check_ledger_matches(rig, r);
    check_key_sent_and_never_returned(rig, r);
  }
}

TEST_CASE("a streamed call delivers chunks that make the text and bills exact usage") {
  for (const Provider& p : kProviders) {
    INFO("provider ", std::string(p.name));
    Rig rig(p);
    Chunks chunks;
    StepCall call = chat_call();
    call.on_chunk = chunks.handler();
    StepResult r = rig.run(call);
    REQUIRE_MESSAGE(r.status.ok(), r.status.to_string());
    const FakeAnswer want = rig.expected_for_last("p-first");
    CHECK(r.response.text() == want.text);
    CHECK(chunks.text() == want.text);
    CHECK(chunks.seen.size() >= 2);  // really streamed, not one whole body
    for (const auto& [text, restart] : chunks.seen) CHECK_FALSE(restart);
    CHECK(r.response.stop_reason == StopReason::kEndTurn);
    REQUIRE(r.records.size() == 1);
    check_ok_record(rig, r.records[0], "p-first", want.usage, r);
    check_ledger_matches(rig, r);
    check_key_sent_and_never_returned(rig, r);
  }
}

TEST_CASE("an offered tool comes back as a tool call whether streamed or not") {
  for (const Provider& p : kProviders) {
    for (const bool streamed : {false, true}) {
      INFO("provider ", std::string(p.name), std::string(streamed ? " streamed" : " whole"));
      Rig rig(p);
      StepCall call = tool_call_step();
      Chunks chunks;
      if (streamed) call.on_chunk = chunks.handler();
      StepResult r = rig.run(call);
      REQUIRE_MESSAGE(r.status.ok(), r.status.to_string());
      const FakeAnswer want = rig.expected_for_last("p-first");
      REQUIRE_FALSE(want.tool_name.empty());
      CHECK(r.response.stop_reason == StopReason::kToolUse);
      CHECK(r.response.text().empty());
      REQUIRE(r.response.tool_calls().size() == 1);
      const ToolCall t = r.response.tool_calls()[0];
      CHECK(t.name == "search");
      CHECK(t.name == want.tool_name);
      CHECK(json::parse(t.arguments_json, nullptr, false) == json::parse(want.arguments_json));
      CHECK(json::parse(t.arguments_json, nullptr, false) == json{{"query", "switchboard"}});
      REQUIRE(r.records.size() == 1);
      check_ok_record(rig, r.records[0], "p-first", want.usage, r);
      check_key_sent_and_never_returned(rig, r);
    }
  }
}

TEST_CASE("a high reasoning decision sends the provider's control and bills the reasoning") {
  RigOptions o;
  o.rules = R"lua(function classify(step, ctx) return { tier = "t", reasoning = "high" } end)lua";
  for (const Provider& p : kProviders) {
    INFO("provider ", std::string(p.name));
    Rig rig(p, o);
    StepResult r = rig.run(chat_call());
    REQUIRE_MESSAGE(r.status.ok(), r.status.to_string());
    CHECK(r.decision.reasoning == Reasoning::kHigh);
    const json body = body_json(rig.fake->received().at(0));
    const FakeAnswer want = rig.expected_for_last("p-first");
    switch (p.format) {
      case UsageFormat::kOpenAI:
        CHECK(body.at("reasoning_effort") == "high");
        CHECK(want.usage.reasoning_tokens == 64);
        break;
      case UsageFormat::kAnthropic:
        CHECK(body.at("thinking").at("type") == "enabled");
        CHECK(body.at("thinking").at("budget_tokens") == kHighThinkingBudget);
        // No cap was asked for: the model's maximum, the thinking budget inside it.
        CHECK(body.at("max_tokens") == 32000);
        // The API reports thinking inside output_tokens, not apart: the
        // reasoning is billed, at the output rate.
        CHECK_FALSE(want.thinking.empty());
        CHECK(want.usage.reasoning_tokens == 0);
        CHECK(want.usage.output_tokens == (static_cast<std::int64_t>(want.text.size()) + 3) / 4 + 64);
        CHECK_FALSE(contains(r.response.text(), want.thinking));
        break;
      case UsageFormat::kGemini:
        CHECK(body.at("generationConfig").at("thinkingConfig").at("thinkingBudget") == kHighThinkingBudget);
        CHECK(want.usage.reasoning_tokens == 64);
        break;
    }
    CHECK(r.response.text() == want.text);
    REQUIRE(r.records.size() == 1);
    check_ok_record(rig, r.records[0], "p-first", want.usage, r);
    check_key_sent_and_never_returned(rig, r);
  }
}

TEST_CASE("a 429 is retried on the same model after exactly its Retry-After") {
  for (const Provider& p : kProviders) {
    INFO("provider ", std::string(p.name));
    Rig rig(p);
    FaultSpec fault;
    fault.kind = Fault::kRateLimited;
    fault.model = "p-first";
    fault.retry_after_s = 1;
    rig.fake->inject(fault);
    StepResult r = rig.run(chat_call());
    REQUIRE_MESSAGE(r.status.ok(), r.status.to_string());
    CHECK(statuses(r.records) == std::vector<CallStatus>{CallStatus::kError, CallStatus::kOk});
    CHECK(models_of(r.records) == std::vector<std::string>{"p-first", "p-first"});
    CHECK(starts_with(r.records[0].error, rig.prefix() + "HTTP 429: "));
    check_unbilled(rig, r.records[0]);
    REQUIRE(rig.waits.size() == 1);
    CHECK(rig.waits[0] == 1000ms);
    check_ok_record(rig, r.records[1], "p-first", rig.expected_for_last("p-first").usage, r);
    CHECK(r.cost == r.records[1].cost);
    check_ledger_matches(rig, r);
    check_key_sent_and_never_returned(rig, r);
  }
}

TEST_CASE("a server error or an overload is retried on the same model") {
  for (const Provider& p : kProviders) {
    for (const Fault kind : {Fault::kServerError, Fault::kOverloaded}) {
      const int status = kind == Fault::kServerError ? 500 : p.overloaded_status;
      INFO("provider ", std::string(p.name), " HTTP ", status);
      Rig rig(p);
      rig.fake->inject(kind, 1, "p-first");
      StepResult r = rig.run(chat_call());
      REQUIRE_MESSAGE(r.status.ok(), r.status.to_string());
      CHECK(statuses(r.records) == std::vector<CallStatus>{CallStatus::kError, CallStatus::kOk});
      CHECK(models_of(r.records) == std::vector<std::string>{"p-first", "p-first"});
      CHECK(starts_with(r.records[0].error, rig.prefix() + "HTTP " + std::to_string(status) + ": "));
      check_unbilled(rig, r.records[0]);
      REQUIRE(rig.waits.size() == 1);
      CHECK(rig.waits[0] <= 1ms);  // full jitter under backoff_initial_ms = 1
      check_ok_record(rig, r.records[1], "p-first", rig.expected_for_last("p-first").usage, r);
      check_ledger_matches(rig, r);
      check_key_sent_and_never_returned(rig, r);
    }
  }
}

TEST_CASE("a slow first byte or a hung server hits the first-byte limit and is retried") {
  // Each case waits out the limit, which is checked from curl's progress
  // callback about once a second: the providers run side by side.
  set_key_env();
  std::vector<std::future<void>> runs;
  for (const Provider& p : kProviders) {
    runs.push_back(std::async(std::launch::async, [&p] {
      for (const Fault kind : {Fault::kSlowFirstByte, Fault::kHang}) {
        INFO("provider ", std::string(p.name), std::string(kind == Fault::kHang ? " hang" : " slow first byte"));
        Rig rig(p);
        FaultSpec fault;
        fault.kind = kind;
        fault.model = "p-first";
        fault.delay = 3000ms;  // past the 500 ms limit even when it is checked a second late
        rig.fake->inject(fault);
        StepResult r = rig.run(chat_call());
        REQUIRE_MESSAGE(r.status.ok(), r.status.to_string());
        CHECK(statuses(r.records) == std::vector<CallStatus>{CallStatus::kError, CallStatus::kOk});
        CHECK(models_of(r.records) == std::vector<std::string>{"p-first", "p-first"});
        CHECK(r.records[0].error == rig.prefix() + "no first byte within 500 ms (first_byte_timeout_ms)");
        CHECK(r.records[0].latency_ms >= 500);
        CHECK(r.records[0].latency_ms < 2000);  // the first-byte limit, not the total one
        check_unbilled(rig, r.records[0]);
        check_ok_record(rig, r.records[1], "p-first", rig.expected_for_last("p-first").usage, r);
        check_key_sent_and_never_returned(rig, r);
      }
    }));
  }
  for (std::future<void>& run : runs) run.get();  // rethrows a REQUIRE that failed in a run
}

TEST_CASE("a stream cut after its first chunks ends the step without a retry the caller would not see") {
  for (const Provider& p : kProviders) {
    INFO("provider ", std::string(p.name));
    Rig rig(p);
    rig.fake->inject(Fault::kCutStream, 1, "p-first");
    Chunks chunks;
    StepCall call = chat_call();
    call.on_chunk = chunks.handler();
    StepResult r = rig.run(call);
    CHECK(r.status.code() == Status::Code::kUnavailable);
    CHECK(r.attempts == 1);
    CHECK(statuses(r.records) == std::vector<CallStatus>{CallStatus::kError});
    REQUIRE(r.records.size() == 1);
    CHECK(r.records[0].error.find("stream broke after its first chunks reached the caller") != std::string::npos);
    CHECK(r.records[0].error.find("stream ended before its final event") != std::string::npos);
    REQUIRE_FALSE(chunks.seen.empty());
    for (const auto& [text, restart] : chunks.seen) CHECK_FALSE(restart);
  }
}

TEST_CASE("with restart_streams a stream cut before its final event is retried and the new chunks restart") {
  for (const Provider& p : kProviders) {
    INFO("provider ", std::string(p.name));
    Rig rig(p);
    rig.fake->inject(Fault::kCutStream, 1, "p-first");
    Chunks chunks;
    StepCall call = chat_call();
    call.on_chunk = chunks.handler();
    call.restart_streams = true;
    StepResult r = rig.run(call);
    REQUIRE_MESSAGE(r.status.ok(), r.status.to_string());
    CHECK(statuses(r.records) == std::vector<CallStatus>{CallStatus::kError, CallStatus::kOk});
    CHECK(models_of(r.records) == std::vector<std::string>{"p-first", "p-first"});
    CHECK(starts_with(r.records[0].error, rig.prefix() + "stream ended before its final event"));
    check_unbilled(rig, r.records[0]);
    const FakeAnswer want = rig.expected_for_last("p-first");
    check_ok_record(rig, r.records[1], "p-first", want.usage, r);
    CHECK(r.response.text() == want.text);
    // The cut attempt delivered some text; the retry's first chunk says restart.
    size_t restarts = 0, first_restart = 0;
    for (size_t i = 0; i < chunks.seen.size(); ++i) {
      if (chunks.seen[i].second && restarts++ == 0) first_restart = i;
    }
    CHECK(restarts == 1);
    CHECK(first_restart > 0);
    std::string after;
    for (size_t i = first_restart; i < chunks.seen.size(); ++i) after += chunks.seen[i].first;
    CHECK(after == want.text);
    check_key_sent_and_never_returned(rig, r);
  }
}

TEST_CASE("an unusable 200 falls back to the next model without a retry") {
  struct Case {
    Fault kind;
    const char* what;
    const char* error;  // after "<provider> p-first: "
  };
  const Case cases[] = {
      {Fault::kMalformedJson, "malformed JSON", "HTTP 200: body is not valid JSON; body starts \"{"},
      {Fault::kOversizedBody, "oversized body", "response body over 1048576 bytes (max_response_bytes)"},
      {Fault::kWrongContentType, "wrong content type", "HTTP 200: Content-Type 'text/html' where JSON was expected; "},
  };
  for (const Provider& p : kProviders) {
    for (const Case& c : cases) {
      INFO("provider ", std::string(p.name), " ", std::string(c.what));
      Rig rig(p);
      FaultSpec fault;
      fault.kind = c.kind;
      fault.model = "p-first";
      fault.bytes = 2u << 20;  // over the 1 MiB cap, quick to send
      rig.fake->inject(fault);
      StepResult r = rig.run(chat_call());
      REQUIRE_MESSAGE(r.status.ok(), r.status.to_string());
      CHECK(statuses(r.records) == std::vector<CallStatus>{CallStatus::kFallback, CallStatus::kOk});
      CHECK(models_of(r.records) == std::vector<std::string>{"p-first", "p-second"});
      CHECK(starts_with(r.records[0].error, rig.prefix() + c.error));
      check_unbilled(rig, r.records[0]);
      CHECK(r.model == "p-second");
      CHECK(r.fallbacks == 1);
      CHECK(rig.waits.empty());
      CHECK(rig.fake->request_count() == 2);
      const FakeAnswer want = rig.expected_for_last("p-second");
      CHECK(r.response.text() == want.text);
      check_ok_record(rig, r.records[1], "p-second", want.usage, r);
      check_ledger_matches(rig, r);
      check_key_sent_and_never_returned(rig, r);
    }
  }
}

TEST_CASE("a 4xx refusal falls back to the next model without a retry") {
  // The fake cannot refuse a keyed request with 401 (it only checks that
  // Anthropic's x-api-key is present), so the refusal is a 404 from a wrong
  // endpoint: the same path through the client (upstream, not retried).
  RigOptions o;
  o.first_path_suffix = "/gone";
  for (const Provider& p : kProviders) {
    INFO("provider ", std::string(p.name));
    Rig rig(p, o);
    StepResult r = rig.run(chat_call());
    REQUIRE_MESSAGE(r.status.ok(), r.status.to_string());
    CHECK(statuses(r.records) == std::vector<CallStatus>{CallStatus::kFallback, CallStatus::kOk});
    CHECK(models_of(r.records) == std::vector<std::string>{"p-first", "p-second"});
    CHECK(starts_with(r.records[0].error, rig.prefix() + "HTTP 404: Invalid URL (POST "));
    check_unbilled(rig, r.records[0]);
    CHECK(rig.waits.empty());
    check_ok_record(rig, r.records[1], "p-second", rig.expected_for_last("p-second").usage, r);
    check_key_sent_and_never_returned(rig, r);
  }
}

TEST_CASE("when both models are down the step fails unbilled with every attempt recorded") {
  for (const Provider& p : kProviders) {
    INFO("provider ", std::string(p.name));
    Rig rig(p);
    rig.fake->inject(Fault::kServerError, 10, "p-first");
    rig.fake->inject(Fault::kServerError, 10, "p-second");
    StepResult r = rig.run(chat_call());
    CHECK(r.status.code() == Status::Code::kUnavailable);
    CHECK(starts_with(r.status.message(), rig.prefix("p-second") + "HTTP 500: "));
    // max_attempts = 3 on each model; the first model's last failure falls back.
    CHECK(statuses(r.records) == std::vector<CallStatus>{CallStatus::kError, CallStatus::kError, CallStatus::kFallback,
                                                         CallStatus::kError, CallStatus::kError, CallStatus::kError});
    CHECK(models_of(r.records) ==
          std::vector<std::string>{"p-first", "p-first", "p-first", "p-second", "p-second", "p-second"});
    for (const CostRecord& rec : r.records) {
      CHECK(starts_with(rec.error, rig.prefix(rec.model) + "HTTP 500: "));
      check_unbilled(rig, rec);
    }
    CHECK(r.attempts == 6);
    CHECK(r.fallbacks == 1);
    CHECK(r.cost == 0);
    CHECK(rig.fake->request_count() == 6);
    CHECK(rig.waits.size() == 4);  // between the attempts on one model, none before the fallback
    check_ledger_matches(rig, r);
    check_key_sent_and_never_returned(rig, r);
  }
}

TEST_CASE("contemplating mode calls the branches in parallel then aggregates") {
  RigOptions o;
  o.rules = R"lua(function classify(step, ctx) return { tier = "t", fanout = 3, aggregate = "t" } end)lua";
  o.fake.latency = 300ms;
  for (const Provider& p : kProviders) {
    INFO("provider ", std::string(p.name));
    Rig rig(p, o);
    StepResult r = rig.run(chat_call());
    REQUIRE_MESSAGE(r.status.ok(), r.status.to_string());
    // The slowest branch plus the aggregator (about 600 ms), not the sum
    // (1,200 ms): the bound is the sum, so a loaded machine does not fail it.
    CHECK(r.latency >= 600ms);
    CHECK(r.latency < 1200ms);
    CHECK(r.attempts == 4);
    REQUIRE(r.records.size() == 4);
    CHECK(rig.fake->request_count() == 4);
    const CostRecord& agg = r.records.back();
    CHECK(agg.parent_id.empty());
    MicroUsd sum = 0;
    for (const CostRecord& rec : r.records) {
      CHECK(rec.status == CallStatus::kOk);
      CHECK(rec.provider == p.name);
      CHECK(rec.trace_id == r.trace_id);
      if (&rec != &agg) CHECK(rec.parent_id == agg.call_id);
      CHECK(rec.cost == rig.catalog_cost(rec.model, rec.usage));
      sum += rec.cost;
    }
    CHECK(r.cost == sum);
    // The aggregator's request is the one that carries the branches' answers.
    const std::vector<ReceivedRequest> got = rig.fake->received();
    size_t aggregations = 0;
    for (const ReceivedRequest& req : got) {
      if (!contains(req.body, "### Answer 3")) continue;
      ++aggregations;
      std::optional<FakeAnswer> want = expected_answer(p.format, agg.model, req.body);
      REQUIRE(want.has_value());
      CHECK(agg.usage == want->usage);
      CHECK(r.response.text() == want->text);
    }
    CHECK(aggregations == 1);
    check_ledger_matches(rig, r);
    check_key_sent_and_never_returned(rig, r);
  }
}

}  // TEST_SUITE
