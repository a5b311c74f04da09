// The provider wire formats without a network: the requests they build, the
// bodies and streams they read (recorded-shape, inline), and the SSE parser
// under every chunking a network could produce.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "providers/sse.h"
#include "test_util.h"
#include "providers/wire_common.h"
#include "providers/wire_format.h"

using namespace switchboard;
using nlohmann::json;
using switchboard::testing::usage_of;

namespace {

const std::string kKey = "sk-test-SECRET-7f3a9c0d1e2b";

ModelSpec spec_for(const std::string& provider) {
  ModelSpec m;
  m.provider = provider;
  m.default_output_tokens = 1000;  // budgets stay at their defaults: 1024 / 4096 / 16384
  m.max_output_tokens = 64000;
  if (provider == "anthropic") {
    m.name = m.model_id = "claude-sonnet-4-5";
    m.endpoint = "https://api.anthropic.com";
  } else if (provider == "gemini") {
    m.name = m.model_id = "gemini-2.5-pro";
    m.endpoint = "https://generativelanguage.googleapis.com/v1beta";
  } else if (provider == "openai-compatible") {
    m.name = m.model_id = "qwen3-32b";
    m.endpoint = "http://127.0.0.1:8000/v1/";
  } else {
    m.name = m.model_id = "gpt-4.1";
    m.endpoint = "https://api.openai.com/v1";
  }
  return m;
}

std::unique_ptr<WireFormat> wire_for(const std::string& provider, std::string key = kKey) {
  const ModelSpec m = spec_for(provider);
  if (provider == "anthropic") return make_anthropic_wire(m, std::move(key));
  if (provider == "gemini") return make_gemini_wire(m, std::move(key));
  return make_openai_wire(m, std::move(key));
}

ModelRequest plain_request() {
  ModelRequest r;
  r.messages = {Message::of_text("system", "You review contracts."), Message::of_text("user", "Summarise clause 14.")};
  return r;
}

// A conversation with a tool: the model called two tools, both answered.
ModelRequest tool_request() {
  ModelRequest r;
  r.messages.push_back(Message::of_text("system", "You are terse."));
  r.messages.push_back(Message::of_text("user", "Weather and time in Paris?"));
  r.messages.push_back(Message::of("assistant",
                        {ContentBlock::of_tool_call({"call_1", "get_weather", R"({"city":"Paris"})"}),
                         ContentBlock::of_tool_call({"call_2", "get_time", ""})}));
  r.messages.push_back(Message::of("tool", {ContentBlock::of_tool_result("call_1", "get_weather", R"({"temp_c":18})")}));
  r.messages.push_back(Message::of("tool", {ContentBlock::of_tool_result("call_2", "get_time", "14:05")}));
  r.tools.push_back(ToolSpec::of_function("get_weather", "Current weather for a city",
                     R"({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]})"));
  r.tools.push_back(ToolSpec::of_function("get_time", "", R"({"type":"object","properties":{}})"));
  return r;
}

HttpRequest built(const WireFormat& wire, const ModelRequest& request, bool stream = false) {
  Result<HttpRequest> r = wire.build_request(request, stream);
  REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  return *r;
}

json body_of(const HttpRequest& r) { return json::parse(r.body); }

std::optional<std::string> header(const HttpRequest& r, const std::string& name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return std::nullopt;
}

// Feeds `stream` to a parser in pieces cut at `cuts` (sorted offsets).
std::vector<SseEvent> parse_in_pieces(std::string_view stream, const std::vector<std::size_t>& cuts) {
  SseParser parser;
  std::vector<SseEvent> events;
  std::size_t at = 0;
  for (std::size_t cut : cuts) {
    parser.feed(stream.substr(at, cut - at), [&](const SseEvent& e) {
      events.push_back(e);
      return true;
    });
    at = cut;
  }
  parser.feed(stream.substr(at), [&](const SseEvent& e) {
    events.push_back(e);
    return true;
  });
  return events;
}

std::vector<std::size_t> random_cuts(std::size_t size, std::mt19937& rng) {
  std::uniform_int_distribution<std::size_t> count(0, 12), offset(0, size);
  std::vector<std::size_t> cuts(count(rng));
  for (auto& c : cuts) c = offset(rng);
  std::sort(cuts.begin(), cuts.end());
  return cuts;
}

struct Decoded {
  Result<ModelResponse> response = Status::internal("not decoded");
  std::string chunks;  // every delivered chunk, concatenated
};

// `stream` through an SseParser (cut at `cuts`) and `provider`'s decoder.
Decoded decode(const std::string& provider, std::string_view stream, const std::vector<std::size_t>& cuts = {}) {
  auto wire = wire_for(provider);
  auto decoder = wire->stream_decoder();
  Decoded out;
  Status error;
  const ChunkHandler on_chunk = [&](const StreamChunk& c) {
    CHECK_FALSE(c.restart);
    if (c.kind == StreamChunk::Kind::kText) out.chunks += c.text;
  };
  for (const SseEvent& e : parse_in_pieces(stream, cuts)) {
    error = decoder->on_event(e, on_chunk);
    if (!error.ok()) break;
  }
  out.response = error.ok() ? decoder->finish() : Result<ModelResponse>(error);
  return out;
}

// ---- recorded-shape streams ------------------------------------------------

const std::string kOpenAIStream = R"sse(data: {"id":"chatcmpl-CF9","object":"chat.completion.chunk","created":1763790000,"model":"gpt-4.1-2025-04-14","service_tier":"default","system_fingerprint":"fp_9a1","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-CF9","object":"chat.completion.chunk","created":1763790000,"model":"gpt-4.1-2025-04-14","service_tier":"default","system_fingerprint":"fp_9a1","choices":[{"index":0,"delta":{"content":"Clause 14.2 caps"},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-CF9","object":"chat.completion.chunk","created":1763790000,"model":"gpt-4.1-2025-04-14","service_tier":"default","system_fingerprint":"fp_9a1","choices":[{"index":0,"delta":{"content":" liability — at 12 months’ fees."},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-CF9","object":"chat.completion.chunk","created":1763790000,"model":"gpt-4.1-2025-04-14","service_tier":"default","system_fingerprint":"fp_9a1","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}

data: {"id":"chatcmpl-CF9","object":"chat.completion.chunk","created":1763790000,"model":"gpt-4.1-2025-04-14","service_tier":"default","system_fingerprint":"fp_9a1","choices":[],"usage":{"prompt_tokens":1200,"completion_tokens":300,"total_tokens":1500,"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":128,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}

data: [DONE]

)sse";

const std::string kOpenAIToolStream = R"sse(data: {"id":"chatcmpl-CG1","object":"chat.completion.chunk","created":1763790100,"model":"gpt-4.1-2025-04-14","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_Qx1","type":"function","function":{"name":"get_weather","arguments":""}}],"refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-CG1","object":"chat.completion.chunk","created":1763790100,"model":"gpt-4.1-2025-04-14","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-CG1","object":"chat.completion.chunk","created":1763790100,"model":"gpt-4.1-2025-04-14","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":" \"Paris\"}"}}]},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-CG1","object":"chat.completion.chunk","created":1763790100,"model":"gpt-4.1-2025-04-14","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_Rt2","type":"function","function":{"name":"get_time","arguments":"{}"}}]},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-CG1","object":"chat.completion.chunk","created":1763790100,"model":"gpt-4.1-2025-04-14","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}],"usage":null}

