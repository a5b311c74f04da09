// Golden wire tests for OpenAI Chat Completions (openai_wire.cpp), provider
// "openai" and "openai-compatible": the bodies build_request must produce for
// every canonical field, and the answers and SSE streams (recorded shapes of
// OpenAI, vLLM and DeepSeek) it must read back into blocks, stop reasons,
// logprobs and chunks.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "providers/sse.h"
#include "providers/wire_format.h"
#include "json/read.h"
#include "test_util.h"

using namespace switchboard;
using nlohmann::json;
using switchboard::testing::usage_of;
using Type = ContentBlock::Type;

namespace {

ModelSpec openai_spec() {
  ModelSpec m;
  m.provider = "openai";
  m.name = m.model_id = "gpt-5";
  m.endpoint = "https://api.openai.com/v1";
  m.max_output_tokens = 32768;  // thinking budgets at their defaults: 1024 / 4096 / 16384
  return m;
}

ModelSpec compatible_spec() {
  ModelSpec m;
  m.provider = "openai-compatible";
  m.name = m.model_id = "qwen3-32b";
  m.endpoint = "http://127.0.0.1:8000/v1/";
  m.capabilities.thinking = false;  // the provider's default
  m.capabilities.audio = true;
  return m;
}

Result<HttpRequest> build(const ModelSpec& spec, const ModelRequest& request, bool stream = false) {
  return make_openai_wire(spec, "sk-test")->build_request(request, stream);
}

// The body, checked to be written as nlohmann writes the tree it reads as
// (members in key order, the same escapes): the messages are written as
// text, the rest from a tree.
json body_for(const ModelSpec& spec, const ModelRequest& request, bool stream = false) {
  Result<HttpRequest> r = build(spec, request, stream);
  REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  json body = json::parse(r->body);
  CHECK(r->body == body.dump(-1, ' ', false, json::error_handler_t::replace));
  return body;
}

ModelRequest ask(std::string text) {
  ModelRequest r;
  r.messages.push_back(Message::of_text("user", std::move(text)));
  return r;
}

ToolSpec tool(std::string name, std::string description, std::string parameters_json) {
  ToolSpec t;
  t.name = std::move(name);
  t.description = std::move(description);
  t.parameters_json = std::move(parameters_json);
  return t;
}

ContentBlock media(Type type, MediaSource::Kind kind, std::string media_type, std::string data) {
  ContentBlock b;
  b.type = type;
  b.source = {kind, std::move(media_type), std::move(data)};
  return b;
}

ContentBlock thinking(std::string text, std::string signature, std::string origin) {
  ContentBlock b;
  b.type = Type::kThinking;
  b.text = std::move(text);
  b.signature = std::move(signature);
  b.origin = std::move(origin);
  return b;
}

ContentBlock refusal(std::string text) {
  ContentBlock b;
  b.type = Type::kRefusal;
  b.text = std::move(text);
  return b;
}

// A request that sets every field Chat Completions can take.
ModelRequest every_field_request() {
  ModelRequest r;
  Message system = Message::of_text("system", "You review contracts.");
  system.content[0].cache = CacheBreakpoint{"1h"};  // OpenAI caches by itself: dropped
  r.messages.push_back(system);

  Message user;
  user.role = "user";
  user.name = "alice";
  user.content.push_back(ContentBlock::of_text("What does this show?"));
  ContentBlock png = media(Type::kImage, MediaSource::Kind::kBase64, "image/png", "iVBORw0KGgo=");
  png.detail = "high";
  user.content.push_back(png);
  user.content.push_back(media(Type::kImage, MediaSource::Kind::kUrl, "", "https://example.com/cat.jpg"));
  ContentBlock pdf = media(Type::kDocument, MediaSource::Kind::kBase64, "application/pdf", "JVBERi0xLjQ=");
  pdf.title = "contract.pdf";
  user.content.push_back(pdf);
  user.content.push_back(media(Type::kAudio, MediaSource::Kind::kBase64, "audio/wav", "UklGRg=="));
  r.messages.push_back(user);

  Message assistant;
  assistant.role = "assistant";
  assistant.name = "reviewer";
  assistant.content.push_back(thinking("Clause 14 first.", "EqQBCgIYAh", "anthropic"));
  assistant.content.push_back(ContentBlock::of_text("Let me look up clause 14."));
  assistant.content.push_back(ContentBlock::of_tool_call({"call_1", "lookup_clause", R"({"clause":"14"})"}));
  ContentBlock shot = ContentBlock::of_tool_call({"call_2", "screenshot", ""});
  shot.signature = "CiQB0e2Kb";  // Gemini's thoughtSignature: not for OpenAI
  shot.origin = "gemini";
  assistant.content.push_back(shot);
  r.messages.push_back(assistant);

  Message results;
  results.role = "tool";
  results.content.push_back(ContentBlock::of_tool_result("call_1", "lookup_clause", "clause not found", true));
  ContentBlock page = ContentBlock::of_tool_result("call_2", "screenshot", "page 3");
  page.content.push_back(media(Type::kImage, MediaSource::Kind::kBase64, "image/jpeg", "/9j/4AAQ"));
  results.content.push_back(page);
  r.messages.push_back(results);

  r.messages.push_back(Message::of_text("user", "Summarise it."));
  Message refused;
  refused.role = "assistant";
  refused.content.push_back(refusal("I can't help with that."));
  r.messages.push_back(refused);
  r.messages.push_back(Message::of_text("user", "Please try again."));

  ToolSpec lookup = tool("lookup_clause", "Finds a clause by number",
                         R"({"type":"object","properties":{"clause":{"type":"string"}},)"
                         R"("required":["clause"],"additionalProperties":false})");
  lookup.strict = true;
  lookup.cache = CacheBreakpoint{};
  r.tools.push_back(lookup);
  r.tools.push_back(tool("screenshot", "", R"({"type":"object","properties":{}})"));
  r.tool_choice = ToolChoice{ToolChoice::Mode::kNamed, "lookup_clause"};
  r.parallel_tool_calls = false;

  r.output_format.type = OutputFormat::Type::kJsonSchema;
  r.output_format.name = "summary";
  r.output_format.description = "A clause summary";
  r.output_format.schema_json = R"({"type":"object","properties":{"cap":{"type":"string"}},"required":["cap"]})";
  r.output_format.strict = true;

  r.sampling.temperature = 0.25;
  r.sampling.top_p = 0.5;
  r.sampling.stop = {"END", "###"};
  r.sampling.seed = 42;
  r.sampling.presence_penalty = 0.125;
  r.sampling.frequency_penalty = 0.375;
  r.sampling.logprobs = true;
  r.sampling.top_logprobs = 3;
  r.sampling.user = "user-123";

  r.reasoning.level = Reasoning::kLow;  // the caller's effort wins over the rules' level
  r.reasoning.effort = Effort::kXHigh;
  r.max_output_tokens = 50000;  // over the model's 32768
  return r;
}

const char* kEveryFieldBody = R"json({
  "model": "gpt-5",
  "messages": [
    {"role": "system", "content": "You review contracts."},
    {"role": "user", "name": "alice", "content": [
      {"type": "text", "text": "What does this show?"},
      {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
      {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
      {"type": "file", "file": {"filename": "contract.pdf", "file_data": "data:application/pdf;base64,JVBERi0xLjQ="}},
      {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}]},
    {"role": "assistant", "name": "reviewer", "content": "Let me look up clause 14.", "tool_calls": [
      {"id": "call_1", "type": "function", "function": {"name": "lookup_clause", "arguments": "{\"clause\":\"14\"}"}},
      {"id": "call_2", "type": "function", "function": {"name": "screenshot", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "Error: clause not found"},
    {"role": "tool", "tool_call_id": "call_2", "content": "page 3"},
    {"role": "user", "content": [
      {"type": "text", "text": "Attachments of tool call call_2:"},
      {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
      {"type": "text", "text": "Summarise it."}]},
    {"role": "assistant", "content": null, "refusal": "I can't help with that."},
    {"role": "user", "content": "Please try again."}
  ],
  "tools": [
    {"type": "function", "function": {"name": "lookup_clause", "description": "Finds a clause by number", "strict": true,
      "parameters": {"type": "object", "properties": {"clause": {"type": "string"}}, "required": ["clause"],
                     "additionalProperties": false}}},
    {"type": "function", "function": {"name": "screenshot", "parameters": {"type": "object", "properties": {}}}}
  ],
  "tool_choice": {"type": "function", "function": {"name": "lookup_clause"}},
  "parallel_tool_calls": false,
  "response_format": {"type": "json_schema", "json_schema": {"name": "summary", "description": "A clause summary",
    "strict": true, "schema": {"type": "object", "properties": {"cap": {"type": "string"}}, "required": ["cap"]}}},
  "temperature": 0.25,
  "top_p": 0.5,
  "stop": ["END", "###"],
  "seed": 42,
  "presence_penalty": 0.125,
  "frequency_penalty": 0.375,
  "logprobs": true,
  "top_logprobs": 3,
  "user": "user-123",
  "reasoning_effort": "xhigh",
  "max_completion_tokens": 32768,
  "stream": true,
  "stream_options": {"include_usage": true}
})json";

// One delivered chunk, its views copied.
struct Seen {
  StreamChunk::Kind kind;
  int index;
  std::string text;
  std::string id;
  std::string name;
  bool operator==(const Seen&) const = default;
};

std::string kind_name(StreamChunk::Kind k) {
  switch (k) {
    case StreamChunk::Kind::kStart: return "start";
    case StreamChunk::Kind::kText: return "text";
    case StreamChunk::Kind::kThinking: return "thinking";
    case StreamChunk::Kind::kSignature: return "signature";
    case StreamChunk::Kind::kRefusal: return "refusal";
    case StreamChunk::Kind::kRedactedThinking: return "redacted_thinking";
    case StreamChunk::Kind::kOpaque: return "opaque";
    case StreamChunk::Kind::kToolCallStart: return "tool_call_start";
    case StreamChunk::Kind::kToolArguments: return "tool_arguments";
  }
  return "?";
}

}  // namespace

namespace doctest {
template <>
struct StringMaker<Seen> {
  static String convert(const Seen& s) {
    return ("{" + kind_name(s.kind) + " #" + std::to_string(s.index) + " '" + s.text + "' " + s.id + " " + s.name + "}")
        .c_str();
  }
};
}  // namespace doctest

namespace {

struct Decoded {
  Result<ModelResponse> response = Status::internal("not decoded");
  std::vector<Seen> chunks;
};

Decoded decode(const ModelSpec& spec, std::string_view stream) {
  auto decoder = make_openai_wire(spec, "")->stream_decoder();
  Decoded out;
  Status error;
  SseParser parser;
  parser.feed(stream, [&](const SseEvent& e) {
    error = decoder->on_event(e, [&](const StreamChunk& c) {
      CHECK_FALSE(c.restart);
      out.chunks.push_back({c.kind, c.index, std::string(c.text), std::string(c.id), std::string(c.name)});
    });
    return error.ok();
  });
  out.response = error.ok() ? decoder->finish() : Result<ModelResponse>(error);
  return out;
}

// A vLLM (Qwen3 with its reasoning parser) stream: reasoning, then text, then
// two tool calls whose arguments arrive in pieces; usage in the last chunk.
const std::string kVllmStream = R"sse(data: {"id":"chatcmpl-8f2c","object":"chat.completion.chunk","created":1763790300,"model":"qwen3-32b","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-8f2c","object":"chat.completion.chunk","created":1763790300,"model":"qwen3-32b","choices":[{"index":0,"delta":{"reasoning_content":"The user wants"},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-8f2c","object":"chat.completion.chunk","created":1763790300,"model":"qwen3-32b","choices":[{"index":0,"delta":{"reasoning_content":" weather and time."},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-8f2c","object":"chat.completion.chunk","created":1763790300,"model":"qwen3-32b","choices":[{"index":0,"delta":{"content":"Checking both."},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-8f2c","object":"chat.completion.chunk","created":1763790300,"model":"qwen3-32b","choices":[{"index":0,"delta":{"tool_calls":[{"id":"chatcmpl-tool-a1","type":"function","index":0,"function":{"name":"get_weather"}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-8f2c","object":"chat.completion.chunk","created":1763790300,"model":"qwen3-32b","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": "}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-8f2c","object":"chat.completion.chunk","created":1763790300,"model":"qwen3-32b","choices":[{"index":0,"delta":{"tool_calls":[{"id":"chatcmpl-tool-b2","type":"function","index":1,"function":{"name":"get_time","arguments":"{}"}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-8f2c","object":"chat.completion.chunk","created":1763790300,"model":"qwen3-32b","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-8f2c","object":"chat.completion.chunk","created":1763790300,"model":"qwen3-32b","choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"tool_calls","stop_reason":null}]}

data: {"id":"chatcmpl-8f2c","object":"chat.completion.chunk","created":1763790300,"model":"qwen3-32b","choices":[],"usage":{"prompt_tokens":210,"total_tokens":330,"completion_tokens":120,"prompt_tokens_details":null}}

data: [DONE]

)sse";

// An OpenAI refusal, streamed with logprobs.
const std::string kRefusalStream = R"sse(data: {"id":"chatcmpl-CR1","object":"chat.completion.chunk","created":1763790400,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_b1","choices":[{"index":0,"delta":{"role":"assistant","content":null,"refusal":""},"logprobs":{"content":null,"refusal":[]},"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-CR1","object":"chat.completion.chunk","created":1763790400,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_b1","choices":[{"index":0,"delta":{"refusal":"I'm sorry,"},"logprobs":{"content":null,"refusal":[{"token":"I'm","logprob":-0.0012,"bytes":[73,39,109],"top_logprobs":[]},{"token":" sorry,","logprob":-0.03,"bytes":[32,115,111,114,114,121,44],"top_logprobs":[]}]},"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-CR1","object":"chat.completion.chunk","created":1763790400,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_b1","choices":[{"index":0,"delta":{"refusal":" I can't help with that."},"logprobs":{"content":null,"refusal":[{"token":" I can't help with that.","logprob":-0.2,"bytes":[32],"top_logprobs":[]}]},"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-CR1","object":"chat.completion.chunk","created":1763790400,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_b1","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}

data: {"id":"chatcmpl-CR1","object":"chat.completion.chunk","created":1763790400,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_b1","choices":[],"usage":{"prompt_tokens":40,"completion_tokens":9,"total_tokens":49,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}

data: [DONE]

)sse";

// DeepSeek's reasoner: reasoning_content, then content; the stop reason and
// the usage share the last chunk.
const std::string kDeepSeekStream = R"sse(data: {"id":"5d1c","object":"chat.completion.chunk","created":1763790500,"model":"deepseek-reasoner","system_fingerprint":"fp_7e0","choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":""},"logprobs":null,"finish_reason":null}]}

data: {"id":"5d1c","object":"chat.completion.chunk","created":1763790500,"model":"deepseek-reasoner","system_fingerprint":"fp_7e0","choices":[{"index":0,"delta":{"content":null,"reasoning_content":"9.11 < 9.8"},"logprobs":null,"finish_reason":null}]}

data: {"id":"5d1c","object":"chat.completion.chunk","created":1763790500,"model":"deepseek-reasoner","system_fingerprint":"fp_7e0","choices":[{"index":0,"delta":{"content":"9.8 is larger.","reasoning_content":null},"logprobs":null,"finish_reason":null}]}

data: {"id":"5d1c","object":"chat.completion.chunk","created":1763790500,"model":"deepseek-reasoner","system_fingerprint":"fp_7e0","choices":[{"index":0,"delta":{"content":"","reasoning_content":null},"logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":15,"completion_tokens":80,"total_tokens":95,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":70},"prompt_cache_hit_tokens":0,"prompt_cache_miss_tokens":15}}

data: [DONE]

)sse";

}  // namespace

TEST_SUITE("openai_wire") {

// ---- requests --------------------------------------------------------------

TEST_CASE("openai request carries every field in its Chat Completions form") {
  Result<HttpRequest> r = build(openai_spec(), every_field_request(), /*stream=*/true);
  REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  CHECK(r->url == "https://api.openai.com/v1/chat/completions");
  const json body = json::parse(r->body);
  const json expected = json::parse(kEveryFieldBody);
  CHECK_MESSAGE(body == expected, json::diff(expected, body).dump());
}

TEST_CASE("a plain text request stays plain: string contents and nothing unasked") {
  ModelRequest r = ask("Summarise clause 14.");
  r.messages.insert(r.messages.begin(), Message::of_text("system", "You are terse."));
  const json expected = json::parse(R"json({"model": "gpt-5", "messages": [
      {"role": "system", "content": "You are terse."}, {"role": "user", "content": "Summarise clause 14."}]})json");
  CHECK(body_for(openai_spec(), r) == expected);
}

TEST_CASE("openai-compatible servers get max_tokens, top_k and any audio subtype") {
  ModelRequest r = ask("Transcribe and summarise.");
  r.messages[0].content.push_back(media(Type::kAudio, MediaSource::Kind::kBase64, "audio/flac", "ZkxhQw=="));
  r.sampling.top_k = 40;
  r.max_output_tokens = 300;
  const json body = body_for(compatible_spec(), r);
  CHECK(body["model"] == "qwen3-32b");
  CHECK(body["top_k"] == 40);
  CHECK(body["max_tokens"] == 300);
  CHECK_FALSE(body.contains("max_completion_tokens"));
  CHECK(body["messages"][0]["content"][1] ==
        json::parse(R"({"type": "input_audio", "input_audio": {"data": "ZkxhQw==", "format": "flac"}})"));
  Result<HttpRequest> http = build(compatible_spec(), r);
  REQUIRE(http.ok());
  CHECK(http->url == "http://127.0.0.1:8000/v1/chat/completions");
}

TEST_CASE("reasoning_effort follows budget, then effort, then the rules' level") {
  struct Case {
    const char* name;
    Reasoning level;
    std::optional<Effort> effort;
    std::optional<std::int64_t> budget;
    const char* expected;  // nullptr: not sent
  };
  const Case cases[] = {
      {"nothing asked", Reasoning::kDefault, std::nullopt, std::nullopt, nullptr},
      {"the rules' level", Reasoning::kMedium, std::nullopt, std::nullopt, "medium"},
      {"effort beats the level", Reasoning::kHigh, Effort::kMinimal, std::nullopt, "minimal"},
      {"effort none is sent as given", Reasoning::kDefault, Effort::kNone, std::nullopt, "none"},
      {"a budget beats the effort", Reasoning::kLow, Effort::kHigh, 1024, "low"},
      {"a budget up to medium", Reasoning::kDefault, std::nullopt, 4000, "medium"},
      {"a budget over medium", Reasoning::kDefault, std::nullopt, 4097, "high"},
      {"budget 0 turns thinking off", Reasoning::kHigh, Effort::kHigh, 0, "none"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    ModelRequest r = ask("Which is larger, 9.11 or 9.8?");
    r.reasoning = {c.level, c.effort, c.budget};
    const json body = body_for(openai_spec(), r);
    if (c.expected == nullptr) {
      CHECK_FALSE(body.contains("reasoning_effort"));
    } else {
      CHECK(body["reasoning_effort"] == c.expected);
    }
  }
}

TEST_CASE("a model that does not think drops the rules' level and refuses an explicit effort") {
  ModelRequest r = ask("Hi");
  r.reasoning.level = Reasoning::kHigh;
  CHECK_FALSE(body_for(compatible_spec(), r).contains("reasoning_effort"));
  r.reasoning.effort = Effort::kNone;  // asks for no thinking: nothing to refuse
  CHECK_FALSE(body_for(compatible_spec(), r).contains("reasoning_effort"));
  r.reasoning.effort = Effort::kLow;
  Result<HttpRequest> refused = build(compatible_spec(), r);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == Status::Code::kUpstream);
  CHECK(refused.status().message().starts_with("cannot take a reasoning setting"));

  ModelSpec thinking = compatible_spec();
  thinking.capabilities.thinking = true;
  CHECK(body_for(thinking, r)["reasoning_effort"] == "low");
}

TEST_CASE("tool_choice takes each mode and needs tools to force a call") {
  struct Case {
    ToolChoice choice;
    const char* expected;
  };
  const Case cases[] = {
      {{ToolChoice::Mode::kAuto, ""}, R"("auto")"},
      {{ToolChoice::Mode::kNone, ""}, R"("none")"},
      {{ToolChoice::Mode::kRequired, ""}, R"("required")"},
      {{ToolChoice::Mode::kNamed, "get_time"}, R"({"type": "function", "function": {"name": "get_time"}})"},
  };
  for (const Case& c : cases) {
    INFO(c.expected);
    ModelRequest r = ask("What time is it?");
    r.tools.push_back(tool("get_time", "", R"({"type":"object","properties":{}})"));
    r.tool_choice = c.choice;
    r.parallel_tool_calls = true;
    const json body = body_for(openai_spec(), r);
    CHECK(body["tool_choice"] == json::parse(c.expected));
    CHECK(body["parallel_tool_calls"] == true);
  }

  ModelRequest bare = ask("Hello");
  bare.tool_choice = ToolChoice{ToolChoice::Mode::kNone, ""};
  bare.parallel_tool_calls = false;
  const json body = body_for(openai_spec(), bare);
  CHECK_FALSE(body.contains("tool_choice"));  // the API rejects either without tools
  CHECK_FALSE(body.contains("parallel_tool_calls"));
  bare.tool_choice = ToolChoice{ToolChoice::Mode::kRequired, ""};
  Result<HttpRequest> r = build(openai_spec(), bare);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kInvalidArgument);
}

TEST_CASE("json_object adds the word JSON only when no message says it") {
  ModelRequest r = ask("List three colours.");
  r.output_format.type = OutputFormat::Type::kJsonObject;
  json body = body_for(openai_spec(), r);
  CHECK(body["response_format"] == json::parse(R"({"type": "json_object"})"));
  CHECK(body["messages"] == json::parse(R"([{"role": "system", "content": "Answer with a JSON object."},
                                            {"role": "user", "content": "List three colours."}])"));

  r.messages.insert(r.messages.begin(), Message::of_text("system", "You are terse."));
  body = body_for(openai_spec(), r);
  CHECK(body["messages"][0]["content"] == "You are terse.\n\nAnswer with a JSON object.");
  CHECK(body["messages"].size() == 2);

  r.messages.back() = Message::of_text("user", "List three colours as json.");
  body = body_for(openai_spec(), r);
  CHECK(body["messages"][0]["content"] == "You are terse.");
}

TEST_CASE("every message shape is written as its tree would be: names, refusals, calls, errors, escapes") {
  ModelRequest r;
  r.messages.push_back(Message::of_text("system", "Be \"exact\".\n\ttab \x01 \xc3\xa9"));
  r.messages.back().name = "ops";
  r.messages.push_back(Message::of_text("user", "Hi </script> \\ \u2028"));
  r.messages.back().name = "ann";
  Message assistant;
  assistant.role = "assistant";
  assistant.name = "bot";
  assistant.content.push_back(ContentBlock::of_text("Two "));
  assistant.content.push_back(ContentBlock::of_text("texts"));
  assistant.content.push_back(refusal("no"));
  assistant.content.push_back(refusal(" more"));
  assistant.content.push_back(ContentBlock::of_tool_call({"c1", "run", ""}));
  assistant.content.push_back(ContentBlock::of_tool_call({"c2", "ls", R"({"dir":"/"})"}));
  r.messages.push_back(assistant);
  Message results;
  results.role = "tool";
  results.content.push_back(ContentBlock::of_tool_result("c1", "run", "ok\r\n", false));
  results.content.push_back(ContentBlock::of_tool_result("c2", "ls", "", false));
  r.messages.push_back(results);
  Message empty;  // nothing to say: content "", not null
  empty.role = "assistant";
  r.messages.push_back(empty);
  r.messages.push_back(Message::of_text("user", "bad \xff byte"));
  // A user turn after tool results, as Anthropic's clients send it: the
  // results first, as tool messages, then the turn's texts.
  Message turn;
  turn.role = "user";
  turn.name = "ann";
  turn.content.push_back(ContentBlock::of_tool_result("c3", "cat", "x = \"1\"\n", false));
  turn.content.push_back(ContentBlock::of_text("Look at \"it\"\n"));
  turn.content.push_back(ContentBlock::of_text("and again"));
  r.messages.push_back(turn);
  Message one;
  one.role = "user";
  one.content.push_back(ContentBlock::of_tool_result("c4", "cat", "y", true));
  one.content.push_back(ContentBlock::of_text("one"));
  r.messages.push_back(one);
  Message only_results;  // no text of its own: no user message
  only_results.role = "user";
  only_results.content.push_back(ContentBlock::of_tool_result("c5", "cat", "z", false));
  r.messages.push_back(only_results);
  const json messages = body_for(openai_spec(), r)["messages"];
  const json expected = json::parse(R"json([
    {"role": "system", "name": "ops", "content": "Be \"exact\".\n\ttab \u0001 \u00e9"},
    {"role": "user", "name": "ann", "content": "Hi </script> \\ \u2028"},
    {"role": "assistant", "name": "bot", "refusal": "no more",
     "content": [{"type": "text", "text": "Two "}, {"type": "text", "text": "texts"}],
     "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "run", "arguments": "{}"}},
                    {"id": "c2", "type": "function", "function": {"name": "ls", "arguments": "{\"dir\":\"/\"}"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "ok\r\n"},
    {"role": "tool", "tool_call_id": "c2", "content": ""},
    {"role": "assistant", "content": ""},
    {"role": "user", "content": "bad \ufffd byte"},
    {"role": "tool", "tool_call_id": "c3", "content": "x = \"1\"\n"},
    {"role": "user", "name": "ann", "content": [{"type": "text", "text": "Look at \"it\"\n"},
                                              {"type": "text", "text": "and again"}]},
    {"role": "tool", "tool_call_id": "c4", "content": "Error: y"},
    {"role": "user", "content": "one"},
    {"role": "tool", "tool_call_id": "c5", "content": "z"}
  ])json");
  CHECK(messages == expected);

  // The JSON instruction on a first system message of parts, and first of all
  // before a conversation that opens with a tool result.
  ModelRequest parts;
  Message system;
  system.role = "system";
  system.name = "ops";
  system.content.push_back(ContentBlock::of_text("One."));
  system.content.push_back(ContentBlock::of_text("Two."));
  parts.messages.push_back(system);
  parts.messages.push_back(Message::of_text("user", "Go"));
  parts.output_format.type = OutputFormat::Type::kJsonObject;
  CHECK(body_for(openai_spec(), parts)["messages"][0] == json::parse(R"({"role": "system", "name": "ops", "content": [
      {"type": "text", "text": "One."}, {"type": "text", "text": "Two."},
      {"type": "text", "text": "Answer with a JSON object."}]})"));
  ModelRequest opens;
  opens.messages.push_back(results);
  opens.output_format.type = OutputFormat::Type::kJsonObject;
  const json opened = body_for(openai_spec(), opens)["messages"];
  REQUIRE(opened.size() == 3);
  CHECK(opened[0] == json::parse(R"({"role": "system", "content": "Answer with a JSON object."})"));
  CHECK(opened[1]["role"] == "tool");
  ModelRequest none;
  none.output_format.type = OutputFormat::Type::kJsonObject;
  CHECK(body_for(openai_spec(), none)["messages"] ==
        json::parse(R"([{"role": "system", "content": "Answer with a JSON object."}])"));
}

TEST_CASE("an unnamed json schema is named response and not strict unless asked") {
  ModelRequest r = ask("Rate it.");
  r.output_format.type = OutputFormat::Type::kJsonSchema;
  r.output_format.schema_json = R"({"type":"object"})";
  CHECK(body_for(openai_spec(), r)["response_format"] ==
        json::parse(R"({"type": "json_schema", "json_schema": {"name": "response", "schema": {"type": "object"},
                        "strict": false}})"));
  r.output_format.schema_json = "[1]";
  CHECK(build(openai_spec(), r).status().code() == Status::Code::kInvalidArgument);
}

TEST_CASE("top_logprobs implies logprobs") {
  ModelRequest r = ask("Yes or no?");
  r.sampling.top_logprobs = 5;
  const json body = body_for(openai_spec(), r);
  CHECK(body["logprobs"] == true);
  CHECK(body["top_logprobs"] == 5);
}

TEST_CASE("tool results in a user message become tool messages before its text") {
  ModelRequest r;
  r.messages.push_back(Message::of_text("user", "Weather in Paris?"));
  Message call;
  call.role = "assistant";
  call.content.push_back(ContentBlock::of_tool_call({"toolu_01", "get_weather", R"({"city":"Paris"})"}));
  r.messages.push_back(call);
  Message answer;  // Anthropic's shape: results and text in one user message
  answer.role = "user";
  ContentBlock chart = ContentBlock::of_tool_result("toolu_01", "get_weather", "", false);
  chart.content.clear();
  chart.content.push_back(media(Type::kImage, MediaSource::Kind::kUrl, "", "https://example.com/chart.png"));
  answer.content.push_back(chart);
  answer.content.push_back(ContentBlock::of_text("And tomorrow?"));
  r.messages.push_back(answer);
  const json expected = json::parse(R"json([
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": null, "tool_calls": [
      {"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
    {"role": "tool", "tool_call_id": "toolu_01", "content": "(attachments follow in the next user message)"},
    {"role": "user", "content": [
      {"type": "text", "text": "Attachments of tool call toolu_01:"},
      {"type": "image_url", "image_url": {"url": "https://example.com/chart.png"}},
      {"type": "text", "text": "And tomorrow?"}]}
  ])json");
  CHECK(body_for(openai_spec(), r)["messages"] == expected);
}

TEST_CASE("a tool result with several text blocks is sent as text parts, the error on the first") {
  ModelRequest r = ask("Go");
  Message results;
  results.role = "tool";
  ContentBlock result = ContentBlock::of_tool_result("call_9", "run", "exit 2", true);
  result.content.push_back(ContentBlock::of_text("stderr: no such file"));
  results.content.push_back(result);
  results.content.push_back(ContentBlock::of_tool_result("call_10", "run", "", true));
  r.messages.push_back(results);
  const json messages = body_for(openai_spec(), r)["messages"];
  REQUIRE(messages.size() == 3);
  CHECK(messages[1] == json::parse(R"({"role": "tool", "tool_call_id": "call_9", "content": [
      {"type": "text", "text": "Error: exit 2"}, {"type": "text", "text": "stderr: no such file"}]})"));
  CHECK(messages[2] == json::parse(R"({"role": "tool", "tool_call_id": "call_10", "content": "Error"})"));
}

TEST_CASE("reasoning from any provider is dropped, the rest of the turn is kept") {
  ModelRequest r = ask("Continue.");
  Message assistant;
  assistant.role = "assistant";
  assistant.content.push_back(thinking("Plan the answer.", "", "openai-compatible"));
  ContentBlock redacted;
  redacted.type = Type::kRedactedThinking;
  redacted.signature = "EmwKAhgBEgy3va3pzix";
  redacted.origin = "anthropic";
  assistant.content.push_back(redacted);
  ContentBlock opaque;
  opaque.type = Type::kOpaque;
  opaque.opaque_json = R"({"type":"reasoning","id":"rs_1","summary":[]})";
  opaque.origin = "openai";
  assistant.content.push_back(opaque);
  ContentBlock said = ContentBlock::of_text("First part.");
  said.signature = "CiQB0e2Kb";
  said.origin = "gemini";
  assistant.content.push_back(said);
  assistant.content.push_back(ContentBlock::of_text(" Second part."));
  r.messages.push_back(assistant);
  CHECK(body_for(openai_spec(), r)["messages"][1] ==
        json::parse(R"({"role": "assistant", "content": [{"type": "text", "text": "First part."},
                                                         {"type": "text", "text": " Second part."}]})"));

  // An assistant turn that was only reasoning still holds its place.
  r.messages[1].content.resize(3);
  CHECK(body_for(openai_spec(), r)["messages"][1] == json::parse(R"({"role": "assistant", "content": ""})"));
}

TEST_CASE("file ids, opaque tools and documents go only where they can") {
  ContentBlock own = media(Type::kDocument, MediaSource::Kind::kFileId, "application/pdf", "file-6F2k");
  own.origin = "openai";
  ModelRequest r = ask("Read this.");
  r.messages[0].content.push_back(own);
  CHECK(body_for(openai_spec(), r)["messages"][0]["content"][1] ==
        json::parse(R"({"type": "file", "file": {"file_id": "file-6F2k"}})"));

  ContentBlock text_doc = media(Type::kDocument, MediaSource::Kind::kBase64, "text/plain", "aGVsbG8=");
  r = ask("Read this.");
  r.messages[0].content.push_back(text_doc);
  CHECK(body_for(openai_spec(), r)["messages"][0]["content"][1]["file"] ==
        json::parse(R"({"filename": "document.txt", "file_data": "data:text/plain;base64,aGVsbG8="})"));

  ToolSpec search;
  search.name = "web_search";
  search.opaque_json = R"({"type":"web_search_preview"})";
  search.origin = "openai";
  r = ask("News?");
  r.tools.push_back(search);
  CHECK(body_for(openai_spec(), r)["tools"] == json::parse(R"([{"type": "web_search_preview"}])"));
}

TEST_CASE("what Chat Completions cannot express is refused with the reason") {
  struct Case {
    const char* name;
    ModelSpec spec;
    ModelRequest request;
    Status::Code code;
    const char* message;  // the start of it
  };
  auto with = [](ContentBlock b, const char* role = "user") {
    ModelRequest r = ask("Look.");
    r.messages[0].role = role;
    r.messages[0].content.push_back(std::move(b));
    return r;
  };
  ContentBlock foreign_file = media(Type::kDocument, MediaSource::Kind::kFileId, "application/pdf", "file_abc");
  foreign_file.origin = "anthropic";
  ModelRequest top_k = ask("Pick one.");
  top_k.sampling.top_k = 5;
  ToolSpec anthropic_tool;
  anthropic_tool.name = "web_search";
  anthropic_tool.opaque_json = R"({"type":"web_search_20250305","name":"web_search"})";
  anthropic_tool.origin = "anthropic";
  ModelRequest foreign_tool = ask("News?");
  foreign_tool.tools.push_back(anthropic_tool);
  ModelRequest tool_text;
  tool_text.messages.push_back(Message::of_text("tool", "14:05"));
  ModelRequest bad_role;
  bad_role.messages.push_back(Message::of_text("developer", "Be brief."));

  const Case cases[] = {
      {"top_k on openai", openai_spec(), top_k, Status::Code::kUpstream, "cannot take top_k"},
      {"an image by file id", openai_spec(), with(media(Type::kImage, MediaSource::Kind::kFileId, "", "file-1")),
       Status::Code::kUpstream, "cannot take an image by file id"},
      {"a document by URL", openai_spec(),
       with(media(Type::kDocument, MediaSource::Kind::kUrl, "", "https://example.com/a.pdf")),
       Status::Code::kUpstream, "cannot take a document by URL"},
      {"another provider's file id", openai_spec(), with(foreign_file), Status::Code::kUpstream,
       "cannot take a file id made by 'anthropic'"},
      {"flac audio on openai", openai_spec(),
       with(media(Type::kAudio, MediaSource::Kind::kBase64, "audio/flac", "Zg==")),
       Status::Code::kUpstream, "cannot take audio of type 'audio/flac'"},
      {"audio by URL", openai_spec(),
       with(media(Type::kAudio, MediaSource::Kind::kUrl, "", "https://example.com/a.wav")),
       Status::Code::kUpstream, "cannot take audio by URL"},
      {"an image in a system message", openai_spec(),
       with(media(Type::kImage, MediaSource::Kind::kUrl, "", "https://example.com/a.png"), "system"),
       Status::Code::kUpstream, "cannot take an image in a system message"},
      {"an image in an assistant message", openai_spec(),
       with(media(Type::kImage, MediaSource::Kind::kUrl, "", "https://example.com/a.png"), "assistant"),
       Status::Code::kUpstream, "cannot take an image in an assistant message"},
      {"another provider's own tool", openai_spec(), foreign_tool, Status::Code::kUpstream,
       "cannot take anthropic's own tool 'web_search'"},
      {"a base64 image without a media type", openai_spec(),
       with(media(Type::kImage, MediaSource::Kind::kBase64, "", "iVBORw0KGgo=")), Status::Code::kInvalidArgument,
       "message 1: a base64 image has no media type"},
      {"text in a tool message", openai_spec(), tool_text, Status::Code::kInvalidArgument,
       "message 1: a tool message holds tool results only"},
      {"a tool use in a user message", openai_spec(), with(ContentBlock::of_tool_call({"c", "f", "{}"})),
       Status::Code::kInvalidArgument, "message 1: a user message cannot hold a tool use"},
      {"an unknown role", openai_spec(), bad_role, Status::Code::kInvalidArgument,
       "message 1: unknown role 'developer'"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    Result<HttpRequest> r = build(c.spec, c.request);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == c.code);
    CHECK_MESSAGE(r.status().message().starts_with(c.message), r.status().message());
  }
}

// ---- whole answers ---------------------------------------------------------

TEST_CASE("an answer's text, tool calls, refusal and reasoning become blocks") {
  struct Case {
    const char* name;
    ModelSpec spec;
    const char* body;
    std::vector<ContentBlock> blocks;  // type, text and tool call compared; origin checked apart
    StopReason stop;
    std::string raw_stop;
    std::string stop_sequence;
  };
  auto text = [](Type type, std::string t) {
    ContentBlock b;
    b.type = type;
    b.text = std::move(t);
    return b;
  };
  const Case cases[] = {
      {"tool calls beside text", openai_spec(), R"json({
  "id": "chatcmpl-CF1", "object": "chat.completion", "created": 1763790100, "model": "gpt-5-2025-08-07",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": "Checking both.", "refusal": null, "annotations": [],
     "tool_calls": [{"id": "call_Qx1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_Rt2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
     "logprobs": null, "finish_reason": "tool_calls"}],
  "usage": {"prompt_tokens": 90, "completion_tokens": 18, "total_tokens": 108}})json",
       {text(Type::kText, "Checking both."),
        ContentBlock::of_tool_call({"call_Qx1", "get_weather", R"({"city":"Paris"})"}),
        ContentBlock::of_tool_call({"call_Rt2", "get_time", "{}"})},
       StopReason::kToolUse, "tool_calls", ""},
      {"a refusal", openai_spec(), R"json({
  "id": "chatcmpl-CR2", "object": "chat.completion", "created": 1763790200, "model": "gpt-4o-2024-08-06",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": null,
     "refusal": "I'm sorry, I can't help with that.", "annotations": []}, "logprobs": null, "finish_reason": "stop"}],
  "usage": {"prompt_tokens": 40, "completion_tokens": 9, "total_tokens": 49}})json",
       {text(Type::kRefusal, "I'm sorry, I can't help with that.")}, StopReason::kRefusal, "stop", ""},
      {"vLLM reasoning and a matched stop string", compatible_spec(), R"json({
  "id": "chatcmpl-9a1", "object": "chat.completion", "created": 1763790300, "model": "qwen3-32b",
  "choices": [{"index": 0, "message": {"role": "assistant", "reasoning_content": "Count the items.", "content": "Three items",
     "tool_calls": []}, "logprobs": null, "finish_reason": "stop", "stop_reason": "END"}],
  "usage": {"prompt_tokens": 30, "total_tokens": 50, "completion_tokens": 20, "prompt_tokens_details": null}})json",
       {text(Type::kThinking, "Count the items."), text(Type::kText, "Three items")}, StopReason::kStopSequence, "stop",
       "END"},
      {"reasoning under its newer name", compatible_spec(), R"json({
  "id": "gen-1", "object": "chat.completion", "model": "gpt-oss-120b",
  "choices": [{"index": 0, "message": {"role": "assistant", "reasoning": "Short question.", "content": "Yes."},
     "finish_reason": "stop", "stop_reason": null}],
  "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})json",
       {text(Type::kThinking, "Short question."), text(Type::kText, "Yes.")}, StopReason::kEndTurn, "stop", ""},
      {"a server that says stop beside tool calls", compatible_spec(), R"json({
  "id": "chatcmpl-o1", "object": "chat.completion", "model": "llama3.1",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": "",
     "tool_calls": [{"id": "call_x", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
     "finish_reason": "stop"}],
  "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})json",
       {ContentBlock::of_tool_call({"call_x", "get_time", "{}"})}, StopReason::kToolUse, "stop", ""},
      {"the legacy function_call finish", openai_spec(), R"json({
  "id": "c", "object": "chat.completion", "model": "gpt-3.5-turbo-0613",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": "Done."}, "finish_reason": "function_call"}],
  "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})json",
       {text(Type::kText, "Done.")}, StopReason::kToolUse, "function_call", ""},
      {"cut at the cap", openai_spec(), R"json({
  "id": "c", "object": "chat.completion", "model": "gpt-5",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": "The first"}, "finish_reason": "length"}],
  "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})json",
       {text(Type::kText, "The first")}, StopReason::kMaxTokens, "length", ""},
      {"filtered", openai_spec(), R"json({
  "id": "c", "object": "chat.completion", "model": "gpt-5",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": null}, "finish_reason": "content_filter"}],
  "usage": {"prompt_tokens": 1, "completion_tokens": 0, "total_tokens": 1}})json",
       {}, StopReason::kContentFilter, "content_filter", ""},
      {"a finish reason of its own", compatible_spec(), R"json({
  "id": "c", "object": "chat.completion", "model": "m",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": "abort"}],
  "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})json",
       {text(Type::kText, "x")}, StopReason::kOther, "abort", ""},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    Result<ModelResponse> r = make_openai_wire(c.spec, "")->parse_response(c.body);
    REQUIRE_MESSAGE(r.ok(), r.status().to_string());
    REQUIRE(r->content.size() == c.blocks.size());
    for (std::size_t i = 0; i < c.blocks.size(); ++i) {
      CHECK(r->content[i].type == c.blocks[i].type);
      CHECK(r->content[i].text == c.blocks[i].text);
      CHECK(r->content[i].tool_call.id == c.blocks[i].tool_call.id);
      CHECK(r->content[i].tool_call.name == c.blocks[i].tool_call.name);
      CHECK(r->content[i].tool_call.arguments_json == c.blocks[i].tool_call.arguments_json);
      CHECK(r->content[i].origin == c.spec.provider);
    }
    CHECK(r->stop_reason == c.stop);
    CHECK(r->raw_stop_reason == c.raw_stop);
    CHECK(r->stop_sequence == c.stop_sequence);
    CHECK(r->logprobs_json.empty());
  }
}

