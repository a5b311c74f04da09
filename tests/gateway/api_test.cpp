// The gateway's API shapes (hosts/gateway/api/api.h): OpenAI Chat Completions and
// Anthropic Messages requests as the official SDKs send them, every error a
// malformed one gets, whole answers and streamed SSE read back the way the
// SDKs read them (the engine's own SSE parser).
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/api.h"
#include "providers/sse.h"

using namespace switchboard;
using namespace switchboard::gateway;
using nlohmann::json;

namespace {

const Headers kNoHeaders;

ParsedRequest parse_ok(ApiShape shape, std::string_view body, const Headers& headers = kNoHeaders) {
  ApiResult<ParsedRequest> r =
      shape == ApiShape::kOpenAI ? parse_openai_chat(body, headers) : parse_anthropic_messages(body, headers);
  REQUIRE_MESSAGE(r.ok(), r.error.message);
  return *r.value;
}

std::map<std::string, MetaValue> meta_of(const ParsedRequest& r) {
  return {r.call.step.meta.begin(), r.call.step.meta.end()};
}

StepResult answer(std::string text, std::vector<ToolCall> calls = {}, std::string finish = "stop") {
  StepResult result;
  result.model = "m-cheap";
  result.response.model = "m-cheap-2026-01-01";
  result.response.text = std::move(text);
  result.response.tool_calls = std::move(calls);
  result.response.finish_reason = std::move(finish);
  result.response.usage.input_tokens = 100;
  result.response.usage.cached_input_tokens = 40;
  result.response.usage.cache_write_5m_tokens = 7;
  result.response.usage.cache_write_1h_tokens = 3;
  result.response.usage.output_tokens = 20;
  result.response.usage.reasoning_tokens = 5;
  return result;
}

std::vector<SseEvent> read_sse(const std::string& bytes) {
  std::vector<SseEvent> events;
  SseParser parser;
  parser.feed(bytes, [&](const SseEvent& e) {
    events.push_back(e);
    return true;
  });
  return events;
}

const char* kOpenAIChat = R"json({
  "model": "auto",
  "messages": [
    {"role": "system", "content": "You are terse."},
    {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
    {"role": "user", "content": [{"type": "text", "text": "Weather in"}, {"type": "text", "text": "Paris?"}], "name": "ann"},
    {"role": "assistant", "content": null, "tool_calls": [
      {"id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
    {"role": "tool", "tool_call_id": "call_abc", "content": "18C, sunny"},
    {"role": "assistant", "content": "It is 18C."},
    {"role": "user", "content": "And tomorrow?"}
  ],
  "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
             "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
             "strict": true}}],
  "tool_choice": "auto", "parallel_tool_calls": false, "temperature": 0.2, "top_p": 1, "n": 1, "seed": 7,
  "stop": ["\n\n"], "user": "u-1", "store": false, "logprobs": false, "some_future_field": {"x": 1},
  "stream": true, "stream_options": {"include_usage": true},
  "max_completion_tokens": 512, "max_tokens": 99,
  "reasoning_effort": "high",
  "response_format": {"type": "json_object"},
  "metadata": {"role": "plan", "task": "t-7"}
})json";

const char* kAnthropicMessages = R"json({
  "model": "claude-sonnet-4-5",
  "max_tokens": 1024,
  "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
  "messages": [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": [
      {"type": "thinking", "thinking": "I should call the tool.", "signature": "sig"},
      {"type": "text", "text": "Checking."},
      {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}]},
    {"role": "user", "content": [
      {"type": "tool_result", "tool_use_id": "toolu_01", "content": [{"type": "text", "text": "18C, sunny"}]},
      {"type": "text", "text": "And tomorrow?"}]}
  ],
  "tools": [{"name": "get_weather", "description": "Current weather",
             "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
  "tool_choice": {"type": "auto"}, "temperature": 0.5, "top_k": 5, "stop_sequences": ["END"],
  "stream": true,
  "thinking": {"type": "enabled", "budget_tokens": 8000},
  "metadata": {"user_id": "u-1"}
})json";

}  // namespace