data: {"id":"chatcmpl-CG1","object":"chat.completion.chunk","created":1763790100,"model":"gpt-4.1-2025-04-14","choices":[],"usage":{"prompt_tokens":90,"completion_tokens":38,"total_tokens":128,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}

data: [DONE]

)sse";

const std::string kAnthropicStream = R"sse(event: message_start
data: {"type":"message_start","message":{"id":"msg_01Hq8yXzT3vN6bR2wK9pLm4S","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":320,"cache_creation_input_tokens":0,"cache_read_input_tokens":9800,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":1,"service_tier":"standard"}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"The user wants clause 14 and its cap."}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: ping
data: {"type": "ping"}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Clause 14.2 caps liability"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"; let me check 14.3."}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: content_block_start
data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"lookup_clause","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"clause\": \"14"}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":".3\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":2}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":250}}

event: message_stop
data: {"type":"message_stop"}

)sse";

// Gemini ends its lines with CRLF.
std::string crlf(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

const std::string kGeminiStream = crlf(R"sse(data: {"candidates": [{"content": {"parts": [{"text": "x = 7 satisfies"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 1500,"candidatesTokenCount": 4,"totalTokenCount": 3704,"thoughtsTokenCount": 2200,"cachedContentTokenCount": 1024},"modelVersion": "gemini-2.5-pro","responseId": "z90gaK2PMe2Az7IPpNfHgQ0"}

data: {"candidates": [{"content": {"parts": [{"text": " both equations: 3(7) - 4 = 17."}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 1500,"candidatesTokenCount": 600,"totalTokenCount": 4300,"thoughtsTokenCount": 2200,"cachedContentTokenCount": 1024,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 1500}]},"modelVersion": "gemini-2.5-pro","responseId": "z90gaK2PMe2Az7IPpNfHgQ0"}

)sse");

}  // namespace

TEST_SUITE("sse") {

TEST_CASE("sse parser yields the same events whatever the chunking") {
  const std::string stream =
      "\xEF\xBB\xBF: a comment, then an event split over lines\n"
      "event: message_start\r\n"
      "id: 7\r\n"
      "retry: 3000\r\n"
      "data: {\"a\":\r\n"
      "data:1}\r\n"
      "\r\n"
      "data: only data\r\r"
      "event: no data: never dispatched\n\n"
      "data\n"
      "\n"
      "event: ping\n"
      "data: {\"type\": \"ping\"}\n\n"
      "data: [DONE]\n\n";
  const std::vector<SseEvent> expected = {
      {"message_start", "{\"a\":\n1}"}, {"message", "only data"}, {"message", ""}, {"ping", "{\"type\": \"ping\"}"},
      {"message", "[DONE]"}};

  CHECK(parse_in_pieces(stream, {}) == expected);
  std::vector<std::size_t> every_byte(stream.size());
  for (std::size_t i = 0; i < stream.size(); ++i) every_byte[i] = i;
  CHECK(parse_in_pieces(stream, every_byte) == expected);
  std::mt19937 rng(20261122);
  for (int i = 0; i < 500; ++i) {
    const std::vector<std::size_t> cuts = random_cuts(stream.size(), rng);
    REQUIRE(parse_in_pieces(stream, cuts) == expected);
  }
}

TEST_CASE("sse parser drops an event the stream cut off") {
  CHECK(parse_in_pieces("data: one\n\ndata: two\n", {}) == std::vector<SseEvent>{{"message", "one"}});
  CHECK(parse_in_pieces("data: one\n\ndata: tw", {}) == std::vector<SseEvent>{{"message", "one"}});
}

TEST_CASE("sse parser stops when its handler says so") {
  SseParser parser;
  int seen = 0;
  auto handler = [&](const SseEvent&) { return ++seen < 2; };
  CHECK_FALSE(parser.feed("data: 1\n\ndata: 2\n\ndata: 3\n\n", handler));
  CHECK(seen == 2);
  CHECK_FALSE(parser.feed("data: 4\n\n", handler));
  CHECK(seen == 2);
}

}  // TEST_SUITE("sse")

TEST_SUITE("wire_format") {

// ---- requests --------------------------------------------------------------

TEST_CASE("openai request carries model messages tools and the bearer key") {
  auto wire = wire_for("openai");
  const HttpRequest r = built(*wire, tool_request());
  CHECK(r.url == "https://api.openai.com/v1/chat/completions");
  CHECK(header(r, "Authorization") == "Bearer " + kKey);
  CHECK(header(r, "Content-Type") == "application/json");
  const json b = body_of(r);
  CHECK(b["model"] == "gpt-4.1");
  REQUIRE(b["messages"].size() == 5);
  CHECK(b["messages"][0] == json{{"role", "system"}, {"content", "You are terse."}});
  CHECK(b["messages"][1] == json{{"role", "user"}, {"content", "Weather and time in Paris?"}});
  const json& assistant = b["messages"][2];
  CHECK(assistant["content"].is_null());
  CHECK(assistant["tool_calls"][0] ==
        json::parse(R"({"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}})"));
  CHECK(assistant["tool_calls"][1]["function"]["arguments"] == "{}");
  CHECK(b["messages"][3] == json{{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", R"({"temp_c":18})"}});
  CHECK(b["tools"][0]["type"] == "function");
  CHECK(b["tools"][0]["function"]["name"] == "get_weather");
  CHECK(b["tools"][0]["function"]["description"] == "Current weather for a city");
  CHECK(b["tools"][0]["function"]["parameters"]["required"] == json::array({"city"}));
  CHECK_FALSE(b["tools"][1]["function"].contains("description"));
  for (const char* absent : {"reasoning_effort", "max_completion_tokens", "max_tokens", "response_format", "stream",
                             "stream_options"}) {
    CHECK_MESSAGE(!b.contains(absent), absent);
  }
}

TEST_CASE("openai request maps reasoning max tokens json mode and streaming") {
  struct Case {
    const char* provider;
    Reasoning reasoning;
    std::optional<std::int64_t> max_tokens;
    bool json_output;
    bool stream;
    const char* effort;         // nullptr: absent
    const char* max_field;      // nullptr: neither max field
  };
  const Case cases[] = {
      {"openai", Reasoning::kHigh, 500, true, true, "high", "max_completion_tokens"},
      {"openai", Reasoning::kLow, std::nullopt, false, false, "low", nullptr},
      {"openai", Reasoning::kDefault, 64, false, true, nullptr, "max_completion_tokens"},
      {"openai-compatible", Reasoning::kMedium, 300, true, false, "medium", "max_tokens"},
      {"openai-compatible", Reasoning::kDefault, std::nullopt, false, true, nullptr, nullptr},
  };
  for (const Case& c : cases) {
    INFO(c.provider << " effort " << (c.effort ? c.effort : "-") << " stream " << c.stream);
    ModelRequest request = plain_request();
    request.reasoning.level = c.reasoning;
    request.max_output_tokens = c.max_tokens;
    if (c.json_output) request.output_format.type = OutputFormat::Type::kJsonObject;
    const HttpRequest r = built(*wire_for(c.provider), request, c.stream);
    const json b = body_of(r);
    if (c.effort) {
      CHECK(b["reasoning_effort"] == c.effort);
    } else {
      CHECK_FALSE(b.contains("reasoning_effort"));
    }
    for (const char* field : {"max_completion_tokens", "max_tokens"}) {
      if (c.max_field && std::string(field) == c.max_field) {
        CHECK(b[field] == *c.max_tokens);
      } else {
        CHECK_FALSE(b.contains(field));
      }
    }
    if (c.json_output) {
      CHECK(b["response_format"] == json{{"type", "json_object"}});
    } else {
      CHECK_FALSE(b.contains("response_format"));
    }
    if (c.stream) {
      CHECK(b["stream"] == true);
      CHECK(b["stream_options"]["include_usage"] == true);
      CHECK(header(r, "Accept") == "text/event-stream");
    } else {
      CHECK_FALSE(b.contains("stream"));
    }
  }
}

TEST_CASE("openai-compatible request without a key sends no authorization") {
  const HttpRequest r = built(*wire_for("openai-compatible", ""), plain_request());
  CHECK(r.url == "http://127.0.0.1:8000/v1/chat/completions");
  CHECK_FALSE(header(r, "Authorization"));
}

TEST_CASE("anthropic request puts system on top and tool results in one user turn") {
  const HttpRequest r = built(*wire_for("anthropic"), tool_request(), /*stream=*/true);
  CHECK(r.url == "https://api.anthropic.com/v1/messages");
  CHECK(header(r, "x-api-key") == kKey);
  CHECK(header(r, "anthropic-version") == "2023-06-01");
  CHECK_FALSE(header(r, "Authorization"));
  const json b = body_of(r);
  CHECK(b["model"] == "claude-sonnet-4-5");
  CHECK(b["system"] == "You are terse.");
  CHECK(b["max_tokens"] == 64000);  // no cap asked for: the model's max_output_tokens
  CHECK(b["stream"] == true);
  CHECK_FALSE(b.contains("thinking"));
  REQUIRE(b["messages"].size() == 3);
  CHECK(b["messages"][0] ==
        json::parse(R"({"role":"user","content":[{"type":"text","text":"Weather and time in Paris?"}]})"));
  CHECK(b["messages"][1] == json::parse(R"({"role":"assistant","content":[
      {"type":"tool_use","id":"call_1","name":"get_weather","input":{"city":"Paris"}},
      {"type":"tool_use","id":"call_2","name":"get_time","input":{}}]})"));
  CHECK(b["messages"][2] == json::parse(R"({"role":"user","content":[
      {"type":"tool_result","tool_use_id":"call_1","content":[{"type":"text","text":"{\"temp_c\":18}"}]},
      {"type":"tool_result","tool_use_id":"call_2","content":[{"type":"text","text":"14:05"}]}]})"));
  CHECK(b["tools"][0] == json::parse(R"({"name":"get_weather","description":"Current weather for a city",
      "input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}})"));
}

TEST_CASE("anthropic thinking budget comes from the level and is taken from inside max_tokens") {
  struct Case {
    Reasoning reasoning;
    std::optional<std::int64_t> max_tokens;
    std::int64_t budget;  // 0: no thinking
    std::int64_t expected_max_tokens;
  };
  const Case cases[] = {
      {Reasoning::kDefault, std::nullopt, 0, 64000},
      {Reasoning::kDefault, 200, 0, 200},
      {Reasoning::kLow, 5000, 1024, 5000},
      {Reasoning::kMedium, std::nullopt, 4096, 64000},
      {Reasoning::kHigh, 20000, 16384, 20000},
  };
  for (const Case& c : cases) {
    INFO("budget " << c.budget);
    ModelRequest request = plain_request();
    request.reasoning.level = c.reasoning;
    request.max_output_tokens = c.max_tokens;
    const json b = body_of(built(*wire_for("anthropic"), request));
    CHECK(b["max_tokens"] == c.expected_max_tokens);
    if (c.budget == 0) {
      CHECK_FALSE(b.contains("thinking"));
    } else {
      CHECK(b["thinking"] == json{{"type", "enabled"}, {"budget_tokens", c.budget}});
      CHECK(b["max_tokens"].get<std::int64_t>() > b["thinking"]["budget_tokens"].get<std::int64_t>());
    }
  }
}

TEST_CASE("anthropic json output is asked for in the system prompt") {
  ModelRequest request = plain_request();
  request.output_format.type = OutputFormat::Type::kJsonObject;
  const json b = body_of(built(*wire_for("anthropic"), request));
  const std::string system = b["system"];
  CHECK(system.starts_with("You review contracts.\n\n"));
  CHECK(system.find("JSON object") != std::string::npos);
  CHECK_FALSE(b.contains("response_format"));
}

TEST_CASE("gemini request uses user and model roles with function parts") {
  auto wire = wire_for("gemini");
  const HttpRequest r = built(*wire, tool_request());
  CHECK(r.url == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:generateContent");
  CHECK(built(*wire, tool_request(), true).url ==
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse");
  CHECK(header(r, "x-goog-api-key") == kKey);
  CHECK(r.url.find(kKey) == std::string::npos);
  const json b = body_of(r);
  CHECK(b["systemInstruction"] == json::parse(R"({"parts":[{"text":"You are terse."}]})"));
  CHECK(b["contents"] == json::parse(R"([
      {"role":"user","parts":[{"text":"Weather and time in Paris?"}]},
      {"role":"model","parts":[{"functionCall":{"id":"call_1","name":"get_weather","args":{"city":"Paris"}}},
                               {"functionCall":{"id":"call_2","name":"get_time","args":{}}}]},
      {"role":"user","parts":[{"functionResponse":{"id":"call_1","name":"get_weather","response":{"temp_c":18}}},
                              {"functionResponse":{"id":"call_2","name":"get_time","response":{"result":"14:05"}}}]}])"));
  CHECK(b["tools"] == json::parse(R"([{"functionDeclarations":[
      {"name":"get_weather","description":"Current weather for a city",
       "parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}},
      {"name":"get_time"}]}])"));
  CHECK_FALSE(b.contains("generationConfig"));
}

TEST_CASE("gemini generation config carries max tokens json mode and the thinking budget") {
  struct Case {
    Reasoning reasoning;
    std::optional<std::int64_t> max_tokens;
    bool json_output;
    const char* expected;  // generationConfig
  };
  const Case cases[] = {
      {Reasoning::kLow, 2048, false,
       R"({"maxOutputTokens":2048,"thinkingConfig":{"thinkingBudget":1024,"includeThoughts":true}})"},
      {Reasoning::kHigh, std::nullopt, true,
       R"({"responseMimeType":"application/json","thinkingConfig":{"thinkingBudget":16384,"includeThoughts":true}})"},
      {Reasoning::kDefault, 100, true, R"({"maxOutputTokens":100,"responseMimeType":"application/json"})"},
  };
  for (const Case& c : cases) {
    INFO(c.expected);
    ModelRequest request = plain_request();
    request.reasoning.level = c.reasoning;
    request.max_output_tokens = c.max_tokens;
    if (c.json_output) request.output_format.type = OutputFormat::Type::kJsonObject;
    const json b = body_of(built(*wire_for("gemini"), request));
    CHECK(b["generationConfig"] == json::parse(c.expected));
  }
}

TEST_CASE("gemini tool result without a tool name takes its call's, and is refused when no call names it") {
  ModelRequest request = tool_request();
  request.messages[3].content[0].tool_name.clear();
  const json b = body_of(built(*wire_for("gemini"), request));
  CHECK(b["contents"][2]["parts"][0]["functionResponse"]["name"] == "get_weather");
  request.messages[3].content[0].tool_use_id = "call_unknown";
  Result<HttpRequest> r = wire_for("gemini")->build_request(request, false);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kUpstream);
  CHECK(r.status().message().find("tool_name") != std::string::npos);
}

TEST_CASE("request errors name the bad field and never the key") {
  for (const char* provider : {"openai", "anthropic", "gemini"}) {
    INFO(provider);
    ModelRequest request = plain_request();
    request.tools.push_back(ToolSpec::of_function("lookup", "", "not json"));
    Result<HttpRequest> r = wire_for(provider)->build_request(request, false);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kInvalidArgument);
    CHECK(r.status().message() == "tool 'lookup' parameters is not a JSON object");
    CHECK(r.status().message().find(kKey) == std::string::npos);

    request = plain_request();
    request.messages.push_back(Message::of_text("robot", "hi"));
    r = wire_for(provider)->build_request(request, false);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message() == "message 3: unknown role 'robot'");
  }
}