TEST_CASE("an answer's logprobs and usage are kept") {
  const char* body = R"json({
  "id": "chatcmpl-L1", "object": "chat.completion", "created": 1763790600, "model": "gpt-4.1-2025-04-14",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": "Yes", "refusal": null, "annotations": []},
    "logprobs": {"content": [{"token": "Yes", "logprob": -0.0001, "bytes": [89, 101, 115],
                              "top_logprobs": [{"token": "Yes", "logprob": -0.0001, "bytes": [89, 101, 115]},
                                               {"token": "No", "logprob": -9.5, "bytes": [78, 111]}]}],
                 "refusal": null},
    "finish_reason": "stop"}],
  "usage": {"prompt_tokens": 800, "completion_tokens": 1, "total_tokens": 801,
            "prompt_tokens_details": {"cached_tokens": 512, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}}})json";
  Result<ModelResponse> r = make_openai_wire(openai_spec(), "")->parse_response(body);
  REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  CHECK(r->text() == "Yes");
  CHECK(r->model == "gpt-4.1-2025-04-14");
  CHECK(r->usage == usage_of(288, 512, 0, 0, 1, 0));
  CHECK(json::parse(r->logprobs_json) == json::parse(body)["choices"][0]["logprobs"]);
}

TEST_CASE("an unreadable tool call is an upstream error") {
  Result<ModelResponse> r = make_openai_wire(openai_spec(), "")->parse_response(R"json({
    "choices": [{"message": {"content": null, "tool_calls": [{"id": "call_1", "type": "function"}]},
                 "finish_reason": "tool_calls"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})json");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kUpstream);
  CHECK(r.status().message() == "a tool call has no 'function' object");
}

// ---- streams ---------------------------------------------------------------

TEST_CASE("a vLLM stream delivers thinking, text and tool calls at fixed block indices") {
  Decoded d = decode(compatible_spec(), kVllmStream);
  REQUIRE_MESSAGE(d.response.ok(), d.response.status().to_string());
  using K = StreamChunk::Kind;
  const std::vector<Seen> expected = {
      {K::kThinking, 0, "The user wants", "", ""},
      {K::kThinking, 0, " weather and time.", "", ""},
      {K::kText, 1, "Checking both.", "", ""},
      {K::kToolCallStart, 2, "", "chatcmpl-tool-a1", "get_weather"},
      {K::kToolArguments, 2, "{\"city\": ", "", ""},
      {K::kToolCallStart, 3, "", "chatcmpl-tool-b2", "get_time"},
      {K::kToolArguments, 3, "{}", "", ""},
      {K::kToolArguments, 2, "\"Paris\"}", "", ""},
  };
  CHECK(d.chunks == expected);

  const ModelResponse& r = *d.response;
  REQUIRE(r.content.size() == 4);
  CHECK(r.content[0].type == Type::kThinking);
  CHECK(r.content[0].text == "The user wants weather and time.");
  CHECK(r.content[0].origin == "openai-compatible");
  CHECK(r.content[1].type == Type::kText);
  CHECK(r.content[1].text == "Checking both.");
  CHECK(r.content[2].type == Type::kToolUse);
  CHECK(r.content[2].tool_call.arguments_json == R"({"city": "Paris"})");
  CHECK(r.content[3].tool_call.name == "get_time");
  CHECK(r.tool_calls().size() == 2);
  CHECK(r.stop_reason == StopReason::kToolUse);
  CHECK(r.raw_stop_reason == "tool_calls");
  CHECK(r.usage == usage_of(210, 0, 0, 0, 120, 0));
  CHECK(r.model == "qwen3-32b");
}

TEST_CASE("a streamed refusal arrives as refusal pieces of the refusal block, with its logprobs") {
  Decoded d = decode(openai_spec(), kRefusalStream);
  REQUIRE_MESSAGE(d.response.ok(), d.response.status().to_string());
  const std::vector<Seen> expected = {
      {StreamChunk::Kind::kRefusal, 0, "I'm sorry,", "", ""},
      {StreamChunk::Kind::kRefusal, 0, " I can't help with that.", "", ""},
  };
  CHECK(d.chunks == expected);
  const ModelResponse& r = *d.response;
  REQUIRE(r.content.size() == 1);
  CHECK(r.content[0].type == Type::kRefusal);
  CHECK(r.content[0].text == "I'm sorry, I can't help with that.");
  CHECK(r.content[0].origin == "openai");
  CHECK(r.text().empty());
  CHECK(r.stop_reason == StopReason::kRefusal);
  CHECK(r.raw_stop_reason == "stop");
  const json logprobs = json::parse(r.logprobs_json);
  REQUIRE(logprobs["refusal"].size() == 3);
  CHECK(logprobs["refusal"][0]["token"] == "I'm");
  CHECK(logprobs["refusal"][2]["token"] == " I can't help with that.");
  REQUIRE(logprobs.contains("content"));
  CHECK(logprobs["content"].is_null());  // as OpenAI says it for a refusal
  CHECK(r.usage == usage_of(40, 0, 0, 0, 9, 0));
}

TEST_CASE("a DeepSeek stream keeps reasoning apart from the answer and reads usage beside the finish") {
  Decoded d = decode(compatible_spec(), kDeepSeekStream);
  REQUIRE_MESSAGE(d.response.ok(), d.response.status().to_string());
  const std::vector<Seen> expected = {
      {StreamChunk::Kind::kThinking, 0, "9.11 < 9.8", "", ""},
      {StreamChunk::Kind::kText, 1, "9.8 is larger.", "", ""},
  };
  CHECK(d.chunks == expected);
  CHECK(d.response->text() == "9.8 is larger.");
  CHECK(d.response->stop_reason == StopReason::kMaxTokens);
  CHECK(d.response->usage == usage_of(15, 0, 0, 0, 10, 70));
  CHECK(d.response->logprobs_json.empty());
}

TEST_CASE("tool calls streamed without an index are told apart by id") {
  // Some servers send each call whole, without `index`.
  const std::string stream = R"sse(data: {"id":"c1","object":"chat.completion.chunk","model":"llama3.1","choices":[{"index":0,"delta":{"role":"assistant","content":"","tool_calls":[{"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}]},"finish_reason":null}]}

