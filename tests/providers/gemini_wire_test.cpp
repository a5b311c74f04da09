// The Gemini wire format (gemini_wire.cpp) against golden bodies: the
// generateContent request built for every field of a ModelRequest, answers
// and SSE streams of the shapes the API sends (thought parts, thought
// signatures, function calls, blocked prompts, logprobs), and the requests
// it must refuse so the dispatcher falls back.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "providers/sse.h"
#include "providers/wire_format.h"
#include "test_util.h"

using namespace switchboard;
using nlohmann::json;
using switchboard::testing::usage_of;
using Type = ContentBlock::Type;

namespace {

const std::string kKey = "gm-test-SECRET-51c2e";
constexpr const char* kEndpoint = "https://generativelanguage.googleapis.com/v1beta";

ModelSpec gemini_spec(const std::string& model_id = "gemini-3-pro-preview") {
  ModelSpec m;
  m.name = m.model_id = model_id;
  m.provider = "gemini";
  m.endpoint = kEndpoint;
  m.max_output_tokens = 65536;  // budgets stay at their defaults: 1024 / 4096 / 16384
  return m;
}

std::unique_ptr<WireFormat> wire(const std::string& model_id = "gemini-3-pro-preview") {
  return make_gemini_wire(gemini_spec(model_id), kKey);
}

json body_of(const ModelRequest& request, const std::string& model_id = "gemini-3-pro-preview") {
  Result<HttpRequest> r = wire(model_id)->build_request(request, false);
  REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  return json::parse(r->body);
}

Status refusal_of(const ModelRequest& request, const std::string& model_id = "gemini-3-pro-preview") {
  Result<HttpRequest> r = wire(model_id)->build_request(request, false);
  REQUIRE_FALSE(r.ok());
  return r.status();
}

ContentBlock text(std::string t, std::string signature = "", std::string origin = "") {
  ContentBlock b = ContentBlock::of_text(std::move(t));
  b.signature = std::move(signature);
  b.origin = std::move(origin);
  return b;
}

ContentBlock media(Type type, MediaSource::Kind kind, std::string media_type, std::string data) {
  ContentBlock b;
  b.type = type;
  b.source = {kind, std::move(media_type), std::move(data)};
  return b;
}

ContentBlock thinking(std::string t, std::string signature, std::string origin) {
  ContentBlock b;
  b.type = Type::kThinking;
  b.text = std::move(t);
  b.signature = std::move(signature);
  b.origin = std::move(origin);
  return b;
}

ContentBlock call(std::string id, std::string name, std::string args, std::string signature = "",
                  std::string origin = "") {
  ContentBlock b = ContentBlock::of_tool_call({std::move(id), std::move(name), std::move(args)});
  b.signature = std::move(signature);
  b.origin = std::move(origin);
  return b;
}

ToolSpec tool(std::string name, std::string description, std::string parameters_json) {
  ToolSpec t;
  t.name = std::move(name);
  t.description = std::move(description);
  t.parameters_json = std::move(parameters_json);
  return t;
}


ModelRequest hello() {
  ModelRequest r;
  r.messages = {Message::of_text("user", "Hello")};
  return r;
}

ModelRequest with_tool(const std::string& parameters_json) {
  ModelRequest r = hello();
  r.tools.push_back(tool("lookup", "Looks a thing up", parameters_json));
  return r;
}

// ---- streams ----------------------------------------------------------------

// Gemini ends its SSE lines with CRLF.
std::string crlf(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

std::string kind_name(StreamChunk::Kind k) {
  switch (k) {
    case StreamChunk::Kind::kStart: return "start";
    case StreamChunk::Kind::kText: return "text";
    case StreamChunk::Kind::kThinking: return "thinking";
    case StreamChunk::Kind::kSignature: return "signature";
    case StreamChunk::Kind::kRefusal: return "refusal";
    case StreamChunk::Kind::kRedactedThinking: return "redacted";
    case StreamChunk::Kind::kOpaque: return "opaque";
    case StreamChunk::Kind::kToolCallStart: return "call";
    case StreamChunk::Kind::kToolArguments: return "args";
  }
  return "?";
}

struct Decoded {
  Result<ModelResponse> response = Status::internal("not decoded");
  std::string chunks;  // one line per chunk: "<kind> <index> <text>" ("call <index> <id>|<name>")
};

Decoded decode(std::string_view stream, const std::string& model_id = "gemini-3-pro-preview") {
  auto decoder = wire(model_id)->stream_decoder();
  Decoded out;
  Status error;
  const ChunkHandler on_chunk = [&](const StreamChunk& c) {
    CHECK_FALSE(c.restart);
    out.chunks += kind_name(c.kind) + " " + std::to_string(c.index) + " ";
    if (c.kind == StreamChunk::Kind::kToolCallStart) {
      out.chunks += std::string(c.id) + "|" + std::string(c.name);
    } else {
      out.chunks += std::string(c.text);
    }
    out.chunks += "\n";
  };
  SseParser parser;
  parser.feed(stream, [&](const SseEvent& e) {
    error = decoder->on_event(e, on_chunk);
    return error.ok();
  });
  out.response = error.ok() ? decoder->finish() : Result<ModelResponse>(error);
  return out;
}

}  // namespace

TEST_SUITE("gemini_wire") {

TEST_CASE("the request goes to generateContent or its SSE stream with the key in a header") {
  auto w = wire();
  Result<HttpRequest> plain = w->build_request(hello(), false);
  Result<HttpRequest> streamed = w->build_request(hello(), true);
  REQUIRE(plain.ok());
  REQUIRE(streamed.ok());
  CHECK(plain->url == std::string(kEndpoint) + "/models/gemini-3-pro-preview:generateContent");
  CHECK(streamed->url == std::string(kEndpoint) + "/models/gemini-3-pro-preview:streamGenerateContent?alt=sse");
  CHECK(plain->url.find(kKey) == std::string::npos);
  CHECK(plain->body.find(kKey) == std::string::npos);
  bool key_header = false;
  for (const auto& [name, value] : plain->headers) key_header = key_header || (name == "x-goog-api-key" && value == kKey);
  CHECK(key_header);
  CHECK(json::parse(plain->body) == json::parse(R"({"contents":[{"role":"user","parts":[{"text":"Hello"}]}]})"));
}

TEST_CASE("every message block reaches Gemini as its part") {
  ModelRequest r;
  ContentBlock cached_system = text("Answer in French.");
  cached_system.cache = CacheBreakpoint{"1h"};  // Gemini caches implicitly: dropped
  r.messages.push_back(Message::of("system", {text("You are terse.")}));
  r.messages.push_back(Message::of("system", {cached_system}));

  ContentBlock photo = media(Type::kImage, MediaSource::Kind::kBase64, "image/png", "iVBORw0KGgo=");
  photo.detail = "low";
  ContentBlock contract = media(Type::kDocument, MediaSource::Kind::kUrl, "application/pdf",
                                "https://example.com/contract.pdf");
  contract.title = "Contract v2";
  ContentBlock uploaded = media(Type::kAudio, MediaSource::Kind::kFileId, "audio/mp3", "files/abc123");
  uploaded.origin = "gemini";
  r.messages.push_back(Message::of("user", {text("What is in these?"), photo, contract, uploaded,
                                        media(Type::kAudio, MediaSource::Kind::kBase64, "audio/wav", "UklGRg==")}));

  ContentBlock redacted;
  redacted.type = Type::kRedactedThinking;
  redacted.signature = "EmwKAhgBEgy3va3pzix";
  redacted.origin = "anthropic";
  r.messages.push_back(Message::of("assistant", {thinking("Plan: weather, then time.", "", "gemini"),
                                             thinking("Claude's reasoning", "EqQBCgIYAh", "anthropic"), redacted,
                                             thinking("Signed summary", "c2lnLXRob3VnaHQ=", "gemini"),
                                             text("Checking.", "c2lnLXRleHQ=", "gemini"),
                                             call("", "get_weather", R"({"city":"Paris"})", "c2lnLWNhbGw=", "gemini"),
                                             call("", "get_time", "", "", "gemini")}));

  ContentBlock weather = ContentBlock::of_tool_result("", "get_weather", R"({"temp_c":18})");
  ContentBlock chart = media(Type::kImage, MediaSource::Kind::kBase64, "image/jpeg", "/9j/4AAQ");
  chart.detail = "high";
  weather.content.push_back(chart);
  r.messages.push_back(Message::of("tool", {weather}));
  r.messages.push_back(Message::of("tool", {ContentBlock::of_tool_result("", "get_time", "clock offline", true)}));
  r.messages.push_back(Message::of("user", {text("Thanks. Anything else?")}));

  ContentBlock refusal;
  refusal.type = Type::kRefusal;
  refusal.text = "I can't help with that.";
  ContentBlock own_item;
  own_item.type = Type::kOpaque;
  own_item.opaque_json = R"json({"executableCode":{"language":"PYTHON","code":"print(1)"}})json";
  own_item.origin = "gemini";
  ContentBlock foreign_item;
  foreign_item.type = Type::kOpaque;
  foreign_item.opaque_json = R"({"type":"reasoning","id":"rs_1","encrypted_content":"gAAAA"})";
  foreign_item.origin = "openai";
  r.messages.push_back(Message::of("assistant", {refusal, own_item, foreign_item}));

  const json b = body_of(r);
  CHECK(b["systemInstruction"] == json::parse(R"({"parts":[{"text":"You are terse."},{"text":"Answer in French."}]})"));
  CHECK(b["contents"] == json::parse(R"json([
    {"role":"user","parts":[
      {"text":"What is in these?"},
      {"inlineData":{"mimeType":"image/png","data":"iVBORw0KGgo="}},
      {"text":"Contract v2"},
      {"fileData":{"fileUri":"https://example.com/contract.pdf","mimeType":"application/pdf"}},
      {"fileData":{"fileUri":"https://generativelanguage.googleapis.com/v1beta/files/abc123","mimeType":"audio/mp3"}},
      {"inlineData":{"mimeType":"audio/wav","data":"UklGRg=="}}]},
    {"role":"model","parts":[
      {"text":"Signed summary","thought":true,"thoughtSignature":"c2lnLXRob3VnaHQ="},
      {"text":"Checking.","thoughtSignature":"c2lnLXRleHQ="},
      {"functionCall":{"name":"get_weather","args":{"city":"Paris"}},"thoughtSignature":"c2lnLWNhbGw="},
      {"functionCall":{"name":"get_time","args":{}}}]},
    {"role":"user","parts":[
      {"functionResponse":{"name":"get_weather","response":{"temp_c":18}}},
      {"functionResponse":{"name":"get_time","response":{"error":"clock offline"}}},
      {"inlineData":{"mimeType":"image/jpeg","data":"/9j/4AAQ"}},
      {"text":"Thanks. Anything else?"}]},
    {"role":"model","parts":[
      {"text":"I can't help with that."},
      {"executableCode":{"language":"PYTHON","code":"print(1)"}}]}])json"));
  // The highest image detail asked for applies to the request.
  CHECK(b["generationConfig"] == json::parse(R"({"mediaResolution":"MEDIA_RESOLUTION_HIGH"})"));
}

TEST_CASE("tool results in user messages find their function's name by the call id") {
  ModelRequest r;
  r.messages.push_back(Message::of_text("user", "Weather in Paris?"));
  r.messages.push_back(Message::of("assistant", {call("toolu_01A", "get_weather", R"({"city":"Paris"})", "", "anthropic")}));
  r.messages.push_back(Message::of("user", {ContentBlock::of_tool_result("toolu_01A", "", "18C")}));
  const json b = body_of(r);
  CHECK(b["contents"][2] == json::parse(R"({"role":"user","parts":[
      {"functionResponse":{"id":"toolu_01A","name":"get_weather","response":{"result":"18C"}}}]})"));

  r.messages[2].content[0].tool_use_id = "toolu_unknown";
  const Status s = refusal_of(r);
  CHECK(s.code() == Status::Code::kUpstream);
  CHECK(s.message() ==
        "cannot take the tool result in message 3 without its tool_name (Gemini's functionResponse names its "
        "function)");
}

TEST_CASE("calls Gemini did not make get the placeholder signature in the current turn only") {
  ModelRequest r;
  r.messages.push_back(Message::of_text("user", "Weather in Paris?"));
  r.messages.push_back(Message::of("assistant", {call("call_1", "get_weather", R"({"city":"Paris"})", "", "openai")}));
  r.messages.push_back(Message::of("tool", {ContentBlock::of_tool_result("call_1", "get_weather", "18C")}));
  r.messages.push_back(Message::of("assistant", {text("18C in Paris.")}));
  r.messages.push_back(Message::of_text("user", "And Rome?"));
  r.messages.push_back(Message::of("assistant", {call("call_2", "get_weather", R"({"city":"Rome"})", "", "openai"),
                                             call("", "get_time", "{}", "", "gemini")}));
  r.messages.push_back(Message::of("tool", {ContentBlock::of_tool_result("call_2", "get_weather", "21C"),
                                        ContentBlock::of_tool_result("", "get_time", "12:00")}));

  const json b = body_of(r);
  // An earlier turn is not checked by Gemini: sent as it was.
  CHECK(b["contents"][1]["parts"][0] ==
        json::parse(R"({"functionCall":{"id":"call_1","name":"get_weather","args":{"city":"Paris"}}})"));
  // The current turn: another provider's call gets the placeholder, Gemini's
  // own unsigned parallel call goes back as it came.
  CHECK(b["contents"][5]["parts"] == json::parse(R"([
      {"functionCall":{"id":"call_2","name":"get_weather","args":{"city":"Rome"}},
       "thoughtSignature":"skip_thought_signature_validator"},
      {"functionCall":{"name":"get_time","args":{}}}])"));
  // Gemini 2.x does not check signatures: no placeholder.
  const json older = body_of(r, "gemini-2.5-flash");
  CHECK_FALSE(older["contents"][5]["parts"][0].contains("thoughtSignature"));
}

TEST_CASE("tools become function declarations with Gemini's tool config") {
  struct Case {
    const char* name;
    std::optional<ToolChoice> choice;
    bool strict;
    const char* tool_config;  // "" = none sent
  };
  const Case cases[] = {
      {"unset", std::nullopt, false, ""},
      {"auto", ToolChoice{ToolChoice::Mode::kAuto, ""}, false, R"({"functionCallingConfig":{"mode":"AUTO"}})"},
      {"strict tool", std::nullopt, true, R"({"functionCallingConfig":{"mode":"VALIDATED"}})"},
      {"none", ToolChoice{ToolChoice::Mode::kNone, ""}, false, R"({"functionCallingConfig":{"mode":"NONE"}})"},
      {"required", ToolChoice{ToolChoice::Mode::kRequired, ""}, true, R"({"functionCallingConfig":{"mode":"ANY"}})"},
      {"named", ToolChoice{ToolChoice::Mode::kNamed, "get_time"}, false,
       R"({"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["get_time"]}})"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    ModelRequest r = hello();
    ToolSpec weather = tool("get_weather", "Current weather for a city",
                            R"({"type":"object","properties":{"city":{"type":"string"}},"required":["city"],
                                "additionalProperties":false,"$schema":"http://json-schema.org/draft-07/schema#"})");
    weather.strict = c.strict;
    weather.cache = CacheBreakpoint{""};  // dropped: Gemini caches implicitly
    r.tools.push_back(weather);
    r.tools.push_back(tool("get_time", "", R"({"type":"object","properties":{}})"));
    ToolSpec search;
    search.opaque_json = R"({"googleSearch":{}})";
    search.origin = "gemini";
    r.tools.push_back(search);
    r.tool_choice = c.choice;
    r.parallel_tool_calls = true;
    const json b = body_of(r);
    CHECK(b["tools"] == json::parse(R"([
        {"functionDeclarations":[
          {"name":"get_weather","description":"Current weather for a city",
           "parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}},
          {"name":"get_time"}]},
        {"googleSearch":{}}])"));
    if (std::string(c.tool_config).empty()) {
      CHECK_FALSE(b.contains("toolConfig"));
    } else {
      CHECK(b["toolConfig"] == json::parse(c.tool_config));
    }
  }
}