// ---- whole responses -------------------------------------------------------

TEST_CASE("whole responses parse into text tool calls finish reason and usage") {
  struct Case {
    const char* name;
    const char* provider;
    const char* body;
    std::string text;
    std::vector<ToolCall> calls;  // arguments compared as JSON
    std::string finish_reason;
    Usage usage;
    std::string model;
  };
  const Case cases[] = {
      {"openai cached and reasoning", "openai", R"json({
  "id": "chatcmpl-CEm3Zx1Qw9Rt5Yp2Lk7Jh4Gf6Ds8A", "object": "chat.completion", "created": 1763790000,
  "model": "o4-mini-2025-04-16",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": "Take the lock around read-modify-write.",
               "refusal": null, "annotations": []}, "logprobs": null, "finish_reason": "stop"}],
  "usage": {"prompt_tokens": 800, "completion_tokens": 2400, "total_tokens": 3200,
            "prompt_tokens_details": {"cached_tokens": 512, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 1856, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
  "service_tier": "default", "system_fingerprint": null})json",
       "Take the lock around read-modify-write.", {}, "stop", usage_of(288, 512, 0, 0, 544, 1856), "o4-mini-2025-04-16"},
      {"openai tool calls", "openai", R"json({
  "id": "chatcmpl-CF1", "object": "chat.completion", "created": 1763790100, "model": "gpt-4.1-2025-04-14",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "refusal": null, "annotations": [],
     "tool_calls": [{"id": "call_Qx1", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
     "logprobs": null, "finish_reason": "tool_calls"}],
  "usage": {"prompt_tokens": 90, "completion_tokens": 18, "total_tokens": 108}})json",
       "", {{"call_Qx1", "get_weather", R"({"city":"Paris"})"}}, "tool_calls", usage_of(90, 0, 0, 0, 18, 0),
       "gpt-4.1-2025-04-14"},
      {"openai cut at the limit", "openai", R"json({
  "id": "chatcmpl-CF2", "object": "chat.completion", "model": "qwen3-32b",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": "The first"}, "finish_reason": "length"}],
  "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14}})json",
       "The first", {}, "length", usage_of(12, 0, 0, 0, 2, 0), "qwen3-32b"},
      {"anthropic thinking and cache read", "anthropic", R"json({
  "id": "msg_01Hq8yXzT3vN6bR2wK9pLm4S", "type": "message", "role": "assistant",
  "model": "claude-sonnet-4-5-20250929",
  "content": [{"type": "thinking", "thinking": "Clause 14.2 is the cap.", "signature": "EqQBCgIYAh"},
              {"type": "text", "text": "Clause 14.2 caps liability at the fees paid in the prior 12 months."}],
  "stop_reason": "end_turn", "stop_sequence": null,
  "usage": {"input_tokens": 320, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 9800,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 250, "service_tier": "standard"}})json",
       "Clause 14.2 caps liability at the fees paid in the prior 12 months.", {}, "stop",
       usage_of(320, 9800, 0, 0, 250, 0), "claude-sonnet-4-5-20250929"},
      {"anthropic tool use", "anthropic", R"json({
  "id": "msg_02", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001",
  "content": [{"type": "text", "text": "Checking."},
              {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}}],
  "stop_reason": "tool_use", "stop_sequence": null,
  "usage": {"input_tokens": 400, "cache_creation_input_tokens": 2000, "cache_read_input_tokens": 0,
            "output_tokens": 60}})json",
       "Checking.", {{"toolu_01A", "get_weather", R"({"city":"Paris"})"}}, "tool_calls",
       usage_of(400, 0, 2000, 0, 60, 0), "claude-haiku-4-5-20251001"},
      {"anthropic max tokens", "anthropic", R"json({
  "id": "msg_03", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
  "content": [{"type": "text", "text": "In short"}], "stop_reason": "max_tokens", "stop_sequence": null,
  "usage": {"input_tokens": 10, "output_tokens": 2}})json",
       "In short", {}, "length", usage_of(10, 0, 0, 0, 2, 0), "claude-sonnet-4-5-20250929"},
      {"gemini thoughts and cache", "gemini", R"json({
  "candidates": [{"content": {"parts": [{"text": "Solve for x first.", "thought": true},
                                        {"text": "x = 7 satisfies both equations."}], "role": "model"},
                  "finishReason": "STOP", "index": 0}],
  "usageMetadata": {"promptTokenCount": 1500, "candidatesTokenCount": 600, "totalTokenCount": 4300,
                    "thoughtsTokenCount": 2200, "cachedContentTokenCount": 1024},
  "modelVersion": "gemini-2.5-pro", "responseId": "z90gaK2PMe2Az7IPpNfHgQ0"})json",
       "x = 7 satisfies both equations.", {}, "stop", usage_of(476, 1024, 0, 0, 600, 2200), "gemini-2.5-pro"},
      {"gemini function call", "gemini", R"json({
  "candidates": [{"content": {"parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}],
                              "role": "model"}, "finishReason": "STOP", "index": 0}],
  "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 15, "totalTokenCount": 135},
  "modelVersion": "gemini-2.5-flash", "responseId": "r2"})json",
       "", {{"", "get_weather", R"({"city":"Paris"})"}}, "tool_calls", usage_of(120, 0, 0, 0, 15, 0),
       "gemini-2.5-flash"},
      {"gemini safety", "gemini", R"json({
  "candidates": [{"finishReason": "SAFETY", "index": 0,
                  "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}]}],
  "usageMetadata": {"promptTokenCount": 40, "totalTokenCount": 40}, "modelVersion": "gemini-2.5-flash"})json",
       "", {}, "content_filter", usage_of(40, 0, 0, 0, 0, 0), "gemini-2.5-flash"},
      {"gemini blocked prompt", "gemini", R"json({
  "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
  "usageMetadata": {"promptTokenCount": 33, "totalTokenCount": 33}, "modelVersion": "gemini-2.5-flash"})json",
       "", {}, "content_filter", usage_of(33, 0, 0, 0, 0, 0), "gemini-2.5-flash"},
      {"gemini max tokens", "gemini", R"json({
  "candidates": [{"content": {"parts": [{"text": "Partial"}], "role": "model"}, "finishReason": "MAX_TOKENS"}],
  "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 1}, "modelVersion": "gemini-2.5-flash"})json",
       "Partial", {}, "length", usage_of(8, 0, 0, 0, 1, 0), "gemini-2.5-flash"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    Result<ModelResponse> r = wire_for(c.provider)->parse_response(c.body);
    REQUIRE_MESSAGE(r.ok(), r.status().to_string());
    CHECK(r->text() == c.text);
    CHECK(openai_finish_reason(r->stop_reason) == c.finish_reason);
    CHECK(r->usage == c.usage);
    CHECK(r->model == c.model);
    const std::vector<ToolCall> calls = r->tool_calls();
    REQUIRE(calls.size() == c.calls.size());
    for (std::size_t i = 0; i < c.calls.size(); ++i) {
      CHECK(calls[i].id == c.calls[i].id);
      CHECK(calls[i].name == c.calls[i].name);
      CHECK(json::parse(calls[i].arguments_json) == json::parse(c.calls[i].arguments_json));
    }
  }
}

