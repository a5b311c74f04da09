// The Anthropic Messages adapter (anthropic_wire.cpp) against golden shapes:
// the request bodies it must build for every field of the canonical request,
// the answers and event streams of the real API it must read (recorded
// shapes, inline), and the requests it must refuse with a reason.
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

ModelSpec claude() {
  ModelSpec m;
  m.name = m.model_id = "claude-sonnet-4-5";
  m.provider = "anthropic";
  m.endpoint = "https://api.anthropic.com";
  m.max_output_tokens = 32000;  // budgets stay at their defaults: 1024 / 4096 / 16384
  return m;
}

std::unique_ptr<WireFormat> wire() { return make_anthropic_wire(claude(), "sk-ant-test-key"); }

HttpRequest built(const ModelRequest& request, bool stream = false) {
  Result<HttpRequest> r = wire()->build_request(request, stream);
  REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  return *r;
}

json body_of(const ModelRequest& request) { return json::parse(built(request).body); }

// The status build_request fails with; REQUIRES that it fails.
Status refusal(const ModelRequest& request) {
  Result<HttpRequest> r = wire()->build_request(request, false);
  REQUIRE_FALSE(r.ok());
  return r.status();
}

std::optional<std::string> header(const HttpRequest& r, const std::string& name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return std::nullopt;
}

ContentBlock block(Type type) {
  ContentBlock b;
  b.type = type;
  return b;
}

ContentBlock media(Type type, MediaSource::Kind kind, std::string media_type, std::string data) {
  ContentBlock b = block(type);
  b.source = {kind, std::move(media_type), std::move(data)};
  return b;
}

ContentBlock thinking(std::string text, std::string signature, std::string origin) {
  ContentBlock b = block(Type::kThinking);
  b.text = std::move(text);
  b.signature = std::move(signature);
  b.origin = std::move(origin);
  return b;
}


ModelRequest ask(std::string text) {
  ModelRequest r;
  r.messages.push_back(Message::of_text("user", std::move(text)));
  return r;
}

ToolSpec tool(std::string name) {
  ToolSpec t;
  t.name = std::move(name);
  return t;
}

// One delivered chunk, with its views copied.
struct Chunk {
  StreamChunk::Kind kind;
  int index;
  std::string text, id, name;
  bool operator==(const Chunk&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Chunk& c) {
  return os << "{kind " << static_cast<int>(c.kind) << ", index " << c.index << ", '" << c.text << "', '" << c.id
            << "', '" << c.name << "'}";
}

struct Decoded {
  Result<ModelResponse> response = Status::internal("not decoded");
  std::vector<Chunk> chunks;
  std::vector<std::string> origins;  // each chunk's origin
};

Decoded decode(std::string_view stream) {
  auto decoder = wire()->stream_decoder();
  Decoded out;
  Status error;
  SseParser parser;
  parser.feed(stream, [&](const SseEvent& e) {
    error = decoder->on_event(e, [&](const StreamChunk& c) {
      CHECK_FALSE(c.restart);
      out.chunks.push_back({c.kind, c.index, std::string(c.text), std::string(c.id), std::string(c.name)});
      out.origins.emplace_back(c.origin);
    });
    return error.ok();
  });
  out.response = error.ok() ? decoder->finish() : Result<ModelResponse>(error);
  return out;
}

ModelResponse parsed(std::string_view body) {
  Result<ModelResponse> r = wire()->parse_response(body);
  REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  return *r;
}

}  // namespace

TEST_SUITE("anthropic_wire") {

// ---- requests ----------------------------------------------------------------

TEST_CASE("every block, tool, choice and sampling field reaches the Messages API in its shape") {
  ModelRequest r;
  ContentBlock system = ContentBlock::of_text("You review contracts.");
  system.cache = CacheBreakpoint{"1h"};
  r.messages.push_back(Message::of("system", {system}));
  r.messages.push_back(Message::of_text("system", "Be terse."));

  ContentBlock url_image = media(Type::kImage, MediaSource::Kind::kUrl, "", "https://example.com/chart.png");
  url_image.detail = "high";
  ContentBlock pdf = media(Type::kDocument, MediaSource::Kind::kBase64, "application/pdf", "JVBERi0x");
  pdf.title = "Contract";
  ContentBlock notes =
      media(Type::kDocument, MediaSource::Kind::kBase64, "text/plain", "Q2xhdXNlIDE0OiBsaWFiaWxpdHkgaXMgY2FwcGVkLg==");
  notes.title = "Notes";
  ContentBlock file = media(Type::kDocument, MediaSource::Kind::kFileId, "", "file_011CNha8iCJcU1wXNR6q4V8w");
  file.origin = "anthropic";
  file.cache = CacheBreakpoint{};
  r.messages.push_back(Message::of("user", {ContentBlock::of_text("Compare these."),
                                        media(Type::kImage, MediaSource::Kind::kBase64, "image/png", "iVBORw0KGgo="),
                                        url_image, pdf, notes, file}));

  r.messages.push_back(Message::of("assistant", {thinking("Check clause 14 first.", "EqQBCgIYAh", "anthropic"),
                                             ContentBlock::of_text("Looking it up."),
                                             ContentBlock::of_tool_call({"toolu_01A", "lookup_clause",
                                                                         R"({"clause":"14"})"}),
                                             ContentBlock::of_tool_call({"toolu_01B", "get_time", ""})}));
  ContentBlock result = ContentBlock::of_tool_result("toolu_01A", "lookup_clause", "Liability capped at fees.");
  result.content.push_back(media(Type::kImage, MediaSource::Kind::kBase64, "image/jpeg", "/9j/4AAQ"));
  r.messages.push_back(Message::of("tool", {result}));
  r.messages.push_back(Message::of("tool", {ContentBlock::of_tool_result("toolu_01B", "get_time", "timeout", true)}));
  r.messages.push_back(Message::of_text("user", "Summarise."));

  ToolSpec lookup = tool("lookup_clause");
  lookup.description = "A contract clause by number";
  lookup.parameters_json = R"({"type":"object","properties":{"clause":{"type":"string"}},"required":["clause"]})";
  lookup.strict = true;
  lookup.cache = CacheBreakpoint{};
  ToolSpec search = tool("web_search");
  search.opaque_json = R"({"type":"web_search_20250305","name":"web_search","max_uses":3})";
  search.origin = "anthropic";
  r.tools = {lookup, tool("get_time"), search};
  r.tool_choice = ToolChoice{ToolChoice::Mode::kNamed, "lookup_clause"};
  r.parallel_tool_calls = false;
  r.sampling.temperature = 0.2;
  r.sampling.top_p = 0.9;
  r.sampling.top_k = 40;
  r.sampling.stop = {"END"};
  r.sampling.user = "user-7f3a";
  r.max_output_tokens = 2000;

  const HttpRequest http = built(r, /*stream=*/true);
  CHECK(http.url == "https://api.anthropic.com/v1/messages");
  CHECK(header(http, "anthropic-version") == "2023-06-01");
  CHECK(header(http, "anthropic-beta") == "files-api-2025-04-14");
  CHECK(header(http, "x-api-key") == "sk-ant-test-key");
  CHECK(header(http, "Accept") == "text/event-stream");
  const json expected = json::parse(R"json({
    "model": "claude-sonnet-4-5", "max_tokens": 2000,
    "system": [{"type": "text", "text": "You review contracts.", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
               {"type": "text", "text": "Be terse."}],
    "messages": [
      {"role": "user", "content": [
        {"type": "text", "text": "Compare these."},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/chart.png"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"},
         "title": "Contract"},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                        "data": "Clause 14: liability is capped."}, "title": "Notes"},
        {"type": "document", "source": {"type": "file", "file_id": "file_011CNha8iCJcU1wXNR6q4V8w"},
         "cache_control": {"type": "ephemeral"}}]},
      {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "Check clause 14 first.", "signature": "EqQBCgIYAh"},
        {"type": "text", "text": "Looking it up."},
        {"type": "tool_use", "id": "toolu_01A", "name": "lookup_clause", "input": {"clause": "14"}},
        {"type": "tool_use", "id": "toolu_01B", "name": "get_time", "input": {}}]},
      {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_01A", "content": [
          {"type": "text", "text": "Liability capped at fees."},
          {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}}]},
        {"type": "tool_result", "tool_use_id": "toolu_01B", "content": [{"type": "text", "text": "timeout"}],
         "is_error": true},
        {"type": "text", "text": "Summarise."}]}],
    "tools": [
      {"name": "lookup_clause", "description": "A contract clause by number",
       "input_schema": {"type": "object", "properties": {"clause": {"type": "string"}}, "required": ["clause"]},
       "cache_control": {"type": "ephemeral"}},
      {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
      {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
    "tool_choice": {"type": "tool", "name": "lookup_clause", "disable_parallel_tool_use": true},
    "temperature": 0.2, "top_p": 0.9, "top_k": 40, "stop_sequences": ["END"],
    "metadata": {"user_id": "user-7f3a"}, "stream": true
  })json");
  CHECK(json::parse(http.body) == expected);
}