TEST_CASE("generation config carries sampling, the cap, the output format and thinking") {
  ModelRequest r = hello();
  r.sampling.temperature = 0.2;
  r.sampling.top_p = 0.9;
  r.sampling.top_k = 40;
  r.sampling.stop = {"END", "STOP"};
  r.sampling.seed = 7;
  r.sampling.presence_penalty = 0.5;
  r.sampling.frequency_penalty = -0.5;
  r.sampling.logprobs = true;
  r.sampling.top_logprobs = 3;
  r.sampling.user = "user-42";  // Gemini has no end-user field
  r.max_output_tokens = 2048;
  r.output_format.type = OutputFormat::Type::kJsonSchema;
  r.output_format.name = "verdict";
  r.output_format.description = "The review's verdict";
  r.output_format.strict = true;
  r.output_format.schema_json =
      R"({"type":"object","properties":{"ok":{"type":"boolean"},"notes":{"type":["string","null"]}},
          "required":["ok","notes"],"additionalProperties":false})";
  r.reasoning.level = Reasoning::kHigh;  // 16384, clamped inside the cap
  const json b = body_of(r);
  CHECK(b["generationConfig"] == json::parse(R"({
      "temperature":0.2,"topP":0.9,"topK":40,"stopSequences":["END","STOP"],"seed":7,
      "presencePenalty":0.5,"frequencyPenalty":-0.5,"responseLogprobs":true,"logprobs":3,
      "maxOutputTokens":2048,
      "responseMimeType":"application/json",
      "responseSchema":{"type":"object","title":"verdict","description":"The review's verdict",
        "properties":{"ok":{"type":"boolean"},"notes":{"type":"string","nullable":true}},
        "required":["ok","notes"]},
      "thinkingConfig":{"thinkingBudget":2047,"includeThoughts":true}})"));

  ModelRequest object = hello();
  object.output_format.type = OutputFormat::Type::kJsonObject;
  CHECK(body_of(object)["generationConfig"] == json::parse(R"({"responseMimeType":"application/json"})"));

  // A schema that is any object is JSON mode exactly.
  ModelRequest any_object = hello();
  any_object.output_format.type = OutputFormat::Type::kJsonSchema;
  any_object.output_format.schema_json = R"({"type":"object","additionalProperties":true})";
  CHECK(body_of(any_object)["generationConfig"] == json::parse(R"({"responseMimeType":"application/json"})"));

  // A cap above the model's maximum is clamped to it.
  ModelRequest big = hello();
  big.max_output_tokens = 1'000'000;
  CHECK(body_of(big)["generationConfig"] == json::parse(R"({"maxOutputTokens":65536})"));
}