TEST_CASE("unreadable bodies are upstream errors that say what is wrong") {
  struct Case {
    const char* provider;
    const char* body;
    const char* message;
  };
  const Case cases[] = {
      {"openai", "<html>502 Bad Gateway</html>", "body is not valid JSON"},
      {"openai", "[1,2]", "body is not a JSON object"},
      {"openai", R"({"id":"x","choices":[]})", "body has no 'choices'"},
      {"openai", R"({"choices":[{"message":{"content":"hi"},"finish_reason":"stop"}]})",
       "OpenAI response: no 'usage' object (a streamed chat completion carries it only with "
       "stream_options.include_usage)"},
      {"anthropic", R"({"type":"message","usage":{"input_tokens":1,"output_tokens":1}})", "body has no 'content' array"},
      {"anthropic", R"({"content":[],"usage":{"input_tokens":-1,"output_tokens":1}})",
       "Anthropic response: 'usage.input_tokens' must not be negative (got -1)"},
      {"gemini", R"({"usageMetadata":{"promptTokenCount":1}})", "body has no 'candidates'"},
  };
  for (const Case& c : cases) {
    INFO(c.provider << " " << c.body);
    Result<ModelResponse> r = wire_for(c.provider)->parse_response(c.body);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kUpstream);
    CHECK(r.status().message() == c.message);
  }
}