TEST_SUITE("gateway_api") {

TEST_CASE("an OpenAI SDK request parses into messages tools and the step") {
  const ParsedRequest r = parse_ok(ApiShape::kOpenAI, kOpenAIChat);
  CHECK(r.shape == ApiShape::kOpenAI);
  CHECK(r.model == "auto");
  CHECK(r.stream);
  CHECK(r.include_usage);
  CHECK(r.max_output_tokens == std::optional<std::int64_t>(512));  // max_completion_tokens wins
  CHECK(r.reasoning == std::optional<Reasoning>(Reasoning::kHigh));

  const auto& m = r.call.messages;
  REQUIRE(m.size() == 7);
  CHECK(m[0].role == "system");
  CHECK(m[0].content == "You are terse.");
  CHECK(m[1].role == "system");  // developer
  CHECK(m[1].content == "Use tools.");
  CHECK(m[2].role == "user");
  CHECK(m[2].content == "Weather in\nParis?");
  CHECK(m[3].role == "assistant");
  CHECK(m[3].content.empty());
  REQUIRE(m[3].tool_calls.size() == 1);
  CHECK(m[3].tool_calls[0].id == "call_abc");
  CHECK(m[3].tool_calls[0].name == "get_weather");
  CHECK(m[3].tool_calls[0].arguments_json == R"({"city":"Paris"})");
  CHECK(m[4].role == "tool");
  CHECK(m[4].tool_call_id == "call_abc");
  CHECK(m[4].tool_name == "get_weather");  // from the call it answers
  CHECK(m[4].content == "18C, sunny");
  CHECK(m[5].content == "It is 18C.");
  CHECK(m[6].content == "And tomorrow?");

  REQUIRE(r.call.tools.size() == 1);
  CHECK(r.call.tools[0].name == "get_weather");
  CHECK(r.call.tools[0].description == "Current weather");
  CHECK(json::parse(r.call.tools[0].parameters_json) ==
        json::parse(R"({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]})"));

  const Step& step = r.call.step;
  CHECK(step.role == "plan");
  CHECK(step.needs_chain_of_thought);
  CHECK(step.output_must_be_json);
  CHECK_FALSE(step.untrusted_input);
  CHECK(step.tool_depth == 0);
  CHECK(meta_of(r) == std::map<std::string, MetaValue>{{"task", std::string("t-7")}});
  REQUIRE(step.input_tokens.has_value());
  CHECK(*step.input_tokens > 0);
}

TEST_CASE("an Anthropic SDK request parses into messages tools and the step") {
  const ParsedRequest r = parse_ok(ApiShape::kAnthropic, kAnthropicMessages);
  CHECK(r.shape == ApiShape::kAnthropic);
  CHECK(r.model == "claude-sonnet-4-5");
  CHECK(r.stream);
  CHECK_FALSE(r.include_usage);
  CHECK(r.max_output_tokens == std::optional<std::int64_t>(1024));
  CHECK(r.reasoning == std::optional<Reasoning>(Reasoning::kMedium));

  const auto& m = r.call.messages;
  REQUIRE(m.size() == 5);
  CHECK(m[0].role == "system");
  CHECK(m[0].content == "You are terse.");
  CHECK(m[1].role == "user");
  CHECK(m[1].content == "Weather in Paris?");
  CHECK(m[2].role == "assistant");
  CHECK(m[2].content == "Checking.");  // the thinking block is dropped
  REQUIRE(m[2].tool_calls.size() == 1);
  CHECK(m[2].tool_calls[0].id == "toolu_01");
  CHECK(m[2].tool_calls[0].name == "get_weather");
  CHECK(json::parse(m[2].tool_calls[0].arguments_json) == json{{"city", "Paris"}});
  CHECK(m[3].role == "tool");
  CHECK(m[3].tool_call_id == "toolu_01");
  CHECK(m[3].tool_name == "get_weather");
  CHECK(m[3].content == "18C, sunny");
  CHECK(m[4].role == "user");
  CHECK(m[4].content == "And tomorrow?");

  REQUIRE(r.call.tools.size() == 1);
  CHECK(r.call.tools[0].name == "get_weather");
  CHECK(json::parse(r.call.tools[0].parameters_json)["properties"]["city"]["type"] == "string");

  CHECK(r.call.step.role == "chat");
  CHECK(r.call.step.needs_chain_of_thought);
  CHECK_FALSE(r.call.step.output_must_be_json);
  CHECK(r.call.step.meta.empty());  // user_id is not a routing input
}

TEST_CASE("the smallest requests take the defaults") {
  const ParsedRequest o = parse_ok(ApiShape::kOpenAI, R"json({"model":"m","messages":[{"role":"user","content":"hi"}]})json");
  CHECK_FALSE(o.stream);
  CHECK_FALSE(o.include_usage);
  CHECK_FALSE(o.max_output_tokens.has_value());
  CHECK_FALSE(o.reasoning.has_value());
  CHECK(o.call.step.role == "chat");
  CHECK_FALSE(o.call.step.needs_chain_of_thought);
  CHECK_FALSE(o.call.step.output_must_be_json);
  CHECK(o.call.tools.empty());

  const ParsedRequest a = parse_ok(
      ApiShape::kAnthropic, R"json({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]})json");
  REQUIRE(a.call.messages.size() == 1);
  CHECK(a.call.messages[0].role == "user");
  CHECK_FALSE(a.stream);
  CHECK_FALSE(a.reasoning.has_value());
  CHECK(a.call.step.role == "chat");
}

TEST_CASE("null fields count as absent as the SDKs send them") {
  const ParsedRequest r = parse_ok(ApiShape::kOpenAI, R"json({"model":"m","messages":[{"role":"user","content":"hi"}],
    "tools":null,"stream":null,"stream_options":null,"max_completion_tokens":null,"max_tokens":300,
    "reasoning_effort":null,"response_format":null,"metadata":null,"n":null})json");
  CHECK(r.max_output_tokens == std::optional<std::int64_t>(300));
  CHECK_FALSE(r.stream);
  CHECK_FALSE(r.reasoning.has_value());
}

TEST_CASE("OpenAI reasoning_effort maps to a reasoning level") {
  struct Case {
    const char* effort;
    std::optional<Reasoning> reasoning;
    bool chain_of_thought;
  };
  const std::vector<Case> cases = {
      {"\"low\"", Reasoning::kLow, true},       {"\"medium\"", Reasoning::kMedium, true},
      {"\"high\"", Reasoning::kHigh, true},     {"\"xhigh\"", Reasoning::kHigh, true},
      {"\"minimal\"", std::nullopt, false},     {"\"none\"", std::nullopt, false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.effort);
    const std::string body = std::string(R"({"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":)") +
                             c.effort + "}";
    const ParsedRequest r = parse_ok(ApiShape::kOpenAI, body);
    CHECK(r.reasoning == c.reasoning);
    CHECK(r.call.step.needs_chain_of_thought == c.chain_of_thought);
  }
}

TEST_CASE("Anthropic thinking budget maps to a reasoning level") {
  struct Case {
    const char* thinking;
    std::optional<Reasoning> reasoning;
  };
  const std::vector<Case> cases = {
      {R"({"type":"enabled","budget_tokens":1024})", Reasoning::kLow},
      {R"({"type":"enabled","budget_tokens":4095})", Reasoning::kLow},
      {R"({"type":"enabled","budget_tokens":4096})", Reasoning::kMedium},
      {R"({"type":"enabled","budget_tokens":16383})", Reasoning::kMedium},
      {R"({"type":"enabled","budget_tokens":16384})", Reasoning::kHigh},
      {R"({"type":"enabled","budget_tokens":64000})", Reasoning::kHigh},
      {R"({"type":"disabled"})", std::nullopt},
  };
  for (const Case& c : cases) {
    CAPTURE(c.thinking);
    const std::string body =
        std::string(R"({"model":"m","max_tokens":100000,"messages":[{"role":"user","content":"x"}],"thinking":)") +
        c.thinking + "}";
    const ParsedRequest r = parse_ok(ApiShape::kAnthropic, body);
    CHECK(r.reasoning == c.reasoning);
    CHECK(r.call.step.needs_chain_of_thought == c.reasoning.has_value());
  }
}