TEST_CASE("the thinking budget follows the caller's budget, then effort, then the rules' level") {
  struct Case {
    const char* name;
    Reasoning level;
    std::optional<Effort> effort;
    std::optional<std::int64_t> budget;
    std::optional<std::int64_t> cap;
    const char* thinking;  // thinkingConfig; "" = none sent
  };
  const Case cases[] = {
      {"nothing asked", Reasoning::kDefault, std::nullopt, std::nullopt, std::nullopt, ""},
      {"rules' level", Reasoning::kMedium, std::nullopt, std::nullopt, std::nullopt,
       R"({"thinkingBudget":4096,"includeThoughts":true})"},
      {"effort beats the level", Reasoning::kHigh, Effort::kLow, std::nullopt, std::nullopt,
       R"({"thinkingBudget":1024,"includeThoughts":true})"},
      {"budget beats effort", Reasoning::kHigh, Effort::kHigh, 3000, std::nullopt,
       R"({"thinkingBudget":3000,"includeThoughts":true})"},
      {"budget 0 turns thinking off", Reasoning::kHigh, std::nullopt, 0, std::nullopt, R"({"thinkingBudget":0})"},
      {"effort none turns thinking off", Reasoning::kLow, Effort::kNone, std::nullopt, std::nullopt,
       R"({"thinkingBudget":0})"},
      {"minimal is half of low", Reasoning::kDefault, Effort::kMinimal, std::nullopt, std::nullopt,
       R"({"thinkingBudget":512,"includeThoughts":true})"},
      {"xhigh is twice high", Reasoning::kDefault, Effort::kXHigh, std::nullopt, std::nullopt,
       R"({"thinkingBudget":32768,"includeThoughts":true})"},
      {"inside the cap", Reasoning::kDefault, std::nullopt, 8000, 1000,
       R"({"thinkingBudget":999,"includeThoughts":true})"},
      {"inside the model's maximum", Reasoning::kDefault, std::nullopt, 100000, std::nullopt,
       R"({"thinkingBudget":65535,"includeThoughts":true})"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    ModelRequest r = hello();
    r.reasoning.level = c.level;
    r.reasoning.effort = c.effort;
    r.reasoning.budget_tokens = c.budget;
    r.max_output_tokens = c.cap;
    const json b = body_of(r);
    if (std::string(c.thinking).empty()) {
      CHECK_FALSE(b.contains("generationConfig"));
    } else {
      CHECK(b["generationConfig"]["thinkingConfig"] == json::parse(c.thinking));
    }
  }
}

TEST_CASE("schemas lose the keywords Gemini rejects and keep their shape") {
  const json b = body_of(with_tool(R"({
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
      "Address": {"type": "object", "description": "Where", "additionalProperties": false,
                  "properties": {"city": {"type": "string", "minLength": 1}}, "required": ["city"]}
    },
    "properties": {
      "home": {"$ref": "#/$defs/Address", "description": "Home address"},
      "work": {"anyOf": [{"$ref": "#/$defs/Address"}, {"type": "null"}], "default": null},
      "kind": {"const": "person"},
      "mood": {"enum": ["calm", "busy", null]},
      "id": {"oneOf": [{"type": "string", "format": "uuid"}, {"type": "integer", "exclusiveMinimum": 0}]},
      "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true, "maxItems": 5},
      "score": {"type": ["number", "string"], "minimum": 0, "pattern": "^[0-9]+$", "examples": [3, "4"]},
      "meta": {"allOf": [{"$ref": "#/$defs/Address"}], "title": "Meta"},
      "count": {"type": "INTEGER", "multipleOf": 2}
    },
    "patternProperties": {"^x-": {"type": "string"}},
    "required": ["home"]
  })"));
  CHECK(b["tools"][0]["functionDeclarations"][0]["parameters"] == json::parse(R"({
    "type": "object",
    "properties": {
      "home": {"type": "object", "description": "Home address",
               "properties": {"city": {"type": "string", "minLength": 1}}, "required": ["city"]},
      "work": {"type": "object", "description": "Where", "nullable": true, "default": null,
               "properties": {"city": {"type": "string", "minLength": 1}}, "required": ["city"]},
      "kind": {"enum": ["person"]},
      "mood": {"enum": ["calm", "busy"], "nullable": true},
      "id": {"anyOf": [{"type": "string", "format": "uuid"}, {"type": "integer"}]},
      "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
      "score": {"example": 3, "anyOf": [{"type": "number", "minimum": 0},
                                        {"type": "string", "pattern": "^[0-9]+$"}]},
      "meta": {"type": "object", "title": "Meta", "description": "Where",
               "properties": {"city": {"type": "string", "minLength": 1}}, "required": ["city"]},
      "count": {"type": "integer"}
    },
    "required": ["home"]
  })"));
}