TEST_CASE("error bodies yield the provider's own message") {
  struct Case {
    const char* provider;
    const char* body;
    const char* message;
  };
  const Case cases[] = {
      {"openai", R"json({"error": {"message": "Rate limit reached for gpt-4.1 on tokens per min (TPM): Limit 30000, Used 30000.", "type": "tokens", "param": null, "code": "rate_limit_exceeded"}})json",
       "Rate limit reached for gpt-4.1 on tokens per min (TPM): Limit 30000, Used 30000. (tokens)"},
      {"openai-compatible", R"json({"object":"error","message":"max_tokens must be at least 1, got 0.","type":"BadRequestError","param":null,"code":400})json",
       "max_tokens must be at least 1, got 0. (BadRequestError)"},
      {"anthropic", R"json({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"})json",
       "Overloaded (overloaded_error)"},
      {"gemini", R"json({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}})json",
       "API key not valid. Please pass a valid API key. (INVALID_ARGUMENT)"},
      {"gemini", R"json([{"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED"}}])json",
       "Resource has been exhausted (e.g. check quota). (RESOURCE_EXHAUSTED)"},
      {"openai", "<html><body>502 Bad Gateway</body></html>", ""},
      {"anthropic", "", ""},
  };
  for (const Case& c : cases) {
    INFO(c.provider << " " << c.body);
    CHECK(wire::error_message_in(c.body) == c.message);
  }
}