data: {"id":"c1","object":"chat.completion.chunk","model":"llama3.1","choices":[{"index":0,"delta":{"role":"assistant","content":"","tool_calls":[{"id":"call_b","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}}]},"finish_reason":null}]}

data: {"id":"c1","object":"chat.completion.chunk","model":"llama3.1","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"tool_calls"}]}

data: {"id":"c1","object":"chat.completion.chunk","model":"llama3.1","choices":[],"usage":{"prompt_tokens":50,"completion_tokens":20,"total_tokens":70}}

data: [DONE]

)sse";
  Decoded d = decode(compatible_spec(), stream);
  REQUIRE_MESSAGE(d.response.ok(), d.response.status().to_string());
  const std::vector<ToolCall> calls = d.response->tool_calls();
  REQUIRE(calls.size() == 2);
  CHECK(calls[0].id == "call_a");
  CHECK(calls[0].arguments_json == R"({"city":"Oslo"})");
  CHECK(calls[1].id == "call_b");
  CHECK(calls[1].arguments_json == R"({"city":"Rome"})");
  REQUIRE(d.chunks.size() == 4);
  CHECK(d.chunks[2] == Seen{StreamChunk::Kind::kToolCallStart, 1, "", "call_b", "get_weather"});
}

TEST_CASE("a stream error event and a stream without its end are errors") {
  Decoded error = decode(openai_spec(), R"sse(data: {"error":{"message":"The server had an error while processing your request.","type":"server_error"}}

)sse");
  REQUIRE_FALSE(error.response.ok());
  CHECK(error.response.status().code() == Status::Code::kUnavailable);

  Decoded cut = decode(openai_spec(), kRefusalStream.substr(0, kRefusalStream.find("data: [DONE]")));
  REQUIRE_FALSE(cut.response.ok());
  CHECK(cut.response.status().code() == Status::Code::kUnavailable);
}

// ---- the DOM and the tree ---------------------------------------------------

namespace {

// `text` with its first `from` replaced by `to`.
std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const std::size_t at = text.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, from);
  return text.replace(at, from.size(), to);
}

// Every field a reader fills, compared.
void check_same(const ModelResponse& a, const ModelResponse& b) {
  CHECK(a.model == b.model);
  REQUIRE(a.content.size() == b.content.size());
  for (std::size_t i = 0; i < a.content.size(); ++i) {
    CHECK(a.content[i].type == b.content[i].type);
    CHECK(a.content[i].text == b.content[i].text);
    CHECK(a.content[i].origin == b.content[i].origin);
    CHECK(a.content[i].tool_call.id == b.content[i].tool_call.id);
    CHECK(a.content[i].tool_call.name == b.content[i].tool_call.name);
    CHECK(a.content[i].tool_call.arguments_json == b.content[i].tool_call.arguments_json);
  }
  CHECK(a.stop_reason == b.stop_reason);
  CHECK(a.raw_stop_reason == b.raw_stop_reason);
  CHECK(a.stop_sequence == b.stop_sequence);
  CHECK(a.usage == b.usage);
  CHECK(a.logprobs_json == b.logprobs_json);
}

// An integer past 64 bits: simdjson refuses the text it is in, so the
// reader falls back to nlohmann's tree.
const std::string kBigInteger = "123456789012345678901234567890";

}  // namespace

TEST_CASE("an answer simdjson refuses is read from its tree into the same response") {
  const std::string body = R"json({
  "id": "chatcmpl-D1", "object": "chat.completion", "created": 1763790100, "model": "gpt-5-first",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": "Checking \u00e9 \"both\".", "refusal": null,
     "reasoning_content": "Think.",
     "tool_calls": [{"id": "call_Qx1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "n": [1, -2, 3.5]}}},
                    {"id": "call_Rt2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
     "logprobs": {"content": [{"token": "Yes", "logprob": -0.0001, "bytes": [89, 101, 115], "top_logprobs": []}], "refusal": null},
     "finish_reason": "tool_calls"}],
  "model": "gpt-5-2025-08-07",
  "usage": {"prompt_tokens": 90, "completion_tokens": 18, "total_tokens": 108,
            "prompt_tokens_details": {"cached_tokens": 64}, "completion_tokens_details": {"reasoning_tokens": 5}}})json";
  const std::string refused = replaced(body, "1763790100", kBigInteger);
  REQUIRE(JsonDom::parse(body).has_value());
  REQUIRE_FALSE(JsonDom::parse(refused).has_value());

  const auto wire = make_openai_wire(openai_spec(), "");
  Result<ModelResponse> in_place = wire->parse_response(body);
  Result<ModelResponse> from_tree = wire->parse_response(refused);
  REQUIRE_MESSAGE(in_place.ok(), in_place.status().to_string());
  REQUIRE_MESSAGE(from_tree.ok(), from_tree.status().to_string());
  check_same(*in_place, *from_tree);
  // The last of two "model" keys, as nlohmann keeps it.
  CHECK(in_place->model == "gpt-5-2025-08-07");
  CHECK(in_place->content.at(2).tool_call.arguments_json == R"({"city":"Paris","n":[1,-2,3.5]})");
  CHECK(in_place->usage == usage_of(26, 64, 0, 0, 13, 5));

  // Their failures read alike too.
  for (const std::string& bad : {std::string(R"json({"choices": [], "usage": {}})json"),
                                 std::string(R"json({"choices": [7], "usage": {}})json"),
                                 std::string(R"json({"choices": [{"message": {"content": "x"}}],
                                   "usage": {"prompt_tokens": 1, "completion_tokens": -1}})json"),
                                 std::string(R"json({"choices": [{"message": {"content": "x"}}],
                                   "usage": {"prompt_tokens": 1, "completion_tokens": 2,
                                             "prompt_tokens_details": {"cached_tokens": 3}}})json")}) {
    const std::string bad_refused = replaced(bad, "{", "{\"created\": " + kBigInteger + ", ");
    Result<ModelResponse> a = wire->parse_response(bad);
    Result<ModelResponse> b = wire->parse_response(bad_refused);
    REQUIRE_FALSE(a.ok());
    REQUIRE_FALSE(b.ok());
    CHECK(a.status().code() == b.status().code());
    CHECK(a.status().message() == b.status().message());
  }
}

TEST_CASE("stream events simdjson refuses are read from their trees into the same chunks") {
  std::string refused = kVllmStream;
  const std::string created = "\"created\":1763790300";
  for (std::size_t at; (at = refused.find(created)) != std::string::npos;) {
    refused.replace(at, created.size(), "\"created\":" + kBigInteger);
  }
  Decoded in_place = decode(compatible_spec(), kVllmStream);
  Decoded from_tree = decode(compatible_spec(), refused);
  REQUIRE_MESSAGE(in_place.response.ok(), in_place.response.status().to_string());
  REQUIRE_MESSAGE(from_tree.response.ok(), from_tree.response.status().to_string());
  CHECK(in_place.chunks == from_tree.chunks);
  check_same(*in_place.response, *from_tree.response);
}

TEST_CASE("a stream choice that is not an object, or whose index is not a whole number, is an upstream error") {
  for (const char* event : {R"sse(data: {"choices":[7]}

)sse",
                            R"sse(data: {"choices":[{"index":"0","delta":{"content":"x"}}]}

)sse",
                            R"sse(data: {"choices":[{"index":null,"delta":{"content":"x"}}]}

)sse"}) {
    Decoded d = decode(openai_spec(), event);
    REQUIRE_FALSE(d.response.ok());
    CHECK(d.response.status().code() == Status::Code::kUpstream);
    CHECK(d.response.status().message().rfind("stream event: a choice", 0) == 0);
  }
}

}  // TEST_SUITE("openai_wire")