TEST_CASE("schemas Gemini cannot express refuse the model with the reason") {
  struct Case {
    const char* parameters;
    const char* message;
  };
  const Case cases[] = {
      {R"({"type":"object","properties":{"child":{"$ref":"#"}}})",
       "cannot take tool 'lookup' parameters (properties.child: a recursive $ref #; Gemini schemas cannot refer to "
       "themselves)"},
      {R"({"type":"object","properties":{"a":{"$ref":"https://example.com/a.json"}}})",
       "cannot take tool 'lookup' parameters (properties.a: a $ref outside the schema)"},
      {R"({"type":"object","properties":{"a":{"$ref":"#/$defs/Missing"}}})",
       "cannot take tool 'lookup' parameters (properties.a: a $ref #/$defs/Missing that names no schema)"},
      {R"({"type":"object","properties":{"a":{"allOf":[{"type":"string"},{"maxLength":3}]}}})",
       "cannot take tool 'lookup' parameters (properties.a: allOf of several schemas)"},
      {R"({"type":"object","properties":{"level":{"type":"integer","enum":[1,2,3]}}})",
       "cannot take tool 'lookup' parameters (properties.level: an enum of non-string values (Gemini enums are "
       "strings))"},
      {R"({"type":"object","properties":{"point":{"type":"array","prefixItems":[{"type":"number"}]}}})",
       "cannot take tool 'lookup' parameters (properties.point: a tuple (prefixItems))"},
      {R"({"type":"object","properties":{"extra":{"type":"object"}}})",
       "cannot take tool 'lookup' parameters (properties.extra: an object with no properties (Gemini's OBJECT "
       "schemas need them))"},
      {R"({"type":"object","additionalProperties":{"type":"string"}})",
       "cannot take tool 'lookup' parameters (free-form arguments; Gemini's OBJECT needs properties)"},
      {R"({"type":"array","items":{"type":"string"}})",
       "cannot take tool 'lookup' parameters (Gemini takes an object schema)"},
  };
  for (const Case& c : cases) {
    INFO(c.parameters);
    const Status s = refusal_of(with_tool(c.parameters));
    CHECK(s.code() == Status::Code::kUpstream);
    CHECK(s.message() == c.message);
  }
}

