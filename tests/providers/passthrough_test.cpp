// Same-protocol passthrough (Passthrough in switchboard/request.h) at the
// three wire formats: a caller's unmodelled fields reach a model of its own
// API verbatim, hints and headers too, and any other API refuses the model by
// the field's name instead of dropping it.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <string>

#include "providers/wire_format.h"

using namespace switchboard;
using nlohmann::json;

namespace {

ModelSpec spec(const std::string& provider, const std::string& id, const std::string& endpoint) {
  ModelSpec m;
  m.name = m.model_id = id;
  m.provider = provider;
  m.endpoint = endpoint;
  return m;
}

std::unique_ptr<WireFormat> openai() { return make_openai_wire(spec("openai", "gpt-5", "https://x/v1"), "k"); }
std::unique_ptr<WireFormat> compatible() {
  return make_openai_wire(spec("openai-compatible", "qwen3", "http://127.0.0.1:9/v1"), "");
}
std::unique_ptr<WireFormat> anthropic() {
  return make_anthropic_wire(spec("anthropic", "claude-sonnet-4-5", "https://x"), "k");
}
std::unique_ptr<WireFormat> gemini() {
  return make_gemini_wire(spec("gemini", "gemini-2.5-pro", "https://x/v1beta"), "k");
}

ModelRequest hello(WireApi api, std::string fields, std::string hints = "") {
  ModelRequest r;
  r.messages = {Message::of_text("user", "Hello")};
  r.passthrough.api = api;
  r.passthrough.fields_json = std::move(fields);
  r.passthrough.hints_json = std::move(hints);
  return r;
}

HttpRequest built(const WireFormat& wire, const ModelRequest& request, bool stream = false) {
  Result<HttpRequest> r = wire.build_request(request, stream);
  REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  return *r;
}

std::string header(const HttpRequest& r, const std::string& name) {
  std::string found;
  int count = 0;
  for (const auto& [n, v] : r.headers) {
    if (n != name) continue;
    found = v;
    ++count;
  }
  CHECK(count <= 1);  // one header of each name: values are joined, never repeated
  return found;
}

}  // namespace

TEST_CASE("an OpenAI caller's unmodelled fields and hints reach an OpenAI-API model verbatim") {
  const std::string fields = R"({"verbosity":"low","web_search_options":{"search_context_size":"high",)"
                             R"("user_location":{"type":"approximate","approximate":{"city":"Paris"}}}})";
  ModelRequest request = hello(WireApi::kOpenAIChat, fields, R"({"prompt_cache_key":"session-42"})");
  request.passthrough.headers = {{"openai-beta", "assistants=v2"}};
  for (auto make : {&openai, &compatible}) {
    const auto wire = make();
    const HttpRequest http = built(*wire, request, /*stream=*/true);
    const json body = json::parse(http.body);
    CHECK(body["verbosity"] == "low");
    CHECK(body["web_search_options"] == json::parse(fields)["web_search_options"]);  // nested, untouched
    CHECK(body["prompt_cache_key"] == "session-42");
    CHECK(body["stream"] == true);  // the adapter's own fields stay
    CHECK(body["messages"].size() == 1);
    CHECK(header(http, "openai-beta") == "assistants=v2");
  }
}

TEST_CASE("an Anthropic caller's fields and beta headers reach an Anthropic model, betas joined with the adapter's") {
  ModelRequest request =
      hello(WireApi::kAnthropicMessages,
            R"({"context_management":{"edits":[{"type":"clear_tool_uses_20250919"}]},"container":"cntr_1"})");
  request.passthrough.headers = {{"anthropic-beta", "context-management-2025-06-27"},
                                 {"anthropic-beta", "interleaved-thinking-2025-05-14"}};
  // A file source makes the adapter send its own beta: the caller's join it.
  ContentBlock file;
  file.type = ContentBlock::Type::kDocument;
  file.source.kind = MediaSource::Kind::kFileId;
  file.source.data = "file_011";
  file.origin = "anthropic";
  request.messages[0].content.push_back(file);

  const HttpRequest http = built(*anthropic(), request);
  const json body = json::parse(http.body);
  CHECK(body["context_management"]["edits"][0]["type"] == "clear_tool_uses_20250919");
  CHECK(body["container"] == "cntr_1");
  CHECK(body["max_tokens"].is_number());
  CHECK(header(http, "anthropic-beta") ==
        "files-api-2025-04-14,context-management-2025-06-27,interleaved-thinking-2025-05-14");
}

TEST_CASE("a model of another API is refused by the field's name, never sent a request without it") {
  SUBCASE("OpenAI fields at Anthropic and Gemini") {
    const ModelRequest request = hello(WireApi::kOpenAIChat, R"({"verbosity":"low"})");
    for (auto make : {&anthropic, &gemini}) {
      const auto wire = make();
      Result<HttpRequest> r = wire->build_request(request, false);
      REQUIRE_FALSE(r.ok());
      CHECK(r.status().code() == Status::Code::kUpstream);  // the dispatcher falls back
      CHECK(r.status().message().find("cannot take the field 'verbosity' (a OpenAI Chat Completions field") !=
            std::string::npos);
    }
  }
  SUBCASE("Anthropic fields at OpenAI") {
    Result<HttpRequest> r =
        openai()->build_request(hello(WireApi::kAnthropicMessages, R"({"mcp_servers":[]})"), false);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find("'mcp_servers'") != std::string::npos);
    CHECK(r.status().message().find("this one speaks OpenAI Chat Completions") != std::string::npos);
  }
}

TEST_CASE("hints and headers alone never refuse a model of another API, and do not reach it") {
  ModelRequest request = hello(WireApi::kOpenAIChat, "", R"({"prompt_cache_key":"k1","safety_identifier":"u"})");
  request.passthrough.headers = {{"openai-beta", "x"}};
  for (auto make : {&anthropic, &gemini}) {
    const auto wire = make();
    const HttpRequest http = built(*wire, request);
    const json body = json::parse(http.body);
    CHECK_FALSE(body.contains("prompt_cache_key"));
    CHECK_FALSE(body.contains("safety_identifier"));
    CHECK(header(http, "openai-beta").empty());
  }
}

TEST_CASE("a passthrough field the adapter writes itself refuses the model rather than overwrite either") {
  ModelRequest request = hello(WireApi::kOpenAIChat, R"({"stream_options":{"include_usage":false}})");
  Result<HttpRequest> r = openai()->build_request(request, /*stream=*/true);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("cannot take the field 'stream_options' verbatim") != std::string::npos);
  // Unstreamed, the adapter writes no stream_options: the caller's goes as is.
  CHECK(json::parse(built(*openai(), request).body)["stream_options"]["include_usage"] == false);
}

TEST_CASE("passthrough without the API it was written for is the caller's error") {
  ModelRequest request = hello(WireApi::kNone, R"({"verbosity":"low"})");
  for (auto make : {&openai, &anthropic, &gemini}) {
    const auto wire = make();
    Result<HttpRequest> r = wire->build_request(request, false);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kInvalidArgument);
  }
}