TEST_CASE("OpenAI response_format json_object and json_schema ask for JSON and text does not") {
  struct Case {
    const char* format;
    bool json;
  };
  const std::vector<Case> cases = {
      {R"({"type":"text"})", false},
      {R"({"type":"json_object"})", true},
      {R"({"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"},"strict":true}})", true},
  };
  for (const Case& c : cases) {
    CAPTURE(c.format);
    const std::string body =
        std::string(R"({"model":"m","messages":[{"role":"user","content":"x"}],"response_format":)") + c.format + "}";
    CHECK(parse_ok(ApiShape::kOpenAI, body).call.step.output_must_be_json == c.json);
  }
}

TEST_CASE("metadata sets the step fields and x-switchboard headers win") {
  const char* openai = R"json({"model":"m","messages":[{"role":"user","content":"x"}],
    "metadata":{"role":"plan","untrusted_input":"true","tool_depth":"2","task":"t-1","team":"core"}})json";
  const char* anthropic = R"json({"model":"m","max_tokens":10,"messages":[{"role":"user","content":"x"}],
    "metadata":{"user_id":"u-9","role":"plan","untrusted_input":true,"tool_depth":2,"task":"t-1","team":"core",
                "n":3,"f":0.5,"b":false}})json";
  for (ApiShape shape : {ApiShape::kOpenAI, ApiShape::kAnthropic}) {
    CAPTURE(static_cast<int>(shape));
    const char* body = shape == ApiShape::kOpenAI ? openai : anthropic;
    const ParsedRequest plain = parse_ok(shape, body);
    CHECK(plain.call.step.role == "plan");
    CHECK(plain.call.step.untrusted_input);
    CHECK(plain.call.step.tool_depth == 2);
    const auto meta = meta_of(plain);
    CHECK(meta.at("task") == MetaValue(std::string("t-1")));
    CHECK(meta.count("role") == 0);
    CHECK(meta.count("user_id") == 0);
    if (shape == ApiShape::kAnthropic) {
      CHECK(meta.at("n") == MetaValue(std::int64_t{3}));
      CHECK(meta.at("f") == MetaValue(0.5));
      CHECK(meta.at("b") == MetaValue(false));
    }

    const Headers headers = {{"Content-Type", "application/json"},
                             {"X-Switchboard-Role", "format"},
                             {"x-switchboard-untrusted-input", "0"},
                             {"X-SWITCHBOARD-TOOL-DEPTH", "5"},
                             {"X-Switchboard-Meta-Task", "t-2"},
                             {"x-switchboard-meta-tenant", "acme"}};
    const ParsedRequest overridden = parse_ok(shape, body, headers);
    CHECK(overridden.call.step.role == "format");
    CHECK_FALSE(overridden.call.step.untrusted_input);
    CHECK(overridden.call.step.tool_depth == 5);
    const auto over = meta_of(overridden);
    CHECK(over.at("task") == MetaValue(std::string("t-2")));
    CHECK(over.at("tenant") == MetaValue(std::string("acme")));
    CHECK(over.at("team") == MetaValue(std::string("core")));
    CHECK(overridden.call.step.meta.size() == plain.call.step.meta.size() + 1);  // names stay unique
  }
}

TEST_CASE("the input token estimate counts message text tool calls and tool definitions") {
  // Each piece rounds up on its own: one token per three bytes.
  const ParsedRequest bare = parse_ok(ApiShape::kOpenAI, R"json({"model":"m","messages":[
    {"role":"system","content":"abcd"},{"role":"user","content":"hello"}]})json");
  CHECK(bare.call.step.input_tokens == std::optional<std::int64_t>(2 + 2));

  const ParsedRequest o = parse_ok(ApiShape::kOpenAI, kOpenAIChat);
  std::int64_t expected = 0;
  for (const Message& m : o.call.messages) {
    expected += estimate_tokens(m.content);
    for (const ToolCall& c : m.tool_calls) expected += estimate_tokens(c.name) + estimate_tokens(c.arguments_json);
  }
  for (const ToolSpec& t : o.call.tools) {
    expected += estimate_tokens(t.name) + estimate_tokens(t.description) + estimate_tokens(t.parameters_json);
  }
  CHECK(o.call.step.input_tokens == std::optional<std::int64_t>(expected));

  // The same conversation without its tools and tool call counts less.
  const ParsedRequest a = parse_ok(ApiShape::kAnthropic, kAnthropicMessages);
  const ParsedRequest a_plain = parse_ok(ApiShape::kAnthropic, R"json({"model":"m","max_tokens":10,
    "system":"You are terse.","messages":[{"role":"user","content":"Weather in Paris?"}]})json");
  CHECK(a_plain.call.step.input_tokens == std::optional<std::int64_t>(5 + 6));
  CHECK(*a.call.step.input_tokens > *a_plain.call.step.input_tokens + estimate_tokens(a.call.tools[0].parameters_json));
}