// ---- streams ---------------------------------------------------------------

TEST_CASE("stream decoders deliver the text as it comes and the exact usage at the end") {
  struct Case {
    const char* name;
    const char* provider;
    const std::string* stream;
    std::string text;
    std::vector<ToolCall> calls;
    std::string finish_reason;
    Usage usage;
    std::string model;
  };
  const Case cases[] = {
      {"openai text", "openai", &kOpenAIStream, "Clause 14.2 caps liability — at 12 months’ fees.", {}, "stop",
       usage_of(176, 1024, 0, 0, 172, 128), "gpt-4.1-2025-04-14"},
      {"openai tool calls", "openai", &kOpenAIToolStream, "",
       {{"call_Qx1", "get_weather", R"({"city":"Paris"})"}, {"call_Rt2", "get_time", "{}"}}, "tool_calls",
       usage_of(90, 0, 0, 0, 38, 0), "gpt-4.1-2025-04-14"},
      {"anthropic thinking text and tool use", "anthropic", &kAnthropicStream,
       "Clause 14.2 caps liability; let me check 14.3.",
       {{"toolu_01T1x1fJ34qAmk2tNTrN7Up6", "lookup_clause", R"({"clause":"14.3"})"}}, "tool_calls",
       usage_of(320, 9800, 0, 0, 250, 0), "claude-sonnet-4-5-20250929"},
      {"gemini crlf", "gemini", &kGeminiStream, "x = 7 satisfies both equations: 3(7) - 4 = 17.", {}, "stop",
       usage_of(476, 1024, 0, 0, 600, 2200), "gemini-2.5-pro"},
  };
  std::mt19937 rng(7);
  for (const Case& c : cases) {
    for (int round = 0; round < 20; ++round) {
      INFO(c.name << " round " << round);
      Decoded d = decode(c.provider, *c.stream, round == 0 ? std::vector<std::size_t>{} : random_cuts(c.stream->size(), rng));
      REQUIRE_MESSAGE(d.response.ok(), d.response.status().to_string());
      const ModelResponse& r = *d.response;
      CHECK(d.chunks == c.text);
      CHECK(r.text() == c.text);
      CHECK(openai_finish_reason(r.stop_reason) == c.finish_reason);
      CHECK(r.usage == c.usage);
      CHECK(r.model == c.model);
      const std::vector<ToolCall> calls = r.tool_calls();
      REQUIRE(calls.size() == c.calls.size());
      for (std::size_t i = 0; i < c.calls.size(); ++i) {
        CHECK(calls[i].id == c.calls[i].id);
        CHECK(calls[i].name == c.calls[i].name);
        CHECK(json::parse(calls[i].arguments_json) == json::parse(c.calls[i].arguments_json));
      }
    }
  }
}