TEST_CASE("a system prompt without cache breakpoints is one string and files need no beta header") {
  ModelRequest r = ask("Summarise clause 14.");
  r.messages.insert(r.messages.begin(), Message::of_text("system", "You review contracts."));
  r.messages.insert(r.messages.begin() + 1, Message::of_text("system", "Be terse."));
  const HttpRequest http = built(r);
  CHECK_FALSE(header(http, "anthropic-beta").has_value());
  CHECK(header(http, "Accept") == "application/json");
  const json b = json::parse(http.body);
  CHECK(b["system"] == "You review contracts.\n\nBe terse.");
  CHECK(b["max_tokens"] == 32000);  // no cap given: the model's maximum, as the API requires one
  CHECK_FALSE(b.contains("thinking"));
  CHECK_FALSE(b.contains("stream"));
  CHECK_FALSE(b.contains("tool_choice"));
}

TEST_CASE("tool choices map to auto, none, any and tool, and parallel calls can be turned off") {
  struct Case {
    std::optional<ToolChoice> choice;
    std::optional<bool> parallel;
    const char* expected;  // the tool_choice sent, or "" for none
  };
  const std::vector<Case> cases = {
      {std::nullopt, std::nullopt, ""},
      {std::nullopt, true, ""},
      {std::nullopt, false, R"({"type":"auto","disable_parallel_tool_use":true})"},
      {ToolChoice{ToolChoice::Mode::kAuto, ""}, std::nullopt, R"({"type":"auto"})"},
      {ToolChoice{ToolChoice::Mode::kNone, ""}, false, R"({"type":"none"})"},
      {ToolChoice{ToolChoice::Mode::kRequired, ""}, std::nullopt, R"({"type":"any"})"},
      {ToolChoice{ToolChoice::Mode::kRequired, ""}, false, R"({"type":"any","disable_parallel_tool_use":true})"},
      {ToolChoice{ToolChoice::Mode::kNamed, "get_time"}, std::nullopt, R"({"type":"tool","name":"get_time"})"},
  };
  for (const Case& c : cases) {
    ModelRequest r = ask("What time is it?");
    r.tools = {tool("get_time")};
    r.tool_choice = c.choice;
    r.parallel_tool_calls = c.parallel;
    const json b = body_of(r);
    CAPTURE(c.expected);
    if (*c.expected == '\0') {
      CHECK_FALSE(b.contains("tool_choice"));
    } else {
      CHECK(b["tool_choice"] == json::parse(c.expected));
    }
  }

  ModelRequest none_without_tools = ask("Hi");
  none_without_tools.tool_choice = ToolChoice{ToolChoice::Mode::kNone, ""};
  CHECK_FALSE(body_of(none_without_tools).contains("tool_choice"));
  ModelRequest required_without_tools = ask("Hi");
  required_without_tools.tool_choice = ToolChoice{ToolChoice::Mode::kRequired, ""};
  CHECK(refusal(required_without_tools).code() == Status::Code::kInvalidArgument);
}