TEST_CASE("malformed OpenAI requests are 400s naming the field") {
  struct Case {
    const char* body;
    const char* param;
    const char* message;
  };
  const std::string u = R"("messages":[{"role":"user","content":"x"}])";
  const std::vector<Case> cases = {
      {"{", "", "the request body is not valid JSON"},
      {"[]", "", "the request body must be a JSON object"},
      {R"({"messages":[{"role":"user","content":"x"}]})", "model", "model is required"},
      {R"({"model":7,"messages":[{"role":"user","content":"x"}]})", "model", "model must be a string"},
      {R"({"model":"","messages":[{"role":"user","content":"x"}]})", "model", "model must not be empty"},
      {R"({"model":"m"})", "messages", "messages is required"},
      {R"({"model":"m","messages":[]})", "messages", "messages must be a non-empty array"},
      {R"({"model":"m","messages":{}})", "messages", "messages must be a non-empty array"},
      {R"({"model":"m","messages":["hi"]})", "messages[0]", "messages[0] must be an object"},
      {R"({"model":"m","messages":[{"content":"x"}]})", "messages[0].role", "messages[0].role is required"},
      {R"({"model":"m","messages":[{"role":"robot","content":"x"}]})", "messages[0].role",
       "messages[0].role must be one of system, developer, user, assistant, tool (got 'robot')"},
      {R"({"model":"m","messages":[{"role":"function","name":"f","content":"x"}]})", "messages[0].role",
       "messages[0].role 'function' is not supported: use tool messages"},
      {R"({"model":"m","messages":[{"role":"user"}]})", "messages[0].content", "messages[0].content is required"},
      {R"({"model":"m","messages":[{"role":"user","content":"a"},{"role":"user","content":"b"},{"role":"user","content":5}]})",
       "messages[2].content", "messages[2].content must be a string or an array of text parts"},
      {R"({"model":"m","messages":[{"role":"user","content":["x"]}]})", "messages[0].content[0]",
       "messages[0].content must be a string or an array of text parts"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"http://x"}}]}]})",
       "messages[0].content[0].type", "messages[0].content[0].type 'image_url' is not supported: only text parts are"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"text"}]}]})", "messages[0].content[0].text",
       "messages[0].content[0].text is required"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"text":"x"}]}]})", "messages[0].content[0].type",
       "messages[0].content[0].type is required"},
      {R"({"model":"m","messages":[{"role":"assistant"}]})", "messages[0].content",
       "messages[0].content is required unless tool_calls are given"},
      {R"({"model":"m","messages":[{"role":"assistant","tool_calls":{}}]})", "messages[0].tool_calls",
       "messages[0].tool_calls must be an array"},
      {R"({"model":"m","messages":[{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}]}]})",
       "messages[0].tool_calls[0].id", "messages[0].tool_calls[0].id is required"},
      {R"({"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"custom","custom":{"name":"f","input":""}}]}]})",
       "messages[0].tool_calls[0].type", "messages[0].tool_calls[0].type 'custom' is not supported: only function tool calls are"},
      {R"({"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function"}]}]})",
       "messages[0].tool_calls[0].function", "messages[0].tool_calls[0].function is required"},
      {R"({"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":{}}}]}]})",
       "messages[0].tool_calls[0].function.arguments", "messages[0].tool_calls[0].function.arguments must be a string"},
      {R"({"model":"m","messages":[{"role":"tool","content":"18C"}]})", "messages[0].tool_call_id",
       "messages[0].tool_call_id is required"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":{}})", "tools", "tools must be an array"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"custom","custom":{"name":"f"}}]})",
       "tools[0].type", "tools[0].type 'custom' is not supported: only function tools are"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"description":"d"}}]})",
       "tools[0].function.name", "tools[0].function.name is required"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":"{}"}}]})",
       "tools[0].function.parameters", "tools[0].function.parameters must be a JSON object"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"functions":[{"name":"f"}]})", "functions",
       "functions is not supported: use tools"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream":"yes"})", "stream", "stream must be true or false"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream_options":true})", "stream_options",
       "stream_options must be an object"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":1}})",
       "stream_options.include_usage", "stream_options.include_usage must be true or false"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_completion_tokens":0})", "max_completion_tokens",
       "max_completion_tokens must be an integer between 1 and 100000000"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":"100"})", "max_tokens",
       "max_tokens must be an integer between 1 and 100000000"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":12.5})", "max_tokens",
       "max_tokens must be an integer between 1 and 100000000"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"n":2})", "n", "n must be 1: the router returns one choice"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"max"})", "reasoning_effort",
       "reasoning_effort must be one of none, minimal, low, medium, high, xhigh"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"yaml"}})",
       "response_format.type", "response_format.type must be one of text, json_object, json_schema (got 'yaml')"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"response_format":"json"})", "response_format",
       "response_format must be an object"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"metadata":["x"]})", "metadata",
       "metadata must be an object"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"metadata":{"task":{"id":1}}})", "metadata.task",
       "metadata.task must be a string, number or boolean"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"metadata":{"role":""}})", "metadata.role",
       "metadata.role must be a non-empty string"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"metadata":{"untrusted_input":"yes"}})",
       "metadata.untrusted_input", "metadata.untrusted_input must be true or false (or \"true\", \"false\", \"1\", \"0\")"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"metadata":{"tool_depth":"-1"}})", "metadata.tool_depth",
       "metadata.tool_depth must be a whole number between 0 and 1000000"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.body);
    const ApiResult<ParsedRequest> r = parse_openai_chat(c.body, kNoHeaders);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error.http_status == 400);
    CHECK(r.error.type == "invalid_request_error");
    CHECK(r.error.code == "");
    CHECK(r.error.param == c.param);
    CHECK(r.error.message == c.message);
  }
}

TEST_CASE("malformed Anthropic requests are 400s naming the field") {
  struct Case {
    const char* body;
    const char* param;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"not json", "", "the request body is not valid JSON"},
      {"\"x\"", "", "the request body must be a JSON object"},
      {R"({"max_tokens":5,"messages":[{"role":"user","content":"x"}]})", "model", "model is required"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}]})", "max_tokens", "max_tokens is required"},
      {R"({"model":"m","max_tokens":-1,"messages":[{"role":"user","content":"x"}]})", "max_tokens",
       "max_tokens must be an integer between 1 and 100000000"},
      {R"({"model":"m","max_tokens":5})", "messages", "messages is required"},
      {R"({"model":"m","max_tokens":5,"messages":[]})", "messages", "messages must be a non-empty array"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"system","content":"x"}]})", "messages[0].role",
       "messages[0].role must be user or assistant (got 'system')"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user"}]})", "messages[0].content",
       "messages[0].content is required"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":3}]})", "messages[0].content",
       "messages[0].content must be a string or an array of content blocks"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":["x"]}]})", "messages[0].content[0]",
       "messages[0].content[0] must be a content block object"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{}}]}]})",
       "messages[0].content[0].type",
       "messages[0].content[0].type 'image' is not supported: only text, tool_use, tool_result and thinking blocks are"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]}]})",
       "messages[0].content[0].type", "messages[0].content[0].type 'tool_use' is not allowed in user messages"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_result","tool_use_id":"t"}]}]})",
       "messages[0].content[0].type", "messages[0].content[0].type 'tool_result' is not allowed in assistant messages"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":[1]}]}]})",
       "messages[0].content[0].input", "messages[0].content[0].input must be an object"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_use","name":"f","input":{}}]}]})",
       "messages[0].content[0].id", "messages[0].content[0].id is required"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","content":"x"}]}]})",
       "messages[0].content[0].tool_use_id", "messages[0].content[0].tool_use_id is required"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"image","source":{}}]}]}]})",
       "messages[0].content[0].content[0].type",
       "messages[0].content[0].content[0].type 'image' is not supported: only text blocks are"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":1}]}]})",
       "messages[0].content[0].text", "messages[0].content[0].text must be a string"},
      {R"({"model":"m","max_tokens":5,"system":7,"messages":[{"role":"user","content":"x"}]})", "system",
       "system must be a string or an array of text blocks"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"tools":[{"name":"f"}]})",
       "tools[0].input_schema", "tools[0].input_schema is required"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"tools":[{"type":"web_search_20250305","name":"web_search"}]})",
       "tools[0].type", "tools[0].type 'web_search_20250305' is not supported: only custom tools are"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"thinking":{"type":"enabled"}})",
       "thinking.budget_tokens", "thinking.budget_tokens is required"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"thinking":{"type":"always"}})",
       "thinking.type", "thinking.type must be enabled or disabled (got 'always')"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"stream":1})", "stream",
       "stream must be true or false"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"metadata":{"tool_depth":1.5}})",
       "metadata.tool_depth", "metadata.tool_depth must be a whole number between 0 and 1000000"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.body);
    const ApiResult<ParsedRequest> r = parse_anthropic_messages(c.body, kNoHeaders);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error.http_status == 400);
    CHECK(r.error.type == "invalid_request_error");
    CHECK(r.error.param == c.param);
    CHECK(r.error.message == c.message);
  }
}

