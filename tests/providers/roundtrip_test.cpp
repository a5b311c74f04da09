// End-to-end round trips of the canonical request (request.h) through the
// real Dispatcher, the native adapters, the libcurl transport and the
// FakeProvider, which rejects what the real APIs reject: thinking and tool
// loops whose signatures must come back verbatim, forced tool calls, strict
// JSON schema answers, images (and a model without vision skipped for them),
// a conversation that changes provider mid-loop, and every sampling field.
// Each case asserts on the answer and on the request the fake recorded.
#include <doctest/doctest.h>

#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>

#include "fake_provider.h"
#include "test_util.h"

using namespace switchboard;
using namespace switchboard::testing;
using nlohmann::json;

namespace {

constexpr const char* kKey = "sk-test-roundtrip-1234567890";
constexpr const char* kKeyEnv = "SWITCHBOARD_ROUNDTRIP_TEST_KEY";

// The rules: a step's role names its tier; "TIER/LEVEL" also sets the
// reasoning level.
const char* kRules = R"lua(function classify(step, ctx)
  local tier, level = string.match(step.role, "^([%w%-]+)/(%w+)$")
  if tier then return { tier = tier, reasoning = level } end
  return step.role
end)lua";

// One model per provider, and one without vision per provider; the Gemini
// ones are named gemini-3* so the fake demands thought signatures of them.
struct ProviderModels {
  const char* provider;  // the config's `provider` and the tier's name
  const char* path;      // endpoint = base_url() + path
  const char* model;     // answers
  const char* blind;     // capabilities.vision = false
};

const ProviderModels kProviders[] = {
    {"openai", "/v1", "gpt-rt", "gpt-rt-blind"},
    {"anthropic", "", "claude-rt", "claude-rt-blind"},
    {"gemini", "/v1beta", "gemini-3-rt", "gemini-3-rt-blind"},
};

void set_key_env() {
  const char* now = std::getenv(kKeyEnv);
  if (now == nullptr || std::string_view(now) != kKey) REQUIRE(setenv(kKeyEnv, kKey, 1) == 0);
}

// A FakeProvider and a dispatcher whose tiers are: "<provider>" = [its model],
// "blind-<provider>" = [its blind model, its model].
struct Rig {
  std::unique_ptr<FakeProvider> fake;
  TempDir dir;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<Dispatcher> dispatcher;

  Rig() {
    fake = FakeProvider::start();
    set_key_env();
    std::string prices = "version = \"rt-1\"\n";
    std::string config = R"toml(
[routing]
price_catalog = "prices.toml"
premium_tier = "openai"
default_fallback_tier = "openai"

[calls]
first_byte_timeout_ms = 2000
total_timeout_ms = 5000
stall_timeout_ms = 2000
max_response_bytes = 1048576
backoff_initial_ms = 1

)toml";
    auto model = [&](const ProviderModels& p, const std::string& name, bool vision) {
      prices += "[models." + name + "]\ninput = 1.0\noutput = 4.0\n\n";
      config += "[models." + name + "]\nprovider = \"" + p.provider + "\"\nendpoint = \"" + fake->base_url() + p.path +
                "\"\napi_key_env = \"" + kKeyEnv +
                "\"\ncontext_window = 100000\ndefault_output_tokens = 256\nmax_output_tokens = 32000\n"
                "capabilities = { thinking = true, tools = true, json_schema = true, vision = " +
                (vision ? "true" : "false") + " }\nthinking_budget = { low = 1024, medium = 2048, high = 4096 }\n\n";
    };
    for (const ProviderModels& p : kProviders) {
      model(p, p.model, true);
      model(p, p.blind, false);
    }
    for (const ProviderModels& p : kProviders) {
      config += std::string("[tiers.") + p.provider + "]\nmodels = [\"" + p.model + "\"]\n\n";
      config += std::string("[tiers.blind-") + p.provider + "]\nmodels = [\"" + p.blind + "\", \"" + p.model + "\"]\n\n";
    }
    config += "[workloads.w]\nrules = \"rules/w.lua\"\nfallback_tier = \"openai\"\n";
    dir.write("prices.toml", prices);
    dir.write("rules/w.lua", kRules);
    auto e = Engine::open_file(dir.write("switchboard.toml", config));
    REQUIRE_MESSAGE(e.ok(), e.status().to_string());
    engine = std::move(e).value();
    auto clients = ModelClients::from_config(engine->config());
    REQUIRE_MESSAGE(clients.ok(), clients.status().to_string());
    DispatcherOptions o;
    o.sleep = [](std::chrono::milliseconds) {};
    o.seed = 42;
    dispatcher = std::make_unique<Dispatcher>(*engine, std::move(clients).value(), std::move(o));
  }

  // Runs `request` with the step's role `role` (a tier, or "TIER/LEVEL").
  StepResult run(const std::string& role, ModelRequest request) {
    StepCall call;
    call.step.role = role;
    call.step.prompt = "round trip";
    call.request = std::move(request);
    return dispatcher->run("w", call);
  }

  // The body of the last request the fake received.
  json last_body() const {
    const std::vector<ReceivedRequest> got = fake->received();
    REQUIRE_FALSE(got.empty());
    return json::parse(got.back().body);
  }
};