TEST_CASE("thinking budget: a budget beats an effort beats the rules' level, inside the cap") {
  struct Case {
    const char* name;
    Reasoning level;
    std::optional<Effort> effort;
    std::optional<std::int64_t> budget;
    std::optional<std::int64_t> cap;
    std::int64_t max_tokens;
    std::int64_t thinking;  // 0: no thinking sent
  };
  const std::vector<Case> cases = {
      {"no reasoning", Reasoning::kDefault, std::nullopt, std::nullopt, std::nullopt, 32000, 0},
      {"the rules' level", Reasoning::kHigh, std::nullopt, std::nullopt, std::nullopt, 32000, 16384},
      {"the level inside the caller's cap", Reasoning::kMedium, std::nullopt, std::nullopt, 3000, 3000, 2999},
      {"a cap above the model's maximum", Reasoning::kDefault, std::nullopt, std::nullopt, 50000, 32000, 0},
      {"effort beats the level", Reasoning::kHigh, Effort::kLow, std::nullopt, std::nullopt, 32000, 1024},
      {"effort none turns it off", Reasoning::kHigh, Effort::kNone, std::nullopt, std::nullopt, 32000, 0},
      {"minimal is half of low, at least 1024", Reasoning::kDefault, Effort::kMinimal, std::nullopt, std::nullopt,
       32000, 1024},
      {"medium", Reasoning::kDefault, Effort::kMedium, std::nullopt, std::nullopt, 32000, 4096},
      {"xhigh is twice high, below the cap", Reasoning::kDefault, Effort::kXHigh, std::nullopt, std::nullopt, 32000,
       31999},
      {"a budget beats the effort", Reasoning::kLow, Effort::kHigh, 5000, std::nullopt, 32000, 5000},
      {"a budget of 0 turns it off", Reasoning::kHigh, std::nullopt, 0, 8000, 8000, 0},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    ModelRequest r = ask("Prove it.");
    r.reasoning = {c.level, c.effort, c.budget};
    r.max_output_tokens = c.cap;
    const json b = body_of(r);
    CHECK(b["max_tokens"] == c.max_tokens);
    if (c.thinking == 0) {
      CHECK_FALSE(b.contains("thinking"));
    } else {
      CHECK(b["thinking"] == json{{"type", "enabled"}, {"budget_tokens", c.thinking}});
    }
  }
}

TEST_CASE("the rules' level asks a model without thinking for none") {
  ModelSpec haiku = claude();
  haiku.capabilities.thinking = false;
  ModelRequest r = ask("Prove it.");
  r.reasoning.level = Reasoning::kHigh;
  Result<HttpRequest> http = make_anthropic_wire(haiku, "")->build_request(r, false);
  REQUIRE(http.ok());
  const json b = json::parse(http->body);
  CHECK_FALSE(b.contains("thinking"));
  CHECK(b["max_tokens"] == 32000);
  CHECK(body_of(r)["thinking"]["budget_tokens"] == 16384);  // the same request, to a model that thinks
}

TEST_CASE("a thinking budget the cap cannot hold is refused, not shrunk below the API's minimum") {
  ModelRequest small_cap = ask("Prove it.");
  small_cap.reasoning.level = Reasoning::kHigh;
  small_cap.max_output_tokens = 1000;
  Status s = refusal(small_cap);
  CHECK(s.code() == Status::Code::kUpstream);
  CHECK(s.message() == "cannot take a thinking budget of 16384 with max_tokens 1000 "
                       "(Anthropic needs 1024 <= budget_tokens < max_tokens)");

  ModelRequest small_budget = ask("Prove it.");
  small_budget.reasoning.budget_tokens = 500;
  CHECK(refusal(small_budget).message().starts_with("cannot take a thinking budget of 500 with max_tokens 32000"));
}

TEST_CASE("the rules' thinking yields to a forced tool or sampling, and the caller's own thinking is refused with them") {
  ModelRequest forced = ask("Look up clause 14.");
  forced.tools = {tool("lookup_clause")};
  forced.tool_choice = ToolChoice{ToolChoice::Mode::kRequired, ""};
  forced.reasoning.level = Reasoning::kHigh;
  json b = body_of(forced);
  CHECK_FALSE(b.contains("thinking"));
  CHECK(b["tool_choice"] == json{{"type", "any"}});

  forced.reasoning.effort = Effort::kHigh;
  Status s = refusal(forced);
  CHECK(s.code() == Status::Code::kUpstream);
  CHECK(s.message().starts_with("cannot take thinking with a forced tool call ("));

  ModelRequest cool = ask("Write a haiku.");
  cool.sampling.temperature = 0.3;
  cool.reasoning.level = Reasoning::kMedium;
  b = body_of(cool);
  CHECK_FALSE(b.contains("thinking"));
  CHECK(b["temperature"] == 0.3);
  cool.reasoning.budget_tokens = 2048;
  CHECK(refusal(cool).message().starts_with("cannot take thinking with temperature 0.3 ("));

  // What the API takes with thinking: temperature 1, top_p from 0.95, tool choice auto.
  ModelRequest fine = ask("Write a haiku.");
  fine.sampling.temperature = 1.0;
  fine.sampling.top_p = 0.95;
  fine.tools = {tool("lookup_clause")};
  fine.tool_choice = ToolChoice{ToolChoice::Mode::kAuto, ""};
  fine.reasoning.effort = Effort::kMedium;
  b = body_of(fine);
  CHECK(b["thinking"]["budget_tokens"] == 4096);
  CHECK(b["temperature"] == 1.0);

  ModelRequest top_k = ask("Write a haiku.");
  top_k.sampling.top_k = 5;
  top_k.reasoning.effort = Effort::kLow;
  CHECK(refusal(top_k).message().starts_with("cannot take thinking with top_k ("));
  fine.sampling.top_p = 0.9;
  CHECK(refusal(fine).message().starts_with("cannot take thinking with top_p 0.9 ("));
}