TEST_CASE("malformed x-switchboard headers are 400s naming the header") {
  struct Case {
    const char* name;
    const char* value;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"x-switchboard-role", "", "header x-switchboard-role must not be empty"},
      {"X-Switchboard-Untrusted-Input", "yes", "header x-switchboard-untrusted-input must be true, false, 1 or 0"},
      {"x-switchboard-tool-depth", "-2", "header x-switchboard-tool-depth must be a whole number between 0 and 1000000"},
      {"x-switchboard-tool-depth", "1000001",
       "header x-switchboard-tool-depth must be a whole number between 0 and 1000000"},
      {"x-switchboard-role", "caf\xc3", "header x-switchboard-role is not valid UTF-8"},
      {"x-switchboard-role", "\xed\xa0\x80", "header x-switchboard-role is not valid UTF-8"},  // a surrogate
      {"x-switchboard-role", "\xc0\xaf", "header x-switchboard-role is not valid UTF-8"},      // overlong
      {"X-Switchboard-Meta-Team", "\xff", "header X-Switchboard-Meta-Team is not valid UTF-8"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    CAPTURE(c.value);
    const Headers headers = {{c.name, c.value}};
    const ApiResult<ParsedRequest> o =
        parse_openai_chat(R"({"model":"m","messages":[{"role":"user","content":"x"}]})", headers);
    REQUIRE_FALSE(o.ok());
    CHECK(o.error.http_status == 400);
    CHECK(o.error.param == "");
    CHECK(o.error.message == c.message);
    const ApiResult<ParsedRequest> a =
        parse_anthropic_messages(R"({"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}]})", headers);
    REQUIRE_FALSE(a.ok());
    CHECK(a.error.message == c.message);
  }
}

TEST_CASE("UTF-8 header values are kept") {
  const ParsedRequest r = parse_ok(ApiShape::kOpenAI, R"({"model":"m","messages":[{"role":"user","content":"x"}]})",
                                   {{"x-switchboard-role", "r\xc3\xa9sum\xc3\xa9"}, {"x-switchboard-meta-e", "\xf0\x9f\x98\x80"}});
  CHECK(r.call.step.role == "r\xc3\xa9sum\xc3\xa9");
  CHECK(meta_of(r).at("e") == MetaValue(std::string("\xf0\x9f\x98\x80")));
}

// {"a":{"a":...}} with n objects.
std::string nested(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += R"({"a":)";
  s += "1";
  s.append(static_cast<std::size_t>(n), '}');
  return s;
}

TEST_CASE("JSON nested deeper than max_json_depth is a 400 naming the field under which it nests") {
  const std::string tools_head = R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[)";
  const struct {
    ApiShape shape;
    std::string body;
    std::string param;
  } cases[] = {
      {ApiShape::kOpenAI, tools_head + R"({"type":"function","function":{"name":"f","parameters":)" + nested(100) + "}}]}",
       "tools[0].function.parameters"},
      {ApiShape::kOpenAI, R"({"model":"m","messages":[{"role":"user","content":"x"}],"metadata":)" + nested(70) + "}",
       "metadata"},
      {ApiShape::kAnthropic,
       R"({"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"tools":[{"name":"g"},{"name":"f","input_schema":)" +
           nested(100) + "}]}",
       "tools[1].input_schema"},
      {ApiShape::kAnthropic,
       R"({"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"text","text":"t"},{"type":"tool_use","id":"t","name":"f","input":)" +
           nested(100) + "}]}]}",
       "messages[1].content[1].input"},
      {ApiShape::kOpenAI, std::string(65, '[') + std::string(65, ']'), ""},
  };
  for (const auto& c : cases) {
    CAPTURE(c.param);
    const ApiResult<ParsedRequest> r = c.shape == ApiShape::kOpenAI ? parse_openai_chat(c.body, kNoHeaders)
                                                                     : parse_anthropic_messages(c.body, kNoHeaders);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error.http_status == 400);
    CHECK(r.error.type == "invalid_request_error");
    CHECK(r.error.param == c.param);
    CHECK(r.error.message ==
          (c.param.empty() ? std::string("the request body") : c.param) + " nests deeper than 64 levels (max_json_depth)");
  }
  // The bound is the caller's; the body itself is level 1.
  const std::string at_limit = tools_head + R"({"type":"function","function":{"name":"f","parameters":)" + nested(4) +
                               "}}]}";  // parameters' objects reach level 8
  CHECK(parse_openai_chat(at_limit, kNoHeaders, 8).ok());
  CHECK_FALSE(parse_openai_chat(at_limit, kNoHeaders, 7).ok());
  // Within the default bound, the schema is kept whole.
  const ParsedRequest kept = parse_ok(
      ApiShape::kOpenAI, tools_head + R"({"type":"function","function":{"name":"f","parameters":)" + nested(50) + "}}]}");
  CHECK(kept.call.tools.at(0).parameters_json == nested(50));
}