TEST_CASE("requests Gemini cannot express are refused so the dispatcher falls back") {
  struct Case {
    const char* name;
    ModelRequest request;
    const char* message;
  };
  std::vector<Case> cases;
  {
    ModelRequest r = with_tool(R"({"type":"object","properties":{"q":{"type":"string"}}})");
    r.parallel_tool_calls = false;
    cases.push_back({"one call at most", r,
                     "cannot take parallel_tool_calls = false (Gemini has no way to limit an answer to one function "
                     "call)"});
  }
  {
    ModelRequest r = hello();
    r.sampling.stop = {"a", "b", "c", "d", "e", "f"};
    cases.push_back({"six stop sequences", r, "cannot take 6 stop sequences (Gemini takes at most 5)"});
  }
  {
    ModelRequest r = hello();
    r.messages[0].name = "alice";
    cases.push_back({"a participant name", r, "cannot take the name 'alice' on message 1 (Gemini has no participant names)"});
  }
  {
    ModelRequest r = hello();
    r.sampling.seed = 1LL << 40;
    cases.push_back({"a 64-bit seed", r, "cannot take seed 1099511627776 (Gemini's seed is a 32-bit integer)"});
  }
  {
    ModelRequest r = hello();
    ContentBlock file = media(Type::kDocument, MediaSource::Kind::kFileId, "application/pdf", "file-abc");
    file.origin = "openai";
    r.messages[0].content.push_back(file);
    cases.push_back({"another provider's file", r,
                     "cannot take a file id from openai in message 1 (a file id is good only with the provider "
                     "that made it)"});
  }
  {
    ModelRequest r = hello();
    ToolSpec search;
    search.opaque_json = R"({"type":"web_search_20250305","name":"web_search"})";
    search.origin = "anthropic";
    r.tools.push_back(search);
    cases.push_back({"another provider's tool", r, "cannot take anthropic's own tool (it exists only there)"});
  }
  {
    ModelRequest r = hello();
    r.messages.insert(r.messages.begin(),
                      Message::of("system", {media(Type::kImage, MediaSource::Kind::kUrl, "", "https://x/logo.png")}));
    cases.push_back({"an image in the system prompt", r,
                     "cannot take an image block in message 1, a system message (Gemini's systemInstruction holds "
                     "text)"});
  }
  for (const Case& c : cases) {
    INFO(c.name);
    const Status s = refusal_of(c.request);
    CHECK(s.code() == Status::Code::kUpstream);
    CHECK(s.message() == c.message);
  }
  // No function, nothing to limit: parallel_tool_calls = false is no constraint.
  ModelRequest plain = hello();
  plain.parallel_tool_calls = false;
  CHECK(wire()->build_request(plain, false).ok());
}