TEST_CASE("thinking is sent in a tool loop only when the turn began with Anthropic's own thinking") {
  auto loop = [](std::vector<ContentBlock> first_answer) {
    ModelRequest r = ask("Weather in Paris?");
    r.tools = {tool("get_weather")};
    r.messages.push_back(Message::of("assistant", std::move(first_answer)));
    r.messages.push_back(Message::of("tool", {ContentBlock::of_tool_result("call_1", "get_weather", "18 C")}));
    return r;
  };
  const ContentBlock call = ContentBlock::of_tool_call({"call_1", "get_weather", R"({"city":"Paris"})"});

  // Another provider began the turn: its reasoning is not sent, so Claude may not think in it.
  ModelRequest foreign = loop({thinking("Paris, so weather.", "", "openai"), call});
  foreign.reasoning.level = Reasoning::kHigh;
  CHECK_FALSE(body_of(foreign).contains("thinking"));
  foreign.reasoning.effort = Effort::kHigh;
  CHECK(refusal(foreign).message().starts_with(
      "cannot take thinking with a tool loop whose turn began without Anthropic thinking ("));

  // Claude's own loop: it thought once at the start of the turn, not again after the results.
  ModelRequest own = loop({thinking("Paris, so weather.", "EqQBCgIYAh", "anthropic"), call});
  own.messages.push_back(
      Message::of("assistant", {ContentBlock::of_tool_call({"call_2", "get_weather", R"({"city":"Lyon"})"})}));
  own.messages.push_back(Message::of("tool", {ContentBlock::of_tool_result("call_2", "get_weather", "21 C")}));
  own.reasoning.effort = Effort::kHigh;
  CHECK(body_of(own)["thinking"]["budget_tokens"] == 16384);

  // Once the loop ended and the user spoke, a new turn begins: thinking may start it.
  ModelRequest next = loop({call});
  next.messages.push_back(Message::of("assistant", {ContentBlock::of_text("18 C in Paris.")}));
  next.messages.push_back(Message::of_text("user", "And tomorrow?"));
  next.reasoning.effort = Effort::kHigh;
  CHECK(body_of(next)["thinking"]["budget_tokens"] == 16384);
}

TEST_CASE("fields the Messages API cannot express are refused with the reason") {
  struct Case {
    const char* name;
    ModelRequest request;
    const char* message;
  };
  std::vector<Case> cases;
  auto add = [&](const char* name, auto change, const char* message) {
    ModelRequest r = ask("Hi");
    change(r);
    cases.push_back({name, std::move(r), message});
  };
  add("seed", [](ModelRequest& r) { r.sampling.seed = 7; }, "cannot take a seed (the Messages API has no seed)");
  add("name", [](ModelRequest& r) { r.messages[0].name = "alice"; },
      "cannot take the name 'alice' on message 1 (the Messages API has no participant names)");
  add("presence", [](ModelRequest& r) { r.sampling.presence_penalty = 0.5; },
      "cannot take a presence penalty (the Messages API has no penalties)");
  add("frequency", [](ModelRequest& r) { r.sampling.frequency_penalty = 0.5; },
      "cannot take a frequency penalty (the Messages API has no penalties)");
  add("logprobs", [](ModelRequest& r) { r.sampling.logprobs = true; },
      "cannot take logprobs (the Messages API returns no log probabilities)");
  add("temperature", [](ModelRequest& r) { r.sampling.temperature = 1.5; },
      "cannot take temperature 1.5 (Anthropic's range is 0 to 1)");
  add("audio", [](ModelRequest& r) {
        r.messages[0].content.push_back(media(Type::kAudio, MediaSource::Kind::kBase64, "audio/wav", "UklGRg=="));
      },
      "cannot take audio in message 1 (the Messages API takes no audio)");
  add("audio in a tool result", [](ModelRequest& r) {
        ContentBlock result = ContentBlock::of_tool_result("toolu_1", "record", "");
        result.content = {media(Type::kAudio, MediaSource::Kind::kBase64, "audio/wav", "UklGRg==")};
        r.messages.push_back(Message::of("tool", {result}));
      },
      "cannot take audio in a tool result in message 2 (the Messages API takes no audio)");
  add("another provider's file", [](ModelRequest& r) {
        ContentBlock file = media(Type::kImage, MediaSource::Kind::kFileId, "", "file-abc123");
        file.origin = "openai";
        r.messages[0].content.push_back(file);
      },
      "cannot take a file id of openai in message 1 (Anthropic can read only its own files)");
  add("an image type", [](ModelRequest& r) {
        r.messages[0].content.push_back(media(Type::kImage, MediaSource::Kind::kBase64, "image/heic", "AAAA"));
      },
      "cannot take an image of type image/heic in message 1 (Anthropic reads JPEG, PNG, GIF and WebP)");
  add("a document type", [](ModelRequest& r) {
        r.messages[0].content.push_back(media(Type::kDocument, MediaSource::Kind::kBase64,
                                              "application/vnd.ms-excel", "AAAA"));
      },
      "cannot take a document of type application/vnd.ms-excel in message 1 (Anthropic reads PDFs and text files)");
  add("another provider's tool", [](ModelRequest& r) {
        ToolSpec t = tool("web_search");
        t.opaque_json = R"({"type":"web_search"})";
        t.origin = "openai";
        r.tools = {t};
      },
      "cannot take the openai tool 'web_search' (it is another provider's own tool)");
  add("an image in a system prompt", [](ModelRequest& r) {
        r.messages.insert(r.messages.begin(), Message::of("system", {media(Type::kImage, MediaSource::Kind::kUrl, "",
                                                                       "https://example.com/logo.png")}));
      },
      "cannot take a non-text block in message 1 (a system prompt is text)");
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const Status s = refusal(c.request);
    CHECK(s.code() == Status::Code::kUpstream);
    CHECK(s.message() == c.message);
  }
}