TEST_CASE("a model's tool arguments nested deeper than the bound are answered as text") {
  ParsedRequest request = parse_ok(ApiShape::kAnthropic, kAnthropicMessages);
  request.max_json_depth = 8;
  const StepResult result = answer("", {{"t1", "f", nested(20)}, {"t2", "g", nested(3)}}, "tool_calls");
  const json body = json::parse(render_response(request, result, "msg_1", 1));
  CHECK(body["content"][0]["input"] == nested(20));
  CHECK(body["content"][1]["input"] == json::parse(nested(3)));
}

TEST_CASE("redact_secrets hides whole and masked keys and leaves other words") {
  const struct {
    const char* text;
    const char* redacted;
  } cases[] = {
      {"Incorrect API key provided: sk-upst\xE2\x80\xA6" "3a9c. You can find it", "Incorrect API key provided: [redacted]. You can find it"},
      {"key sk-upst...3a9c given", "key [redacted] given"},
      {"key sk-upst****3a9c given", "key [redacted] given"},
      {"key sk-upst\\u20263a9c given", "key [redacted] given"},
      {"sk-ant-api03-AbCdEfGh_123-xyz", "[redacted]"},
      {"(sk-proj-Zq81x0FakeKey, AIzaSyA1b2C3d4E5f6)", "([redacted], [redacted])"},
      {"AIzaSyAb...wxyz.", "[redacted]."},
      {"sk-abcd...", "[redacted]"},
      {"a task-based risk-free sk- flow; ask-me; AIz", "a task-based risk-free sk- flow; ask-me; AIz"},
      {"", ""},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    CHECK(redact_secrets(c.text) == c.redacted);
  }
}

TEST_CASE("render_error writes each shape's error body") {
  ApiError e;
  e.http_status = 400;
  e.type = "invalid_request_error";
  e.param = "messages[0].content";
  e.message = "messages[0].content is required";
  const json o = json::parse(render_error(ApiShape::kOpenAI, e));
  CHECK(o == json::parse(R"({"error":{"message":"messages[0].content is required","type":"invalid_request_error",
                                      "param":"messages[0].content","code":null}})"));
  e.param.clear();
  e.code = "rate_limit_exceeded";
  const json o2 = json::parse(render_error(ApiShape::kOpenAI, e));
  CHECK(o2["error"]["param"].is_null());
  CHECK(o2["error"]["code"] == "rate_limit_exceeded");
  const json a = json::parse(render_error(ApiShape::kAnthropic, e));
  CHECK(a == json::parse(R"({"type":"error","error":{"type":"invalid_request_error",
                                                     "message":"messages[0].content is required"}})"));
}

TEST_CASE("an OpenAI chat.completion carries the text and the usage with its details folded back in") {
  const ParsedRequest request = parse_ok(ApiShape::kOpenAI, kOpenAIChat);
  const json body = json::parse(render_response(request, answer("It will rain."), "chatcmpl-1", 1700000000));
  CHECK(body["id"] == "chatcmpl-1");
  CHECK(body["object"] == "chat.completion");
  CHECK(body["created"] == 1700000000);
  CHECK(body["model"] == "m-cheap");
  REQUIRE(body["choices"].size() == 1);
  const json& choice = body["choices"][0];
  CHECK(choice["index"] == 0);
  CHECK(choice["finish_reason"] == "stop");
  CHECK(choice["logprobs"].is_null());
  CHECK(choice["message"] == json::parse(R"({"role":"assistant","content":"It will rain.","refusal":null})"));
  // input 100 + cached 40 + writes 7 + 3; output 20 + reasoning 5.
  CHECK(body["usage"] == json::parse(R"({"prompt_tokens":150,"completion_tokens":25,"total_tokens":175,
        "prompt_tokens_details":{"cached_tokens":40},"completion_tokens_details":{"reasoning_tokens":5}})"));
}