ToolSpec search_tool() {
  return ToolSpec::of_function("search", "Searches the web",
                               R"({"type":"object","properties":{"query":{"type":"string"}},"required":["query"]})");
}

ToolSpec lookup_tool() {
  return ToolSpec::of_function("lookup", "Looks a record up by id",
                               R"({"type":"object","properties":{"id":{"type":"integer"}},"required":["id"]})");
}

const ContentBlock* find_block(const std::vector<ContentBlock>& blocks, ContentBlock::Type type) {
  for (const ContentBlock& b : blocks) {
    if (b.type == type) return &b;
  }
  return nullptr;
}

// The first part of a Gemini turn that holds a functionCall, or null.
const json* function_call_part(const json& content) {
  for (const json& part : content.at("parts")) {
    if (part.contains("functionCall")) return &part;
  }
  return nullptr;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }


// A 1x1 PNG.
constexpr const char* kPng =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

Message image_question() {
  ContentBlock image;
  image.type = ContentBlock::Type::kImage;
  image.source.kind = MediaSource::Kind::kBase64;
  image.source.media_type = "image/png";
  image.source.data = kPng;
  return Message::of("user", {ContentBlock::of_text("What is in this picture?"), image});
}

}  // namespace

TEST_SUITE("roundtrip") {

TEST_CASE("a Claude thinking and tool loop sends every thinking block back verbatim") {
  Rig rig;
  std::vector<Message> conversation = {Message::of_text("user", "Look switchboard up, then tell me about it.")};
  auto turn = [&] {
    ModelRequest req;
    req.messages = conversation;
    req.tools = {search_tool()};
    req.reasoning.effort = Effort::kHigh;
    return rig.run("anthropic", req);
  };

  // Turn 1: thinking (signed), then the tool call.
  StepResult r1 = turn();
  REQUIRE_MESSAGE(r1.status.ok(), r1.status.to_string());
  REQUIRE(r1.response.content.size() == 2);
  const ContentBlock thinking1 = r1.response.content[0];
  REQUIRE(thinking1.type == ContentBlock::Type::kThinking);
  CHECK_FALSE(thinking1.text.empty());
  CHECK_FALSE(thinking1.signature.empty());
  CHECK(thinking1.origin == "anthropic");
  REQUIRE(r1.response.content[1].type == ContentBlock::Type::kToolUse);
  CHECK(r1.response.stop_reason == StopReason::kToolUse);
  const ToolCall call1 = r1.response.content[1].tool_call;
  CHECK(call1.name == "search");
  json b1 = rig.last_body();
  CHECK(b1.at("thinking") == json{{"type", "enabled"}, {"budget_tokens", 4096}});
  CHECK(b1.at("max_tokens") == 32000);

  // Turn 2: the assistant message as returned, then the tool's result.
  conversation.push_back(Message::of("assistant", r1.response.content));
  conversation.push_back(Message::of("user", {ContentBlock::of_tool_result(call1.id, "search", "Switchboard routes model calls.")}));
  StepResult r2 = turn();
  REQUIRE_MESSAGE(r2.status.ok(), r2.status.to_string());
  const ContentBlock* thinking2 = find_block(r2.response.content, ContentBlock::Type::kThinking);
  REQUIRE(thinking2 != nullptr);
  CHECK_FALSE(r2.response.text().empty());
  json b2 = rig.last_body();
  const json expected1 = {{"type", "thinking"}, {"thinking", thinking1.text}, {"signature", thinking1.signature}};
  REQUIRE(b2.at("messages").size() == 3);
  CHECK(b2["messages"][1]["role"] == "assistant");
  CHECK(b2["messages"][1]["content"][0] == expected1);
  CHECK(b2["messages"][1]["content"][1]["type"] == "tool_use");
  CHECK(b2["messages"][1]["content"][1]["id"] == call1.id);
  CHECK(b2["messages"][2]["content"][0]["type"] == "tool_result");
  CHECK(b2["messages"][2]["content"][0]["tool_use_id"] == call1.id);

  // Turn 3: the answer as returned, a new question; both thinking blocks go back.
  const json expected2 = {{"type", "thinking"}, {"thinking", thinking2->text}, {"signature", thinking2->signature}};
  conversation.push_back(Message::of("assistant", r2.response.content));
  conversation.push_back(Message::of_text("user", "Search once more."));
  StepResult r3 = turn();
  REQUIRE_MESSAGE(r3.status.ok(), r3.status.to_string());
  CHECK(r3.response.tool_calls().size() == 1);
  json b3 = rig.last_body();
  REQUIRE(b3.at("messages").size() == 5);
  CHECK(b3["messages"][1]["content"][0] == expected1);
  CHECK(b3["messages"][3]["content"][0] == expected2);
}

TEST_CASE("a Gemini thinking and tool loop keeps the thoughtSignature on the functionCall part") {
  Rig rig;
  std::vector<Message> conversation = {Message::of_text("user", "Look switchboard up, then tell me about it.")};
  auto turn = [&] {
    ModelRequest req;
    req.messages = conversation;
    req.tools = {search_tool()};
    req.reasoning.effort = Effort::kHigh;
    return rig.run("gemini", req);
  };

  StepResult r1 = turn();
  REQUIRE_MESSAGE(r1.status.ok(), r1.status.to_string());
  const ContentBlock* use1 = find_block(r1.response.content, ContentBlock::Type::kToolUse);
  REQUIRE(use1 != nullptr);
  const std::string signature1 = use1->signature;
  CHECK_FALSE(signature1.empty());
  CHECK(use1->origin == "gemini");
  json b1 = rig.last_body();
  CHECK(b1.at("generationConfig").at("thinkingConfig").at("thinkingBudget") == 4096);

  conversation.push_back(Message::of("assistant", r1.response.content));
  conversation.push_back(
      Message::of("user", {ContentBlock::of_tool_result(use1->tool_call.id, "search", "Switchboard routes model calls.")}));
  StepResult r2 = turn();
  REQUIRE_MESSAGE(r2.status.ok(), r2.status.to_string());
  CHECK_FALSE(r2.response.text().empty());
  json b2 = rig.last_body();
  REQUIRE(b2.at("contents").size() == 3);
  CHECK(b2["contents"][1]["role"] == "model");
  const json* part2 = function_call_part(b2["contents"][1]);
  REQUIRE(part2 != nullptr);
  CHECK(part2->at("thoughtSignature") == signature1);
  CHECK(part2->at("functionCall").at("name") == "search");
  CHECK(b2["contents"][2]["parts"][0].contains("functionResponse"));

  conversation.push_back(Message::of("assistant", r2.response.content));
  conversation.push_back(Message::of_text("user", "Search once more."));
  StepResult r3 = turn();
  REQUIRE_MESSAGE(r3.status.ok(), r3.status.to_string());
  CHECK(r3.response.tool_calls().size() == 1);
  json b3 = rig.last_body();
  REQUIRE(b3.at("contents").size() == 5);
  const json* part3 = function_call_part(b3["contents"][1]);
  REQUIRE(part3 != nullptr);
  CHECK(part3->at("thoughtSignature") == signature1);
}

TEST_CASE("a named tool choice makes every provider call that tool") {
  for (const ProviderModels& p : kProviders) {
    CAPTURE(p.provider);
    Rig rig;
    ModelRequest req;
    req.messages = {Message::of_text("user", "Find record 7.")};
    req.tools = {search_tool(), lookup_tool()};
    req.tool_choice = ToolChoice{ToolChoice::Mode::kNamed, "lookup"};
    StepResult r = rig.run(p.provider, req);
    REQUIRE_MESSAGE(r.status.ok(), r.status.to_string());
    const std::vector<ToolCall> calls = r.response.tool_calls();
    REQUIRE(calls.size() == 1);
    CHECK(calls[0].name == "lookup");
    CHECK(json::parse(calls[0].arguments_json) == json{{"id", 0}});
    json b = rig.last_body();
    const std::string name = p.provider;
    if (name == "openai") {
      CHECK(b.at("tool_choice") == json{{"type", "function"}, {"function", {{"name", "lookup"}}}});
    } else if (name == "anthropic") {
      CHECK(b.at("tool_choice").at("type") == "tool");
      CHECK(b.at("tool_choice").at("name") == "lookup");
    } else {
      const json& config = b.at("toolConfig").at("functionCallingConfig");
      CHECK(config.at("mode") == "ANY");
      CHECK(config.at("allowedFunctionNames") == json::array({"lookup"}));
    }
  }
}

TEST_CASE("a strict JSON schema answer parses and has the schema's required properties") {
  const char* schema =
      R"({"type":"object","properties":{"city":{"type":"string"},"population":{"type":"integer"}},)"
      R"("required":["city","population"],"additionalProperties":false})";
  for (const ProviderModels& p : kProviders) {
    CAPTURE(p.provider);
    Rig rig;
    ModelRequest req;
    req.messages = {Message::of_text("user", "Name a city and its population.")};
    req.output_format.type = OutputFormat::Type::kJsonSchema;
    req.output_format.name = "city_info";
    req.output_format.schema_json = schema;
    req.output_format.strict = true;
    StepResult r = rig.run(p.provider, req);
    REQUIRE_MESSAGE(r.status.ok(), r.status.to_string());
    CHECK(r.response.tool_calls().empty());
    const json answer = json::parse(r.response.text(), nullptr, false);
    REQUIRE_MESSAGE(answer.is_object(), r.response.text());
    CHECK(answer.contains("city"));
    CHECK(answer.contains("population"));
    CHECK(answer.value("population", json()).is_number_integer());
    CHECK(r.response.stop_reason == StopReason::kEndTurn);
    json b = rig.last_body();
    const std::string name = p.provider;
    if (name == "openai") {
      const json& format = b.at("response_format");
      CHECK(format.at("type") == "json_schema");
      CHECK(format.at("json_schema").at("name") == "city_info");
      CHECK(format.at("json_schema").at("strict") == true);
      CHECK(format.at("json_schema").at("schema") == json::parse(schema));
    } else if (name == "anthropic") {
      REQUIRE(b.at("tools").size() == 1);
      const std::string tool = b["tools"][0].at("name").get<std::string>();
      CHECK(contains(tool, "city_info"));
      CHECK(b["tools"][0].at("input_schema").at("required") == json::array({"city", "population"}));
      CHECK(b.at("tool_choice").at("type") == "tool");
      CHECK(b.at("tool_choice").at("name") == tool);
    } else {
      const json& config = b.at("generationConfig");
      CHECK(config.at("responseMimeType") == "application/json");
      REQUIRE(config.contains("responseSchema"));
      CHECK(config.at("responseSchema").at("required") == json::array({"city", "population"}));
    }
  }
}

TEST_CASE("an image reaches every provider, and a model without vision is skipped for it") {
  for (const ProviderModels& p : kProviders) {
    CAPTURE(p.provider);
    Rig rig;
    ModelRequest req;
    req.messages = {image_question()};
    StepResult r = rig.run(p.provider, req);
    REQUIRE_MESSAGE(r.status.ok(), r.status.to_string());
    CHECK(contains(r.response.text(), "saw 1 image"));
    CHECK(rig.fake->request_count() == 1);

    StepResult blind = rig.run(std::string("blind-") + p.provider, req);
    REQUIRE_MESSAGE(blind.status.ok(), blind.status.to_string());
    CHECK(blind.model == p.model);
    CHECK(contains(blind.response.text(), "saw 1 image"));
    REQUIRE(blind.records.size() == 2);
    CHECK(blind.records[0].model == p.blind);
    CHECK_MESSAGE(blind.records[0].error.rfind("not called:", 0) == 0, blind.records[0].error);
    CHECK(blind.records[1].model == p.model);
    CHECK(blind.records[1].status == CallStatus::kOk);
    // The blind model was never called: one more request, the answer's.
    CHECK(rig.fake->request_count() == 2);
  }
}

TEST_CASE("a tool loop that changes provider every turn succeeds on each") {
  Rig rig;
  std::vector<Message> conversation = {Message::of_text("user", "Look switchboard up, then tell me about it.")};
  auto turn = [&](const std::string& role) {
    ModelRequest req;
    req.messages = conversation;
    req.tools = {search_tool()};
    return rig.run(role, req);
  };

  // Turn 1, Anthropic with thinking: thinking + tool call.
  StepResult r1 = turn("anthropic/high");
  REQUIRE_MESSAGE(r1.status.ok(), r1.status.to_string());
  REQUIRE(r1.response.content.size() == 2);
  const ContentBlock thinking1 = r1.response.content[0];
  REQUIRE(thinking1.type == ContentBlock::Type::kThinking);
  const ToolCall call1 = r1.response.tool_calls().at(0);
  conversation.push_back(Message::of("assistant", r1.response.content));
  conversation.push_back(Message::of("user", {ContentBlock::of_tool_result(call1.id, "search", "Switchboard routes model calls.")}));

  // Turn 2, OpenAI: Claude's thinking is not sent, the call and its result are.
  StepResult r2 = turn("openai/high");
  REQUIRE_MESSAGE(r2.status.ok(), r2.status.to_string());
  CHECK_FALSE(r2.response.text().empty());
  {
    const std::string raw = rig.fake->received().back().body;
    CHECK_FALSE(contains(raw, thinking1.signature));
    CHECK_FALSE(contains(raw, thinking1.text));
    json b = json::parse(raw);
    CHECK(b.at("reasoning_effort") == "high");
    REQUIRE(b.at("messages").size() == 3);
    CHECK(b["messages"][1].at("tool_calls")[0].at("id") == call1.id);
    CHECK(b["messages"][2].at("role") == "tool");
    CHECK(b["messages"][2].at("tool_call_id") == call1.id);
  }
  conversation.push_back(Message::of("assistant", r2.response.content));
  conversation.push_back(Message::of_text("user", "Search once more."));

  // Turn 3, Gemini: a new call.
  StepResult r3 = turn("gemini/high");
  REQUIRE_MESSAGE(r3.status.ok(), r3.status.to_string());
  REQUIRE(r3.response.tool_calls().size() == 1);
  {
    const std::string raw = rig.fake->received().back().body;
    CHECK_FALSE(contains(raw, thinking1.signature));
    json b = json::parse(raw);
    REQUIRE(b.at("contents").size() == 5);
    const json* part = function_call_part(b["contents"][1]);
    REQUIRE(part != nullptr);
    CHECK(part->at("functionCall").at("name") == "search");
  }
  const ContentBlock* use3 = find_block(r3.response.content, ContentBlock::Type::kToolUse);
  REQUIRE(use3 != nullptr);
  conversation.push_back(Message::of("assistant", r3.response.content));
  conversation.push_back(
      Message::of("user", {ContentBlock::of_tool_result(use3->tool_call.id, "search", "Still a model router.")}));

  // Turn 4, back to Anthropic: its own thinking block goes back verbatim;
  // the turn Gemini began has no thinking of Claude's, so the rules' level
  // yields and no thinking is asked for.
  StepResult r4 = turn("anthropic/high");
  REQUIRE_MESSAGE(r4.status.ok(), r4.status.to_string());
  CHECK_FALSE(r4.response.text().empty());
  {
    const std::string raw = rig.fake->received().back().body;
    json b = json::parse(raw);
    REQUIRE(b.at("messages").size() == 7);
    CHECK(b["messages"][1]["content"][0] ==
          json{{"type", "thinking"}, {"thinking", thinking1.text}, {"signature", thinking1.signature}});
    CHECK_FALSE(b.contains("thinking"));
    CHECK(b["messages"][5]["content"][0].at("type") == "tool_use");
    CHECK_FALSE(b["messages"][5]["content"][0].at("id").get<std::string>().empty());
    CHECK(b["messages"][6]["content"][0].at("type") == "tool_result");
    CHECK(b["messages"][6]["content"][0].at("tool_use_id") == b["messages"][5]["content"][0].at("id"));
  }
}

TEST_CASE("every sampling field reaches the providers that take it") {
  for (const ProviderModels& p : kProviders) {
    CAPTURE(p.provider);
    const std::string name = p.provider;
    Rig rig;
    ModelRequest req;
    req.messages = {Message::of_text("user", "Say hello.")};
    req.sampling.temperature = 0.5;
    req.sampling.top_p = 0.9;
    if (name != "openai") req.sampling.top_k = 40;
    req.sampling.stop = {"END"};
    if (name != "anthropic") req.sampling.seed = 7;
    req.sampling.user = "u-42";
    StepResult r = rig.run(p.provider, req);
    REQUIRE_MESSAGE(r.status.ok(), r.status.to_string());
    CHECK_FALSE(r.response.text().empty());
    json b = rig.last_body();
    if (name == "openai") {
      CHECK(b.at("temperature").get<double>() == doctest::Approx(0.5));
      CHECK(b.at("top_p").get<double>() == doctest::Approx(0.9));
      CHECK(b.at("stop") == json::array({"END"}));
      CHECK(b.at("seed") == 7);
      CHECK(b.at("user") == "u-42");
      CHECK_FALSE(b.contains("top_k"));
    } else if (name == "anthropic") {
      CHECK(b.at("temperature").get<double>() == doctest::Approx(0.5));
      CHECK(b.at("top_p").get<double>() == doctest::Approx(0.9));
      CHECK(b.at("top_k") == 40);
      CHECK(b.at("stop_sequences") == json::array({"END"}));
      CHECK(b.at("metadata").at("user_id") == "u-42");
    } else {
      const json& config = b.at("generationConfig");
      CHECK(config.at("temperature").get<double>() == doctest::Approx(0.5));
      CHECK(config.at("topP").get<double>() == doctest::Approx(0.9));
      CHECK(config.at("topK") == 40);
      CHECK(config.at("stopSequences") == json::array({"END"}));
      CHECK(config.at("seed") == 7);
    }
  }
}

TEST_CASE("a sampling field a provider cannot take refuses the model instead of being dropped") {
  struct Case {
    const char* provider;
    Sampling sampling;
  };
  Sampling top_k;
  top_k.top_k = 40;
  Sampling seed;
  seed.seed = 7;
  for (const Case& c : {Case{"openai", top_k}, Case{"anthropic", seed}}) {
    CAPTURE(c.provider);
    Rig rig;
    ModelRequest req;
    req.messages = {Message::of_text("user", "Say hello.")};
    req.sampling = c.sampling;
    StepResult r = rig.run(c.provider, req);
    CHECK_FALSE(r.status.ok());
    REQUIRE(r.records.size() == 1);
    CHECK_MESSAGE(contains(r.records[0].error, "cannot take"), r.records[0].error);
    CHECK(rig.fake->request_count() == 0);
  }
}

}  // TEST_SUITE