TEST_CASE("another provider's reasoning is not sent, and its id-less tool calls get ids their results follow") {
  ModelRequest r = ask("Weather in Paris and Rome?");
  ContentBlock openai_thinking = thinking("Two cities.", "", "openai");
  ContentBlock gemini_item = block(Type::kOpaque);
  gemini_item.opaque_json = R"({"thoughtSignature":"CiQB"})";
  gemini_item.origin = "gemini";
  ContentBlock paris = ContentBlock::of_tool_call({"", "get_weather", R"({"city":"Paris"})"});
  paris.signature = "CiQBVKhc";  // Gemini's thoughtSignature: not Anthropic's to read
  paris.origin = "gemini";
  ContentBlock rome = ContentBlock::of_tool_call({"", "get_weather", R"({"city":"Rome"})"});
  ContentBlock redacted = block(Type::kRedactedThinking);
  redacted.signature = "EmwKAhgBEgy3va3pzix";
  redacted.origin = "anthropic";
  r.messages.push_back(Message::of("assistant", {openai_thinking, gemini_item, redacted, paris, rome}));
  r.messages.push_back(Message::of("tool", {ContentBlock::of_tool_result("", "get_weather", "18 C")}));
  r.messages.push_back(Message::of("tool", {ContentBlock::of_tool_result("", "get_weather", "24 C")}));
  r.messages.push_back(Message::of("assistant", {thinking("Only foreign.", "sig", "gemini")}));  // nothing left to send
  r.messages.push_back(Message::of_text("user", "Which is warmer?"));
  r.tools = {tool("get_weather")};

  const json b = body_of(r);
  const json expected = json::parse(R"json([
    {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
    {"role": "assistant", "content": [
      {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
      {"type": "tool_use", "id": "toolu_sb_1", "name": "get_weather", "input": {"city": "Paris"}},
      {"type": "tool_use", "id": "toolu_sb_2", "name": "get_weather", "input": {"city": "Rome"}}]},
    {"role": "user", "content": [
      {"type": "tool_result", "tool_use_id": "toolu_sb_1", "content": [{"type": "text", "text": "18 C"}]},
      {"type": "tool_result", "tool_use_id": "toolu_sb_2", "content": [{"type": "text", "text": "24 C"}]},
      {"type": "text", "text": "Which is warmer?"}]}
  ])json");
  CHECK(b["messages"] == expected);
}

TEST_CASE("a JSON object answer is asked for in the system prompt") {
  ModelRequest r = ask("List the parties.");
  r.messages.insert(r.messages.begin(), Message::of_text("system", "You review contracts."));
  r.output_format.type = OutputFormat::Type::kJsonObject;
  const json b = body_of(r);
  CHECK(b["system"] == "You review contracts.\n\nAnswer with a single JSON object and nothing else: no prose, no "
                       "code fences.");
  CHECK_FALSE(b.contains("tools"));
}

TEST_CASE("a JSON schema answer goes through a forced tool named after the schema") {
  ModelRequest r = ask("Summarise clause 14.");
  r.output_format = {OutputFormat::Type::kJsonSchema, "clause_summary", "A clause and its cap",
                     R"({"type":"object","properties":{"clause":{"type":"string"},"cap_months":{"type":"integer"}},)"
                     R"("required":["clause","cap_months"],"additionalProperties":false})",
                     true};
  r.reasoning.level = Reasoning::kHigh;  // the rules' level yields to the forced tool
  json b = body_of(r);
  CHECK_FALSE(b.contains("thinking"));
  CHECK(b["tool_choice"] == json{{"type", "tool"}, {"name", "json_answer__clause_summary"}});
  REQUIRE(b["tools"].size() == 1);
  const json& t = b["tools"][0];
  CHECK(t["name"] == "json_answer__clause_summary");
  CHECK(t["input_schema"] == json::parse(r.output_format.schema_json));
  CHECK(t["description"].get<std::string>().find("A clause and its cap") != std::string::npos);

  // With the caller's tools beside it, the model calls one of them or answers.
  r.tools = {tool("lookup_clause")};
  b = body_of(r);
  CHECK(b["tool_choice"] == json{{"type", "any"}});
  CHECK(b["tools"].size() == 2);
  r.tool_choice = ToolChoice{ToolChoice::Mode::kNone, ""};
  CHECK(body_of(r)["tool_choice"] == json{{"type", "tool"}, {"name", "json_answer__clause_summary"}});

  r.tool_choice = ToolChoice{ToolChoice::Mode::kRequired, ""};
  CHECK(refusal(r).message().starts_with("cannot take tool choice required with a JSON schema answer"));
  r.tool_choice.reset();
  r.reasoning.effort = Effort::kHigh;
  CHECK(refusal(r).message().starts_with("cannot take thinking with a JSON schema answer ("));

  ModelRequest list = ask("List the parties.");
  list.output_format = {OutputFormat::Type::kJsonSchema, "parties", "", R"({"type":"array"})", true};
  CHECK(refusal(list).message().starts_with("cannot take a JSON schema whose top level is not an object"));

  ModelRequest reserved = ask("Hi");
  reserved.tools = {tool("json_answer__mine")};
  CHECK(refusal(reserved).code() == Status::Code::kInvalidArgument);
}

TEST_CASE("auto_cache puts breakpoints on the last tool, the last system part and the conversation's last block") {
  ModelSpec model = claude();
  model.auto_cache = true;
  ModelRequest r;
  r.messages.push_back(Message::of_text("system", "You review contracts."));
  r.messages.push_back(Message::of_text("system", "Be terse."));
  r.messages.push_back(Message::of_text("user", "What does clause 14 say?"));
  r.messages.push_back(Message::of("assistant", {ContentBlock::of_tool_call({"toolu_01A", "lookup_clause",
                                                                         R"({"clause":"14"})"})}));
  r.messages.push_back(Message::of("tool", {ContentBlock::of_tool_result("toolu_01A", "lookup_clause", "Capped.")}));
  r.messages.push_back(Message::of_text("user", "And clause 15?"));
  r.tools = {tool("lookup_clause"), tool("get_time")};
  r.max_output_tokens = 1000;

  const json expected = json::parse(R"json({
    "model": "claude-sonnet-4-5", "max_tokens": 1000,
    "system": [{"type": "text", "text": "You review contracts."},
               {"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
      {"role": "user", "content": [{"type": "text", "text": "What does clause 14 say?"}]},
      {"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_01A", "name": "lookup_clause", "input": {"clause": "14"}}]},
      {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_01A", "content": [{"type": "text", "text": "Capped."}]},
        {"type": "text", "text": "And clause 15?", "cache_control": {"type": "ephemeral"}}]}],
    "tools": [
      {"name": "lookup_clause", "input_schema": {"type": "object", "properties": {}}},
      {"name": "get_time", "input_schema": {"type": "object", "properties": {}},
       "cache_control": {"type": "ephemeral"}}]
  })json");
  Result<HttpRequest> http = make_anthropic_wire(model, "")->build_request(r, false);
  REQUIRE_MESSAGE(http.ok(), http.status().to_string());
  CHECK(json::parse(http->body) == expected);

  // Without tools or a system prompt only the conversation gets one, and
  // thinking (which cannot carry one) is passed over for the block before it;
  // a message of thinking alone, for the message before it.
  ModelRequest prefill = ask("Draft a reply.");
  prefill.messages.push_back(Message::of("assistant", {ContentBlock::of_text("Dear"),
                                                   thinking("Formal tone.", "EqQBCgIYAh", "anthropic")}));
  http = make_anthropic_wire(model, "")->build_request(prefill, false);
  REQUIRE_MESSAGE(http.ok(), http.status().to_string());
  json b = json::parse(http->body);
  CHECK_FALSE(b.contains("system"));
  CHECK_FALSE(b.contains("tools"));
  CHECK(b["messages"] == json::parse(R"json([
    {"role": "user", "content": [{"type": "text", "text": "Draft a reply."}]},
    {"role": "assistant", "content": [
      {"type": "text", "text": "Dear", "cache_control": {"type": "ephemeral"}},
      {"type": "thinking", "thinking": "Formal tone.", "signature": "EqQBCgIYAh"}]}])json"));

  ModelRequest thought = ask("Draft a reply.");
  thought.messages.push_back(Message::of("assistant", {thinking("Formal tone.", "EqQBCgIYAh", "anthropic")}));
  http = make_anthropic_wire(model, "")->build_request(thought, false);
  REQUIRE_MESSAGE(http.ok(), http.status().to_string());
  b = json::parse(http->body);
  CHECK(b["messages"][0]["content"][0]["cache_control"] == json{{"type", "ephemeral"}});
  CHECK_FALSE(b["messages"][1]["content"][0].contains("cache_control"));
}