TEST_CASE("an OpenAI answer of tool calls has null content and made-up ids where the provider gave none") {
  const ParsedRequest request = parse_ok(ApiShape::kOpenAI, kOpenAIChat);
  const StepResult result = answer("", {{"call_p", "get_weather", R"({"city":"Oslo"})"}, {"", "get_time", ""}}, "stop");
  const json body = json::parse(render_response(request, result, "chatcmpl-9", 1));
  const json& message = body["choices"][0]["message"];
  CHECK(message["content"].is_null());
  CHECK(body["choices"][0]["finish_reason"] == "tool_calls");
  CHECK(message["tool_calls"] == json::parse(R"([
    {"id":"call_p","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}},
    {"id":"call_chatcmpl-9_1","type":"function","function":{"name":"get_time","arguments":"{}"}}])"));

  // The SDK sends the answer back as history: it parses into the same calls.
  json next = json::parse(kOpenAIChat);
  next["messages"].push_back(message);
  next["messages"].push_back(json{{"role", "tool"}, {"tool_call_id", "call_chatcmpl-9_1"}, {"content", "noon"}});
  const ParsedRequest again = parse_ok(ApiShape::kOpenAI, next.dump());
  const Message& replayed = again.call.messages[again.call.messages.size() - 2];
  REQUIRE(replayed.tool_calls.size() == 2);
  CHECK(replayed.tool_calls[0].arguments_json == R"({"city":"Oslo"})");
  CHECK(replayed.tool_calls[1].id == "call_chatcmpl-9_1");
  CHECK(again.call.messages.back().tool_name == "get_time");
}

TEST_CASE("finish reasons map to each shape's words") {
  struct Case {
    const char* finish;
    bool tool_call;
    const char* openai;
    const char* anthropic;
  };
  const std::vector<Case> cases = {
      {"stop", false, "stop", "end_turn"},
      {"length", false, "length", "max_tokens"},
      {"tool_calls", true, "tool_calls", "tool_use"},
      {"stop", true, "tool_calls", "tool_use"},
      {"content_filter", false, "content_filter", "refusal"},
      {"", false, "stop", "end_turn"},
      {"pause_turn", false, "stop", "pause_turn"},
      {"SOMETHING_NEW", false, "stop", "end_turn"},
  };
  const ParsedRequest o = parse_ok(ApiShape::kOpenAI, kOpenAIChat);
  const ParsedRequest a = parse_ok(ApiShape::kAnthropic, kAnthropicMessages);
  for (const Case& c : cases) {
    CAPTURE(c.finish);
    CAPTURE(c.tool_call);
    std::vector<ToolCall> calls;
    if (c.tool_call) calls.push_back({"id1", "f", "{}"});
    const StepResult result = answer("x", calls, c.finish);
    CHECK(json::parse(render_response(o, result, "c", 1))["choices"][0]["finish_reason"] == c.openai);
    CHECK(json::parse(render_response(a, result, "msg_1", 1))["stop_reason"] == c.anthropic);
  }
}

TEST_CASE("an Anthropic message carries text and tool_use blocks and the usage apart") {
  const ParsedRequest request = parse_ok(ApiShape::kAnthropic, kAnthropicMessages);
  const StepResult result = answer("Let me check.", {{"toolu_9", "get_weather", R"({"city":"Oslo"})"},
                                                     {"", "get_time", ""},
                                                     {"", "broken", "{not json"}},
                                   "tool_calls");
  const json body = json::parse(render_response(request, result, "msg_1", 1));
  CHECK(body["id"] == "msg_1");
  CHECK(body["type"] == "message");
  CHECK(body["role"] == "assistant");
  CHECK(body["model"] == "m-cheap");
  CHECK(body["stop_reason"] == "tool_use");
  CHECK(body["stop_sequence"].is_null());
  CHECK(body["content"] == json::parse(R"([
    {"type":"text","text":"Let me check."},
    {"type":"tool_use","id":"toolu_9","name":"get_weather","input":{"city":"Oslo"}},
    {"type":"tool_use","id":"call_msg_1_1","name":"get_time","input":{}},
    {"type":"tool_use","id":"call_msg_1_2","name":"broken","input":"{not json"}])"));
  CHECK(body["usage"] == json::parse(R"({"input_tokens":100,"cache_creation_input_tokens":10,
        "cache_read_input_tokens":40,"output_tokens":25,
        "cache_creation":{"ephemeral_5m_input_tokens":7,"ephemeral_1h_input_tokens":3}})"));

  // Only tool calls: no text block. Nothing at all: one empty text block.
  const json tools_only = json::parse(render_response(request, answer("", {{"t", "f", "{}"}}), "msg_2", 1));
  REQUIRE(tools_only["content"].size() == 1);
  CHECK(tools_only["content"][0]["type"] == "tool_use");
  const json empty = json::parse(render_response(request, answer(""), "msg_3", 1));
  CHECK(empty["content"] == json::parse(R"([{"type":"text","text":""}])"));

  // The SDK sends the answer back as history: it parses into the same calls.
  json next = json::parse(kAnthropicMessages);
  next["messages"].push_back(json{{"role", "assistant"}, {"content", body["content"]}});
  const ParsedRequest again = parse_ok(ApiShape::kAnthropic, next.dump());
  const Message& replayed = again.call.messages.back();
  CHECK(replayed.content == "Let me check.");
  REQUIRE(replayed.tool_calls.size() == 3);
  CHECK(replayed.tool_calls[1].id == "call_msg_1_1");
  CHECK(json::parse(replayed.tool_calls[0].arguments_json) == json{{"city", "Oslo"}});
  CHECK(replayed.tool_calls[2].arguments_json == "{not json");
}

TEST_CASE("an OpenAI stream reads back into the text tool calls usage and DONE") {
  const ParsedRequest request = parse_ok(ApiShape::kOpenAI, kOpenAIChat);  // include_usage
  StreamWriter writer(request, "chatcmpl-s", 1700000001, "m-cheap");
  std::string bytes = writer.begin();
  for (const char* piece : {"It ", "will ", "", "rain."}) bytes += writer.piece(piece);
  bytes += writer.end(answer("It will rain.", {{"", "get_weather", R"({"city":"Oslo"})"}}));

  const std::vector<SseEvent> events = read_sse(bytes);
  REQUIRE(events.size() == 8);  // role, 3 pieces, tool calls, finish, usage, [DONE]
  CHECK(events.back().data == "[DONE]");
  std::string text;
  std::string role;
  std::string finish;
  json tool_calls = json::array();
  json usage;
  for (std::size_t i = 0; i + 1 < events.size(); ++i) {
    CAPTURE(events[i].data);
    CHECK(events[i].type == "message");
    const json chunk = json::parse(events[i].data);
    CHECK(chunk["id"] == "chatcmpl-s");
    CHECK(chunk["object"] == "chat.completion.chunk");
    CHECK(chunk["created"] == 1700000001);
    CHECK(chunk["model"] == "m-cheap");
    REQUIRE(chunk.contains("usage"));
    if (chunk["choices"].empty()) {
      CHECK(i + 2 == events.size());  // the usage chunk is the last before [DONE]
      usage = chunk["usage"];
      continue;
    }
    CHECK(chunk["usage"].is_null());
    const json& choice = chunk["choices"][0];
    CHECK(choice["index"] == 0);
    const json& delta = choice["delta"];
    if (delta.contains("role")) role = delta["role"];
    if (delta.contains("content")) text += delta["content"].get<std::string>();
    if (delta.contains("tool_calls")) {
      for (const json& c : delta["tool_calls"]) tool_calls.push_back(c);
    }
    if (!choice["finish_reason"].is_null()) {
      CHECK(finish.empty());
      finish = choice["finish_reason"];
    }
  }
  CHECK(role == "assistant");
  CHECK(text == "It will rain.");
  CHECK(finish == "tool_calls");
  CHECK(tool_calls == json::parse(R"([{"index":0,"id":"call_chatcmpl-s_0","type":"function",
                                      "function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}])"));
  CHECK(usage["prompt_tokens"] == 150);
  CHECK(usage["completion_tokens"] == 25);
  CHECK(usage["total_tokens"] == 175);
}

TEST_CASE("an OpenAI stream without include_usage has no usage field and still ends with DONE") {
  const ParsedRequest request =
      parse_ok(ApiShape::kOpenAI, R"json({"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]})json");
  StreamWriter writer(request, "chatcmpl-t", 5, "m-cheap");
  std::string bytes = writer.begin();
  bytes += writer.piece("hi");
  bytes += writer.end(answer("hi"));
  const std::vector<SseEvent> events = read_sse(bytes);
  REQUIRE(events.size() == 4);  // role, piece, finish, [DONE]
  for (std::size_t i = 0; i + 1 < events.size(); ++i) CHECK_FALSE(json::parse(events[i].data).contains("usage"));
  CHECK(json::parse(events[2].data)["choices"][0]["finish_reason"] == "stop");
  CHECK(events[3].data == "[DONE]");
}