TEST_CASE("malformed requests are invalid") {
  struct Case {
    const char* name;
    ModelRequest request;
    const char* message;
  };
  std::vector<Case> cases;
  {
    ModelRequest r = hello();
    r.messages[0].content.push_back(media(Type::kImage, MediaSource::Kind::kBase64, "", "iVBORw0KGgo="));
    cases.push_back({"no media type", r, "message 1: a base64 image needs its media_type"});
  }
  {
    ModelRequest r = with_tool(R"({"type":"object","properties":{"q":{"type":"string"}}})");
    r.tool_choice = ToolChoice{ToolChoice::Mode::kNamed, "search"};
    cases.push_back({"unknown named tool", r, "tool_choice names 'search', which is not a declared function"});
  }
  {
    ModelRequest r = hello();
    r.tool_choice = ToolChoice{ToolChoice::Mode::kRequired, ""};
    cases.push_back({"required without tools", r,
                     "tool_choice asks for a function call, but the request declares no function"});
  }
  {
    ModelRequest r = hello();
    r.messages[0].content.push_back(call("c1", "f", "{}"));
    cases.push_back({"a call in a user message", r, "message 1: a tool use block cannot be in a user message"});
  }
  {
    ModelRequest r = hello();
    r.messages.push_back(Message::of("assistant", {call("c1", "f", "[1]")}));
    cases.push_back({"arguments not an object", r, "message 2: tool call 'f' arguments is not a JSON object"});
  }
  for (const Case& c : cases) {
    INFO(c.name);
    const Status s = refusal_of(c.request);
    CHECK(s.code() == Status::Code::kInvalidArgument);
    CHECK(s.message() == c.message);
  }
}

TEST_CASE("an answer with thoughts and signed function calls keeps every part in order") {
  Result<ModelResponse> r = wire()->parse_response(R"json({
    "candidates": [{
      "content": {"role": "model", "parts": [
        {"text": "**Planning the lookups**\nI need the weather and the time.", "thought": true},
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
         "thoughtSignature": "CiQB0e2Kb7dN2xUQyPj3RVx0fS1W"},
        {"functionCall": {"id": "fc_2", "name": "get_time", "args": {}}}
      ]},
      "finishReason": "STOP",
      "index": 0
    }],
    "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 40, "totalTokenCount": 360,
                      "thoughtsTokenCount": 200,
                      "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 120}]},
    "modelVersion": "gemini-3-pro-preview",
    "responseId": "Yy0gabCqLMK2nvgPvbqW4AM"
  })json");
  REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  CHECK(r->model == "gemini-3-pro-preview");
  CHECK(r->stop_reason == StopReason::kToolUse);
  CHECK(r->raw_stop_reason == "STOP");
  CHECK(r->usage == usage_of(120, 0, 0, 0, 40, 200));
  REQUIRE(r->content.size() == 3);
  CHECK(r->content[0].type == Type::kThinking);
  CHECK(r->content[0].text == "**Planning the lookups**\nI need the weather and the time.");
  CHECK(r->content[0].signature.empty());
  CHECK(r->content[1].type == Type::kToolUse);
  CHECK(r->content[1].tool_call.id.empty());
  CHECK(r->content[1].tool_call.name == "get_weather");
  CHECK(json::parse(r->content[1].tool_call.arguments_json) == json::parse(R"({"city":"Paris"})"));
  CHECK(r->content[1].signature == "CiQB0e2Kb7dN2xUQyPj3RVx0fS1W");
  CHECK(r->content[2].tool_call.id == "fc_2");
  CHECK(r->content[2].tool_call.arguments_json == "{}");
  CHECK(r->content[2].signature.empty());
  for (const ContentBlock& b : r->content) CHECK(b.origin == "gemini");
  CHECK(r->text().empty());
}

TEST_CASE("an answer sent back reaches Gemini as the parts it came in") {
  Result<ModelResponse> answer = wire()->parse_response(R"json({
    "candidates": [{"content": {"role": "model", "parts": [
        {"text": "Thinking it over.", "thought": true, "thoughtSignature": "dGhvdWdodA=="},
        {"text": "Here is the plan.", "thoughtSignature": "dGV4dA=="},
        {"functionCall": {"name": "run", "args": {"step": 1}}, "thoughtSignature": "Y2FsbA=="},
        {"executableCode": {"language": "PYTHON", "code": "print(2+2)"}}]},
      "finishReason": "STOP"}],
    "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5}})json");
  REQUIRE(answer.ok());
  CHECK(answer->content[3].type == Type::kOpaque);
  ModelRequest r = hello();
  r.messages.push_back(Message::of("assistant", answer->content));
  const json b = body_of(r);
  CHECK(b["contents"][1]["parts"] == json::parse(R"json([
      {"text": "Thinking it over.", "thought": true, "thoughtSignature": "dGhvdWdodA=="},
      {"text": "Here is the plan.", "thoughtSignature": "dGV4dA=="},
      {"functionCall": {"name": "run", "args": {"step": 1}}, "thoughtSignature": "Y2FsbA=="},
      {"executableCode": {"language": "PYTHON", "code": "print(2+2)"}}])json"));
}