TEST_CASE("auto_cache leaves the caller's breakpoints alone, and is off by default") {
  ModelSpec model = claude();
  model.auto_cache = true;
  ModelRequest r = ask("And clause 15?");
  r.messages.insert(r.messages.begin(), Message::of_text("system", "You review contracts."));
  r.tools = {tool("lookup_clause")};
  // Every breakpoint in the body: (where, the part that carries it).
  auto breakpoints = [](const json& body) {
    std::vector<std::string> out;
    for (const char* key : {"system", "tools", "messages"}) {
      if (!body.contains(key) || !body[key].is_array()) continue;
      for (const json& part : body[key]) {
        if (part.contains("cache_control")) out.push_back(std::string(key) + ": " + part.dump());
        if (part.contains("content")) {
          for (const json& b : part["content"]) {
            if (b.contains("cache_control")) out.push_back(std::string(key) + ": " + b.dump());
          }
        }
      }
    }
    return out;
  };

  ModelRequest block_set = r;
  block_set.messages[1].content[0].cache = CacheBreakpoint{"1h"};
  Result<HttpRequest> http = make_anthropic_wire(model, "")->build_request(block_set, false);
  REQUIRE_MESSAGE(http.ok(), http.status().to_string());
  json b = json::parse(http->body);
  CHECK(b["system"] == "You review contracts.");  // no breakpoint: still one string
  CHECK(breakpoints(b) == std::vector<std::string>{
                              R"(messages: {"cache_control":{"ttl":"1h","type":"ephemeral"},"text":"And clause 15?",)"
                              R"("type":"text"})"});

  ModelRequest tool_set = r;
  tool_set.tools[0].cache = CacheBreakpoint{};
  http = make_anthropic_wire(model, "")->build_request(tool_set, false);
  REQUIRE_MESSAGE(http.ok(), http.status().to_string());
  b = json::parse(http->body);
  CHECK(breakpoints(b) == std::vector<std::string>{
                              R"(tools: {"cache_control":{"type":"ephemeral"},"input_schema":{"properties":{},)"
                              R"("type":"object"},"name":"lookup_clause"})"});

  b = body_of(r);  // claude(): auto_cache is false
  CHECK(b["system"] == "You review contracts.");
  CHECK(breakpoints(b).empty());
}

TEST_CASE("more than 4 cache breakpoints are refused: Anthropic's limit") {
  ModelRequest r;
  ContentBlock system = ContentBlock::of_text("You review contracts.");
  system.cache = CacheBreakpoint{};
  r.messages.push_back(Message::of("system", {system}));
  r.messages.push_back(Message::of("assistant", {ContentBlock::of_tool_call({"toolu_01A", "lookup_clause", "{}"})}));
  ContentBlock result = ContentBlock::of_tool_result("toolu_01A", "lookup_clause", "Capped.");
  result.content[0].cache = CacheBreakpoint{};  // inside the result: counted too
  r.messages.push_back(Message::of("tool", {result}));
  ContentBlock question = ContentBlock::of_text("And clause 15?");
  question.cache = CacheBreakpoint{};
  r.messages.push_back(Message::of("user", {question}));
  r.tools = {tool("lookup_clause")};
  r.tools[0].cache = CacheBreakpoint{};
  CHECK(wire()->build_request(r, false).ok());  // 4: the most it takes

  r.messages[1].content[0].cache = CacheBreakpoint{};
  const Status s = refusal(r);
  CHECK(s.code() == Status::Code::kUpstream);
  CHECK(s.message() == "cannot take more than 4 cache breakpoints (Anthropic's limit)");
}

TEST_CASE("malformed blocks are the caller's error") {
  ModelRequest bad_args = ask("Hi");
  bad_args.messages.push_back(Message::of("assistant", {ContentBlock::of_tool_call({"toolu_1", "f", "[1]"})}));
  CHECK(refusal(bad_args).message() == "message 2: tool call 'f' arguments is not a JSON object");

  ModelRequest bad_ttl = ask("Hi");
  bad_ttl.messages[0].content[0].cache = CacheBreakpoint{"2h"};
  CHECK(refusal(bad_ttl).code() == Status::Code::kInvalidArgument);

  ModelRequest untyped = ask("Hi");
  untyped.messages[0].content.push_back(media(Type::kImage, MediaSource::Kind::kBase64, "", "AAAA"));
  CHECK(refusal(untyped).code() == Status::Code::kInvalidArgument);

  ModelRequest role = ask("Hi");
  role.messages[0].role = "developer";
  CHECK(refusal(role).message() == "message 1: unknown role 'developer'");
}

// ---- answers -------------------------------------------------------------------