TEST_CASE("an Anthropic stream reads back into the message the SDK accumulates") {
  const ParsedRequest request = parse_ok(ApiShape::kAnthropic, kAnthropicMessages);
  StreamWriter writer(request, "msg_s", 1700000001, "m-cheap");
  std::string bytes = writer.begin();
  for (const char* piece : {"Let ", "", "me check."}) bytes += writer.piece(piece);
  bytes += writer.end(answer("Let me check.", {{"toolu_1", "get_weather", R"({"city":"Oslo"})"}}, "tool_calls"));

  // Accumulate as the SDK's MessageStream does.
  std::vector<std::string> types;
  json message;
  std::map<std::size_t, std::string> partial_json;
  for (const SseEvent& e : read_sse(bytes)) {
    CAPTURE(e.data);
    const json data = json::parse(e.data);
    CHECK(data["type"] == e.type);  // the data repeats the event's name
    types.push_back(e.type);
    if (e.type == "message_start") {
      message = data["message"];
      CHECK(message["content"].empty());
      CHECK(message["usage"]["input_tokens"] == *request.call.step.input_tokens);  // the estimate, until the end
    } else if (e.type == "content_block_start") {
      CHECK(data["index"] == message["content"].size());
      message["content"].push_back(data["content_block"]);
    } else if (e.type == "content_block_delta") {
      const std::size_t index = data["index"];
      if (data["delta"]["type"] == "text_delta") {
        message["content"][index]["text"] = message["content"][index]["text"].get<std::string>() +
                                            data["delta"]["text"].get<std::string>();
      } else {
        CHECK(data["delta"]["type"] == "input_json_delta");
        partial_json[index] += data["delta"]["partial_json"].get<std::string>();
      }
    } else if (e.type == "content_block_stop") {
      const std::size_t index = data["index"];
      if (partial_json.count(index)) message["content"][index]["input"] = json::parse(partial_json[index]);
    } else if (e.type == "message_delta") {
      message["stop_reason"] = data["delta"]["stop_reason"];
      for (const auto& [k, v] : data["usage"].items()) message["usage"][k] = v;
    }
  }
  CHECK(types == std::vector<std::string>{"message_start", "ping", "content_block_start", "content_block_delta",
                                          "content_block_delta", "content_block_stop", "content_block_start",
                                          "content_block_delta", "content_block_stop", "message_delta",
                                          "message_stop"});
  CHECK(message["id"] == "msg_s");
  CHECK(message["model"] == "m-cheap");
  CHECK(message["stop_reason"] == "tool_use");
  CHECK(message["content"] == json::parse(R"([{"type":"text","text":"Let me check."},
        {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Oslo"}}])"));
  CHECK(message["usage"]["input_tokens"] == 100);
  CHECK(message["usage"]["cache_read_input_tokens"] == 40);
  CHECK(message["usage"]["cache_creation_input_tokens"] == 10);
  CHECK(message["usage"]["output_tokens"] == 25);
}

TEST_CASE("a stream whose pieces never came writes the whole answer at the end") {
  for (ApiShape shape : {ApiShape::kOpenAI, ApiShape::kAnthropic}) {
    CAPTURE(static_cast<int>(shape));
    const ParsedRequest request =
        shape == ApiShape::kOpenAI ? parse_ok(shape, kOpenAIChat) : parse_ok(shape, kAnthropicMessages);
    StreamWriter writer(request, "id-1", 1, "m-cheap");
    std::string bytes = writer.begin();
    bytes += writer.end(answer("All at once."));
    std::string text;
    for (const SseEvent& e : read_sse(bytes)) {
      if (e.data == "[DONE]") continue;
      const json data = json::parse(e.data);
      if (shape == ApiShape::kOpenAI && !data["choices"].empty() && data["choices"][0]["delta"].contains("content")) {
        text += data["choices"][0]["delta"]["content"].get<std::string>();
      }
      if (shape == ApiShape::kAnthropic && e.type == "content_block_delta") text += data["delta"]["text"].get<std::string>();
    }
    CHECK(text == "All at once.");
  }
}

TEST_CASE("an Anthropic stream of an empty answer still has one text block") {
  const ParsedRequest request = parse_ok(ApiShape::kAnthropic, kAnthropicMessages);
  StreamWriter writer(request, "msg_e", 1, "m-cheap");
  std::vector<std::string> types;
  std::string bytes = writer.begin();
  bytes += writer.end(answer(""));
  for (const SseEvent& e : read_sse(bytes)) types.push_back(e.type);
  CHECK(types == std::vector<std::string>{"message_start", "ping", "content_block_start", "content_block_stop",
                                          "message_delta", "message_stop"});
}

TEST_CASE("a failed stream ends with an error event in the shape's format") {
  ApiError error;
  error.http_status = 503;
  error.type = "api_error";
  error.message = "every model failed";

  const ParsedRequest o = parse_ok(ApiShape::kOpenAI, kOpenAIChat);
  StreamWriter openai(o, "chatcmpl-f", 1, "m-cheap");
  const std::string failed = openai.fail(error);
  CHECK(failed.rfind("data: ", 0) == 0);
  std::string o_bytes = openai.begin();
  o_bytes += openai.piece("par");
  const std::vector<SseEvent> oe = read_sse(o_bytes + failed);
  REQUIRE(oe.size() == 3);
  CHECK(json::parse(oe.back().data) ==
        json::parse(R"({"error":{"message":"every model failed","type":"api_error","param":null,"code":null}})"));

  const ParsedRequest a = parse_ok(ApiShape::kAnthropic, kAnthropicMessages);
  StreamWriter anthropic(a, "msg_f", 1, "m-cheap");
  const std::string a_failed = anthropic.fail(error);
  CHECK(a_failed.rfind("event: error\ndata: ", 0) == 0);
  std::string a_bytes = anthropic.begin();
  a_bytes += anthropic.piece("par");
  const std::vector<SseEvent> ae = read_sse(a_bytes + a_failed);
  REQUIRE_FALSE(ae.empty());
  CHECK(ae.back().type == "error");
  CHECK(json::parse(ae.back().data) ==
        json::parse(R"({"type":"error","error":{"type":"api_error","message":"every model failed"}})"));
}

}  // TEST_SUITE