TEST_CASE("a stream cut anywhere before its final event is unavailable") {
  const std::pair<const char*, const std::string*> streams[] = {
      {"openai", &kOpenAIStream}, {"openai", &kOpenAIToolStream}, {"anthropic", &kAnthropicStream},
      {"gemini", &kGeminiStream}};
  for (const auto& [provider, stream] : streams) {
    // Every prefix that stops short of the final event's blank line.
    for (std::size_t cut = 0; cut < stream->size() - 1; ++cut) {
      Decoded d = decode(provider, std::string_view(*stream).substr(0, cut));
      INFO(provider << " cut at " << cut);
      REQUIRE_FALSE(d.response.ok());
      CHECK(d.response.status().code() == Status::Code::kUnavailable);
      CHECK(d.response.status().message() == "stream ended before its final event");
    }
  }
}

TEST_CASE("anthropic error event mid-stream is unavailable only when the API is overloaded") {
  const std::string start = R"sse(event: message_start
data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"usage":{"input_tokens":12,"output_tokens":1}}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}

)sse";
  struct Case {
    const char* event;
    Status::Code code;
    const char* message;
  };
  const Case cases[] = {
      {R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})", Status::Code::kUnavailable,
       "stream error: Overloaded (overloaded_error)"},
      {R"({"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long"}})",
       Status::Code::kUpstream, "stream error: prompt is too long (invalid_request_error)"},
  };
  for (const Case& c : cases) {
    INFO(c.message);
    Decoded d = decode("anthropic", start + "event: error\ndata: " + c.event + "\n\n");
    REQUIRE_FALSE(d.response.ok());
    CHECK(d.chunks == "Hel");
    CHECK(d.response.status().code() == c.code);
    CHECK(d.response.status().message() == c.message);
  }
}