TEST_CASE("an answer's blocks come back in order with their signatures and origin") {
  const ModelResponse r = parsed(R"json({
    "id": "msg_01Hq8yXzT3vN6bR2wK9pLm4S", "type": "message", "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
      {"type": "thinking", "thinking": "Clause 14.2 is the cap; check 14.3.", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA"},
      {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"},
      {"type": "text", "text": "Clause 14.2 caps liability; checking 14.3."},
      {"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "lookup_clause", "input": {"clause": "14.3"}},
      {"type": "server_tool_use", "id": "srvtoolu_01WYG3", "name": "web_search", "input": {"query": "clause 14.3"}}],
    "stop_reason": "tool_use", "stop_sequence": null,
    "usage": {"input_tokens": 320, "cache_creation_input_tokens": 2000, "cache_read_input_tokens": 9800,
              "cache_creation": {"ephemeral_5m_input_tokens": 2000, "ephemeral_1h_input_tokens": 0},
              "output_tokens": 250, "service_tier": "standard"}})json");
  CHECK(r.model == "claude-sonnet-4-5-20250929");
  REQUIRE(r.content.size() == 5);
  for (const ContentBlock& b : r.content) CHECK(b.origin == "anthropic");
  CHECK(r.content[0].type == Type::kThinking);
  CHECK(r.content[0].text == "Clause 14.2 is the cap; check 14.3.");
  CHECK(r.content[0].signature == "EqQBCgIYAhIM1gbcDa9GJwZA");
  CHECK(r.content[1].type == Type::kRedactedThinking);
  CHECK(r.content[1].signature == "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP");
  CHECK(r.content[2].type == Type::kText);
  CHECK(r.content[3].type == Type::kToolUse);
  CHECK(r.content[3].tool_call.id == "toolu_01T1x1fJ34qAmk2tNTrN7Up6");
  CHECK(r.content[3].tool_call.name == "lookup_clause");
  CHECK(json::parse(r.content[3].tool_call.arguments_json) == json{{"clause", "14.3"}});
  CHECK(r.content[4].type == Type::kOpaque);
  CHECK(json::parse(r.content[4].opaque_json)["type"] == "server_tool_use");
  CHECK(r.text() == "Clause 14.2 caps liability; checking 14.3.");
  CHECK(r.stop_reason == StopReason::kToolUse);
  CHECK(r.raw_stop_reason == "tool_use");
  CHECK(r.usage == usage_of(320, 9800, 2000, 0, 250, 0));

  // Sent back, the answer is what the API gave, block for block.
  ModelRequest next = ask("Go on.");
  next.messages.push_back(Message::of("assistant", r.content));
  const json sent = body_of(next)["messages"][1]["content"];
  const json expected = json::parse(R"json([
    {"type": "thinking", "thinking": "Clause 14.2 is the cap; check 14.3.", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA"},
    {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"},
    {"type": "text", "text": "Clause 14.2 caps liability; checking 14.3."},
    {"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "lookup_clause", "input": {"clause": "14.3"}},
    {"type": "server_tool_use", "id": "srvtoolu_01WYG3", "name": "web_search", "input": {"query": "clause 14.3"}}])json");
  CHECK(sent == expected);
}

TEST_CASE("stop reasons map to the canonical ones and keep the API's word") {
  struct Case {
    const char* raw;
    const char* stop_sequence;
    StopReason reason;
  };
  const std::vector<Case> cases = {
      {"end_turn", "null", StopReason::kEndTurn},
      {"max_tokens", "null", StopReason::kMaxTokens},
      {"stop_sequence", "\"END\"", StopReason::kStopSequence},
      {"tool_use", "null", StopReason::kToolUse},
      {"pause_turn", "null", StopReason::kPauseTurn},
      {"refusal", "null", StopReason::kRefusal},
      {"model_context_window_exceeded", "null", StopReason::kMaxTokens},
      {"something_new", "null", StopReason::kOther},
  };
  for (const Case& c : cases) {
    CAPTURE(c.raw);
    const ModelResponse r = parsed(std::string(R"({"type":"message","model":"claude-haiku-4-5-20251001",)") +
                                   R"("content":[{"type":"text","text":"In short"}],"stop_reason":")" + c.raw +
                                   R"(","stop_sequence":)" + c.stop_sequence +
                                   R"(,"usage":{"input_tokens":10,"output_tokens":2}})");
    CHECK(r.stop_reason == c.reason);
    CHECK(r.raw_stop_reason == c.raw);
    CHECK(r.stop_sequence == (c.reason == StopReason::kStopSequence ? "END" : ""));
  }
}

TEST_CASE("the JSON schema tool's call comes back as the answer's text, ending the turn") {
  const ModelResponse r = parsed(R"json({
    "id": "msg_04", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "tool_use", "id": "toolu_01D7", "name": "json_answer__clause_summary",
                 "input": {"clause": "14.2", "cap_months": 12}}],
    "stop_reason": "tool_use", "stop_sequence": null,
    "usage": {"input_tokens": 500, "output_tokens": 40}})json");
  REQUIRE(r.content.size() == 1);
  CHECK(r.content[0].type == Type::kText);
  CHECK(json::parse(r.text()) == json{{"clause", "14.2"}, {"cap_months", 12}});
  CHECK(r.tool_calls().empty());
  CHECK(r.stop_reason == StopReason::kEndTurn);
  CHECK(r.raw_stop_reason == "tool_use");
}

TEST_CASE("an answer without content or with bad usage is the provider's fault") {
  Result<ModelResponse> r =
      wire()->parse_response(R"({"type":"message","usage":{"input_tokens":1,"output_tokens":1}})");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kUpstream);
  CHECK(r.status().message() == "body has no 'content' array");
  CHECK(wire()->parse_response("not json").status().code() == Status::Code::kUpstream);
}

// ---- streams -------------------------------------------------------------------

const std::string kThinkingToolStream = R"sse(event: message_start
data: {"type":"message_start","message":{"id":"msg_01Hq8yXzT3vN6bR2wK9pLm4S","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":320,"cache_creation_input_tokens":0,"cache_read_input_tokens":9800,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":1,"service_tier":"standard"}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"The user wants clause 14"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":" and its cap."}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"redacted_thinking","data":"EmwKAhgBEgy3va3pzix"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: ping
data: {"type": "ping"}

event: content_block_start
data: {"type":"content_block_start","index":2,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"Clause 14.2 caps liability"}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"; let me check 14.3."}}

event: content_block_stop
data: {"type":"content_block_stop","index":2}

event: content_block_start
data: {"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"lookup_clause","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\"clause\": \"14"}}

event: content_block_delta
data: {"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":".3\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":3}

event: content_block_start
data: {"type":"content_block_start","index":4,"content_block":{"type":"tool_use","id":"toolu_01Xq","name":"get_time","input":{}}}