TEST_CASE("finish reasons map to stop reasons and stay verbatim") {
  struct Case {
    const char* body;
    StopReason stop;
    const char* raw;
    const char* text;
  };
  const Case cases[] = {
      {R"({"candidates":[{"content":{"role":"model","parts":[{"text":"Done."}]},"finishReason":"STOP"}],
           "usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":2}})",
       StopReason::kEndTurn, "STOP", "Done."},
      {R"({"candidates":[{"content":{"role":"model","parts":[{"text":"Partial"}]},"finishReason":"MAX_TOKENS"}],
           "usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":1}})",
       StopReason::kMaxTokens, "MAX_TOKENS", "Partial"},
      {R"({"candidates":[{"finishReason":"SAFETY","index":0,"safetyRatings":[
             {"category":"HARM_CATEGORY_DANGEROUS_CONTENT","probability":"HIGH","blocked":true}]}],
           "usageMetadata":{"promptTokenCount":40,"totalTokenCount":40}})",
       StopReason::kContentFilter, "SAFETY", ""},
      {R"({"candidates":[{"content":{"role":"model","parts":[{"text":"It was the best"}]},"finishReason":"RECITATION",
             "citationMetadata":{"citationSources":[{"startIndex":0,"endIndex":15}]}}],
           "usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":4}})",
       StopReason::kContentFilter, "RECITATION", "It was the best"},
      {R"({"candidates":[{"content":{"role":"model","parts":[]},"finishReason":"PROHIBITED_CONTENT"}],
           "usageMetadata":{"promptTokenCount":9}})",
       StopReason::kContentFilter, "PROHIBITED_CONTENT", ""},
      {R"({"candidates":[{"finishReason":"MALFORMED_FUNCTION_CALL","finishMessage":"Malformed function call: x"}],
           "usageMetadata":{"promptTokenCount":30}})",
       StopReason::kOther, "MALFORMED_FUNCTION_CALL", ""},
      {R"({"candidates":[{"finishReason":"OTHER"}],"usageMetadata":{"promptTokenCount":3}})", StopReason::kOther,
       "OTHER", ""},
      {R"({"promptFeedback":{"blockReason":"BLOCKLIST","safetyRatings":[]},
           "usageMetadata":{"promptTokenCount":33,"totalTokenCount":33},"modelVersion":"gemini-2.5-flash"})",
       StopReason::kContentFilter, "BLOCKLIST", ""},
  };
  for (const Case& c : cases) {
    INFO(c.raw);
    Result<ModelResponse> r = wire()->parse_response(c.body);
    REQUIRE_MESSAGE(r.ok(), r.status().to_string());
    CHECK(r->stop_reason == c.stop);
    CHECK(r->raw_stop_reason == c.raw);
    CHECK(r->text() == c.text);
  }
  Result<ModelResponse> none = wire()->parse_response(R"({"usageMetadata":{"promptTokenCount":1}})");
  REQUIRE_FALSE(none.ok());
  CHECK(none.status().message() == "body has no 'candidates'");
}

TEST_CASE("an answer keeps its logprobs, its media and a signature on an empty text part") {
  Result<ModelResponse> r = wire()->parse_response(R"json({
    "candidates": [{
      "content": {"role": "model", "parts": [
        {"text": "Yes"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"text": "", "thoughtSignature": "ZW1wdHk="}]},
      "finishReason": "STOP",
      "avgLogprobs": -0.05,
      "logprobsResult": {
        "topCandidates": [{"candidates": [{"token": "Yes", "tokenId": 8438, "logProbability": -0.05},
                                          {"token": "No", "tokenId": 1294, "logProbability": -3.1}]}],
        "chosenCandidates": [{"token": "Yes", "tokenId": 8438, "logProbability": -0.05}],
        "logProbabilitySum": -0.05}
    }],
    "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 1},
    "modelVersion": "gemini-2.5-flash"})json");
  REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  REQUIRE(r->content.size() == 3);
  CHECK(r->content[1].type == Type::kImage);
  CHECK(r->content[1].source.media_type == "image/png");
  CHECK(r->content[1].source.data == "iVBORw0KGgo=");
  CHECK(r->content[2].type == Type::kText);
  CHECK(r->content[2].text.empty());
  CHECK(r->content[2].signature == "ZW1wdHk=");
  CHECK(json::parse(r->logprobs_json)["chosenCandidates"][0]["token"] == "Yes");
  CHECK(json::parse(r->logprobs_json)["topCandidates"][0]["candidates"].size() == 2);
}