TEST_CASE("anthropic stream usage takes message_delta's cumulative counts over message_start's") {
  const std::string stream = R"sse(event: message_start
data: {"type":"message_start","message":{"model":"claude-sonnet-4-5-20250929","usage":{"input_tokens":5,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":2048,"cache_creation_input_tokens":1000,"cache_read_input_tokens":300,"output_tokens":90,"server_tool_use":null}}

event: message_stop
data: {"type":"message_stop"}

)sse";
  Decoded d = decode("anthropic", stream);
  REQUIRE_MESSAGE(d.response.ok(), d.response.status().to_string());
  CHECK(d.response->usage == usage_of(2048, 300, 1000, 0, 90, 0));
  CHECK(openai_finish_reason(d.response->stop_reason) == "stop");
}

TEST_CASE("openai stream that ends without usage is an upstream error") {
  const std::string stream =
      R"sse(data: {"id":"c","object":"chat.completion.chunk","model":"qwen3-32b","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}

data: [DONE]

)sse";
  Decoded d = decode("openai-compatible", stream);
  REQUIRE_FALSE(d.response.ok());
  CHECK(d.response.status().code() == Status::Code::kUpstream);
  CHECK(d.response.status().message().find("stream carried no usage") == 0);
  CHECK(d.chunks == "hi");
}

}  // TEST_SUITE("wire_format")