event: content_block_stop
data: {"type":"content_block_stop","index":4}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":250}}

event: message_stop
data: {"type":"message_stop"}

)sse";

TEST_CASE("a stream delivers thinking, signature, text and tool call pieces as they arrive, by block index") {
  using K = StreamChunk::Kind;
  Decoded d = decode(kThinkingToolStream);
  const std::vector<Chunk> expected = {
      {K::kThinking, 0, "The user wants clause 14", "", ""},
      {K::kThinking, 0, " and its cap.", "", ""},
      {K::kSignature, 0, "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds", "", ""},
      {K::kRedactedThinking, 1, "EmwKAhgBEgy3va3pzix", "", ""},
      {K::kText, 2, "Clause 14.2 caps liability", "", ""},
      {K::kText, 2, "; let me check 14.3.", "", ""},
      {K::kToolCallStart, 3, "", "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "lookup_clause"},
      {K::kToolArguments, 3, "{\"clause\": \"14", "", ""},
      {K::kToolArguments, 3, ".3\"}", "", ""},
      {K::kToolCallStart, 4, "", "toolu_01Xq", "get_time"},
  };
  CHECK(d.chunks == expected);
  // Signatures and redacted data say whose they are; text and tool pieces do not.
  CHECK(d.origins == std::vector<std::string>{"", "", "anthropic", "anthropic", "", "", "", "", "", ""});

  REQUIRE_MESSAGE(d.response.ok(), d.response.status().to_string());
  const ModelResponse& r = *d.response;
  CHECK(r.model == "claude-sonnet-4-5-20250929");
  REQUIRE(r.content.size() == 5);
  CHECK(r.content[0].type == Type::kThinking);
  CHECK(r.content[0].text == "The user wants clause 14 and its cap.");
  CHECK(r.content[0].signature == "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds");
  CHECK(r.content[1].type == Type::kRedactedThinking);
  CHECK(r.content[1].signature == "EmwKAhgBEgy3va3pzix");
  CHECK(r.content[2].text == "Clause 14.2 caps liability; let me check 14.3.");
  CHECK(r.content[3].tool_call.arguments_json == "{\"clause\": \"14.3\"}");
  CHECK(r.content[4].tool_call.arguments_json == "{}");  // a call without arguments streams none
  for (const ContentBlock& b : r.content) CHECK(b.origin == "anthropic");
  CHECK(r.stop_reason == StopReason::kToolUse);
  CHECK(r.raw_stop_reason == "tool_use");
  CHECK(r.usage == usage_of(320, 9800, 0, 0, 250, 0));
}

TEST_CASE("a streamed JSON schema answer arrives as text chunks and ends the turn") {
  using K = StreamChunk::Kind;
  const std::string stream = R"sse(event: message_start
data: {"type":"message_start","message":{"id":"msg_05","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":500,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_01D7","name":"json_answer__clause_summary","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"clause\": \"14.2\","}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":" \"cap_months\": 12}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":40}}

event: message_stop
data: {"type":"message_stop"}

)sse";
  Decoded d = decode(stream);
  const std::vector<Chunk> expected = {
      {K::kText, 0, "{\"clause\": \"14.2\",", "", ""},
      {K::kText, 0, " \"cap_months\": 12}", "", ""},
  };
  CHECK(d.chunks == expected);
  REQUIRE(d.response.ok());
  CHECK(json::parse(d.response->text()) == json{{"clause", "14.2"}, {"cap_months", 12}});
  CHECK(d.response->tool_calls().empty());
  CHECK(d.response->stop_reason == StopReason::kEndTurn);
}

TEST_CASE("a streamed stop sequence and a server tool come back whole") {
  const std::string stream = R"sse(event: message_start
data: {"type":"message_start","message":{"id":"msg_06","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":40,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use","id":"srvtoolu_01WYG3","name":"web_search","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"query\": \"clause 14\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":"Clause 14"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"stop_sequence","stop_sequence":"END"},"usage":{"output_tokens":9}}

event: message_stop
data: {"type":"message_stop"}

)sse";
  Decoded d = decode(stream);
  REQUIRE(d.chunks.size() == 2);  // the server tool whole when it stops, then the text
  CHECK(d.chunks[0].kind == StreamChunk::Kind::kOpaque);
  CHECK(d.chunks[0].index == 0);
  CHECK(json::parse(d.chunks[0].text)["input"] == json{{"query", "clause 14"}});
  CHECK(d.origins[0] == "anthropic");
  CHECK(d.chunks[1] == Chunk{StreamChunk::Kind::kText, 1, "Clause 14", "", ""});
  REQUIRE(d.response.ok());
  REQUIRE(d.response->content.size() == 2);
  CHECK(d.response->content[0].type == Type::kOpaque);
  CHECK(json::parse(d.response->content[0].opaque_json) ==
        json::parse(R"({"type":"server_tool_use","id":"srvtoolu_01WYG3","name":"web_search",)"
                    R"("input":{"query":"clause 14"}})"));
  CHECK(d.response->stop_reason == StopReason::kStopSequence);
  CHECK(d.response->stop_sequence == "END");
}

TEST_CASE("a stream's error event and a stream cut short fail as they should") {
  Decoded overloaded = decode(R"sse(event: error
data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}

)sse");
  CHECK(overloaded.response.status().code() == Status::Code::kUnavailable);
  Decoded invalid = decode(R"sse(event: error
data: {"type":"error","error":{"type":"invalid_request_error","message":"bad"}}

)sse");
  CHECK(invalid.response.status().code() == Status::Code::kUpstream);

  // A delta whose block never started (a proxy's shortcut) still counts.
  Decoded unstarted = decode(R"sse(event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}

event: error
data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}

)sse");
  REQUIRE(unstarted.chunks.size() == 1);
  CHECK(unstarted.chunks[0] == Chunk{StreamChunk::Kind::kText, 0, "Hel", "", ""});

  const std::string cut = kThinkingToolStream.substr(0, kThinkingToolStream.find("event: message_delta"));
  Decoded short_stream = decode(cut);
  CHECK(short_stream.response.status().code() == Status::Code::kUnavailable);
  CHECK(short_stream.chunks.size() == 10);  // what arrived was delivered
}

}  // TEST_SUITE