TEST_CASE("a stream of thoughts then a function call arrives as its chunks") {
  const Decoded d = decode(crlf(R"sse(data: {"candidates": [{"content": {"parts": [{"text": "**Checking the forecast**\n","thought": true}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 90,"totalTokenCount": 150,"thoughtsTokenCount": 60},"modelVersion": "gemini-2.5-pro","responseId": "r1"}

data: {"candidates": [{"content": {"parts": [{"text": "The user wants Paris.","thought": true}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 90,"totalTokenCount": 170,"thoughtsTokenCount": 80},"modelVersion": "gemini-2.5-pro","responseId": "r1"}

data: {"candidates": [{"content": {"parts": [{"functionCall": {"name": "get_weather","args": {"city": "Paris"}},"thoughtSignature": "CsIBAdHtim9"},{"functionCall": {"name": "get_time","args": {}}}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 90,"candidatesTokenCount": 30,"totalTokenCount": 200,"thoughtsTokenCount": 80},"modelVersion": "gemini-2.5-pro","responseId": "r1"}

)sse"), "gemini-2.5-pro");
  REQUIRE_MESSAGE(d.response.ok(), d.response.status().to_string());
  CHECK(d.chunks ==
        "thinking 0 **Checking the forecast**\n\n"
        "thinking 0 The user wants Paris.\n"
        "signature 1 CsIBAdHtim9\n"  // before the call it signs
        "call 1 |get_weather\n"
        "args 1 {\"city\":\"Paris\"}\n"
        "call 2 |get_time\n"
        "args 2 {}\n");
  const ModelResponse& r = *d.response;
  CHECK(r.model == "gemini-2.5-pro");
  CHECK(r.stop_reason == StopReason::kToolUse);
  CHECK(r.raw_stop_reason == "STOP");
  CHECK(r.usage == usage_of(90, 0, 0, 0, 30, 80));
  REQUIRE(r.content.size() == 3);
  CHECK(r.content[0].type == Type::kThinking);
  CHECK(r.content[0].text == "**Checking the forecast**\nThe user wants Paris.");
  CHECK(r.content[1].tool_call.name == "get_weather");
  CHECK(r.content[1].signature == "CsIBAdHtim9");
  CHECK(r.content[2].tool_call.name == "get_time");
  CHECK(r.tool_calls().size() == 2);
}

TEST_CASE("a streamed answer's text extends one block and takes the signature of its last empty part") {
  const Decoded d = decode(crlf(R"sse(data: {"candidates": [{"content": {"parts": [{"text": "Weighing both options.","thought": true}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 20,"totalTokenCount": 60,"thoughtsTokenCount": 40},"modelVersion": "gemini-3-pro-preview","responseId": "r2"}

data: {"candidates": [{"content": {"parts": [{"text": "Take the"}],"role": "model"},"index": 0,"logprobsResult": {"chosenCandidates": [{"token": "Take","logProbability": -0.1}],"logProbabilitySum": -0.1}}],"usageMetadata": {"promptTokenCount": 20,"totalTokenCount": 62,"thoughtsTokenCount": 40},"modelVersion": "gemini-3-pro-preview","responseId": "r2"}

data: {"candidates": [{"content": {"parts": [{"text": " train."}],"role": "model"},"index": 0,"logprobsResult": {"chosenCandidates": [{"token": " train","logProbability": -0.2}],"logProbabilitySum": -0.2}}],"usageMetadata": {"promptTokenCount": 20,"totalTokenCount": 64,"thoughtsTokenCount": 40},"modelVersion": "gemini-3-pro-preview","responseId": "r2"}

data: {"candidates": [{"content": {"parts": [{"text": "","thoughtSignature": "EjQKMgG+Pvb7"}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 20,"candidatesTokenCount": 4,"totalTokenCount": 64,"thoughtsTokenCount": 40,"cachedContentTokenCount": 8},"modelVersion": "gemini-3-pro-preview","responseId": "r2"}

)sse"));
  REQUIRE_MESSAGE(d.response.ok(), d.response.status().to_string());
  CHECK(d.chunks ==
        "thinking 0 Weighing both options.\n"
        "text 1 Take the\n"
        "text 1  train.\n"
        "signature 1 EjQKMgG+Pvb7\n");
  const ModelResponse& r = *d.response;
  CHECK(r.stop_reason == StopReason::kEndTurn);
  CHECK(r.usage == usage_of(12, 8, 0, 0, 4, 40));
  REQUIRE(r.content.size() == 2);
  CHECK(r.content[1].type == Type::kText);
  CHECK(r.content[1].text == "Take the train.");
  CHECK(r.content[1].signature == "EjQKMgG+Pvb7");
  CHECK(r.text() == "Take the train.");
  const json logprobs = json::parse(r.logprobs_json);
  CHECK(logprobs["chosenCandidates"].size() == 2);
  CHECK(logprobs["logProbabilitySum"].get<double>() == doctest::Approx(-0.3));
}

TEST_CASE("two signed text parts of a stream stay two blocks") {
  const Decoded d = decode(crlf(R"sse(data: {"candidates": [{"content": {"parts": [{"text": "First.","thoughtSignature": "QUFB"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 5}}

data: {"candidates": [{"content": {"parts": [{"text": "Second.","thoughtSignature": "QkJC"}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 5,"candidatesTokenCount": 2}}

)sse"));
  REQUIRE(d.response.ok());
  CHECK(d.chunks == "text 0 First.\nsignature 0 QUFB\ntext 1 Second.\nsignature 1 QkJC\n");
  REQUIRE(d.response->content.size() == 2);
  CHECK(d.response->content[1].signature == "QkJC");
}

TEST_CASE("a stream ends on a blocked prompt, an error event or too early") {
  const Decoded blocked = decode(crlf(R"sse(data: {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},"usageMetadata": {"promptTokenCount": 14,"totalTokenCount": 14},"modelVersion": "gemini-2.5-flash"}

)sse"));
  REQUIRE(blocked.response.ok());
  CHECK(blocked.response->stop_reason == StopReason::kContentFilter);
  CHECK(blocked.response->raw_stop_reason == "PROHIBITED_CONTENT");
  CHECK(blocked.response->content.empty());

  const Decoded overloaded = decode(crlf(R"sse(data: {"candidates": [{"content": {"parts": [{"text": "Par"}],"role": "model"}}],"usageMetadata": {"promptTokenCount": 5}}

data: [{"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}]

)sse"));
  CHECK(overloaded.chunks == "text 0 Par\n");
  REQUIRE_FALSE(overloaded.response.ok());
  CHECK(overloaded.response.status().code() == Status::Code::kUnavailable);
  CHECK(overloaded.response.status().message() ==
        "stream error: The model is overloaded. Please try again later. (UNAVAILABLE)");

  const Decoded cut = decode(crlf(R"sse(data: {"candidates": [{"content": {"parts": [{"text": "Par"}],"role": "model"}}],"usageMetadata": {"promptTokenCount": 5}}

)sse"));
  REQUIRE_FALSE(cut.response.ok());
  CHECK(cut.response.status().code() == Status::Code::kUnavailable);
}

}  // TEST_SUITE("gemini_wire")
