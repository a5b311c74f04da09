// The fake provider, driven over real HTTP with libcurl: each route answers
// its fixture's shape with the documented counts, each fault misbehaves as
// fake_provider.h says, and the server keeps connections alive and records
// what it was sent.
#include "fake_provider.h"

#include <curl/curl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "test_util.h"

extern char** environ;

namespace switchboard::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct CurlCleanup {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
using CurlHandle = std::unique_ptr<CURL, CurlCleanup>;

struct CurlListFree {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

struct Http {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string headers;
  std::string body;
  std::string content_type;
  long new_connections = 0;  // 0: an open connection was reused
};

struct Sink {
  std::string* out;
  std::size_t stop_after;  // abort the transfer once this much arrived
};

size_t collect(char* data, size_t size, size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  sink->out->append(data, size * n);
  return sink->out->size() > sink->stop_after ? 0 : size * n;
}

size_t collect_header(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

struct Call {
  std::string path = "";
  std::string body = "";
  std::vector<std::string> headers = {};
  long timeout_ms = 3000;
  std::size_t stop_after = static_cast<std::size_t>(-1);
};

Http post(CURL* curl, const std::string& base, const Call& call) {
  Http r;
  Sink sink{&r.body, call.stop_after};
  curl_slist* raw = nullptr;
  for (const std::string& h : call.headers) raw = curl_slist_append(raw, h.c_str());
  raw = curl_slist_append(raw, "Content-Type: application/json");
  std::unique_ptr<curl_slist, CurlListFree> list(raw);
  const std::string url = base + call.path;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, call.body.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(call.body.size()));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list.get());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, collect_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &r.headers);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, call.timeout_ms);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  r.code = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
  char* type = nullptr;
  curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type);
  if (type != nullptr) r.content_type = type;
  curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &r.new_connections);
  return r;
}

Http post(const FakeProvider& fake, const Call& call) {
  CurlHandle curl(curl_easy_init());
  return post(curl.get(), fake.base_url(), call);
}

const std::vector<std::string> kAnthropicHeaders = {"x-api-key: test-key", "anthropic-version: 2023-06-01"};

// One server-sent event: its `event:` name ("" when none) and `data:` text.
struct Event {
  std::string name;
  std::string data;
};

std::vector<Event> parse_sse(const std::string& body) {
  std::vector<Event> events;
  Event current;
  std::size_t pos = 0;
  while (pos < body.size()) {
    std::size_t end = body.find('\n', pos);
    if (end == std::string::npos) end = body.size();
    std::string line = body.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    pos = end + 1;
    if (line.empty()) {
      if (!current.data.empty() || !current.name.empty()) events.push_back(current);
      current = {};
    } else if (line.rfind("event: ", 0) == 0) {
      current.name = line.substr(7);
    } else if (line.rfind("data: ", 0) == 0) {
      current.data = line.substr(6);
    }
  }
  return events;
}

std::string header_value(const std::string& headers, const std::string& name) {
  const std::string needle = "\r\n" + name + ": ";
  const std::size_t at = headers.find(needle);
  if (at == std::string::npos) return "";
  const std::size_t start = at + needle.size();
  return headers.substr(start, headers.find("\r\n", start) - start);
}

// A TCP client on 127.0.0.1 for what libcurl hides: the bytes as they
// arrive, silence, and the moment the client closes. Closes when it goes away.
class RawClient {
 public:
  explicit RawClient(std::uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ >= 0 && connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) close();
  }
  ~RawClient() { close(); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool ok() const { return fd_ >= 0; }
  // Sends every byte; false when the peer is gone.
  bool send_all(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  // Reads until `want` bytes arrived, the server closed (eof()), or `timeout`
  // passed; what arrived.
  std::string read(std::size_t want, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    std::string got;
    char buf[4096];
    while (got.size() < want && !eof_) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      pollfd p{fd_, POLLIN, 0};
      if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      const ssize_t n = ::recv(fd_, buf, std::min(sizeof buf, want - got.size()), 0);
      if (n <= 0) {
        eof_ = true;
      } else {
        got.append(buf, static_cast<std::size_t>(n));
      }
    }
    return got;
  }
  std::string read_to_end(std::chrono::milliseconds timeout) { return read(static_cast<std::size_t>(-1), timeout); }
  // The server closed the connection (seen by read).
  bool eof() const { return eof_; }
  // Closes the socket; the steady_clock time just before it did.
  Clock::time_point close() {
    const auto now = Clock::now();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    return now;
  }

 private:
  int fd_ = -1;
  bool eof_ = false;
};

// A POST as raw HTTP/1.1 bytes.
std::string raw_post(const std::string& path, const std::string& body, const std::vector<std::string>& headers = {}) {
  std::string out = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n";
  for (const std::string& h : headers) out += h + "\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  return out;
}

// The request bodies the cases send; the counts follow from their sizes.
const std::string kOpenAIBody = R"({"model":"gpt-test","messages":[{"role":"user","content":"What is 2+2?"}]})";
const std::string kOpenAITools =
    R"({"model":"gpt-test","messages":[{"role":"user","content":"Weather in Paris?"}],)"
    R"("tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]})";
const std::string kAnthropicBody =
    R"({"model":"claude-test","max_tokens":4096,"messages":[{"role":"user","content":"Hello"}]})";
const std::string kGeminiBody = R"({"contents":[{"role":"user","parts":[{"text":"Hello"}]}]})";

std::string text_of(const std::string& model) {
  return "Hello from " + model + ". This answer is \"fake\" and deterministic.";
}
std::int64_t tokens(const std::string& s) { return static_cast<std::int64_t>((s.size() + 3) / 4); }

TEST_SUITE("fake_provider") {

TEST_CASE("openai chat completion carries the answer and the documented usage") {
  auto fake = FakeProvider::start();
  const Http r = post(*fake, {"/v1/chat/completions", kOpenAIBody});
  REQUIRE(r.code == CURLE_OK);
  CHECK(r.status == 200);
  CHECK(r.content_type == "application/json");
  const json body = json::parse(r.body);
  CHECK(body["object"] == "chat.completion");
  CHECK(body["model"] == "gpt-test");
  CHECK(body["choices"][0]["message"]["content"] == text_of("gpt-test"));
  CHECK(body["choices"][0]["finish_reason"] == "stop");
  const std::int64_t p = static_cast<std::int64_t>(kOpenAIBody.size() / 4);
  const std::int64_t o = tokens(text_of("gpt-test"));
  const json& u = body["usage"];
  CHECK(u["prompt_tokens"] == p);
  CHECK(u["prompt_tokens_details"]["cached_tokens"] == p / 4);
  CHECK(u["completion_tokens"] == o);
  CHECK(u["completion_tokens_details"]["reasoning_tokens"] == 0);
  CHECK(u["total_tokens"] == p + o);
  const auto expected = expected_answer(UsageFormat::kOpenAI, "gpt-test", kOpenAIBody);
  REQUIRE(expected);
  CHECK(expected->text == text_of("gpt-test"));
  CHECK(expected->usage == usage_of(p - p / 4, p / 4, 0, 0, o, 0));
}

TEST_CASE("openai reasoning_effort adds 64 reasoning tokens to the completion") {
  auto fake = FakeProvider::start();
  const std::string req = R"({"model":"o4-test","reasoning_effort":"high","messages":[]})";
  const json body = json::parse(post(*fake, {"/v1/chat/completions", req}).body);
  const std::int64_t o = tokens(text_of("o4-test"));
  CHECK(body["usage"]["completion_tokens"] == o + 64);
  CHECK(body["usage"]["completion_tokens_details"]["reasoning_tokens"] == 64);
  CHECK(expected_answer(UsageFormat::kOpenAI, "o4-test", req)->usage.reasoning_tokens == 64);
}

TEST_CASE("openai request with tools is answered with a tool call") {
  auto fake = FakeProvider::start();
  const json body = json::parse(post(*fake, {"/v1/chat/completions", kOpenAITools}).body);
  const json& choice = body["choices"][0];
  CHECK(choice["finish_reason"] == "tool_calls");
  CHECK(choice["message"]["content"].is_null());
  const json& call = choice["message"]["tool_calls"][0];
  CHECK(call["function"]["name"] == "get_weather");
  CHECK(json::parse(call["function"]["arguments"].get<std::string>()) == json{{"query", "switchboard"}});
  CHECK(body["usage"]["completion_tokens"] == tokens(std::string("get_weather") + R"({"query":"switchboard"})"));
}

TEST_CASE("openai answers with text once the last message is a tool result") {
  auto fake = FakeProvider::start();
  const std::string req =
      R"({"model":"gpt-test","messages":[{"role":"tool","tool_call_id":"call_1","content":"sunny"}],)"
      R"("tools":[{"type":"function","function":{"name":"get_weather"}}]})";
  const json body = json::parse(post(*fake, {"/v1/chat/completions", req}).body);
  CHECK(body["choices"][0]["finish_reason"] == "stop");
  CHECK(body["choices"][0]["message"]["content"] == text_of("gpt-test"));
}

TEST_CASE("openai stream sends text chunks then a usage chunk then DONE") {
  auto fake = FakeProvider::start();
  const std::string req =
      R"({"model":"gpt-test","stream":true,"stream_options":{"include_usage":true},"messages":[]})";
  const Http r = post(*fake, {"/v1/chat/completions", req});
  REQUIRE(r.code == CURLE_OK);
  CHECK(r.content_type == "text/event-stream; charset=utf-8");
  const std::vector<Event> events = parse_sse(r.body);
  REQUIRE(events.size() == 7);
  CHECK(events.back().data == "[DONE]");
  std::string text;
  for (std::size_t i = 0; i + 2 < events.size(); ++i) {
    const json chunk = json::parse(events[i].data);
    CHECK(chunk["object"] == "chat.completion.chunk");
    CHECK(chunk["usage"].is_null());
    text += chunk["choices"][0]["delta"].value("content", "");
  }
  CHECK(text == text_of("gpt-test"));
  CHECK(json::parse(events[4].data)["choices"][0]["finish_reason"] == "stop");
  const json usage_chunk = json::parse(events[5].data);
  CHECK(usage_chunk["choices"].empty());
  CHECK(usage_chunk["usage"]["prompt_tokens"] == static_cast<std::int64_t>(req.size() / 4));
  CHECK(usage_chunk["usage"]["completion_tokens"] == tokens(text_of("gpt-test")));
}

TEST_CASE("openai stream without include_usage has no usage chunk") {
  auto fake = FakeProvider::start();
  const Http r = post(*fake, {"/v1/chat/completions", R"({"model":"gpt-test","stream":true,"messages":[]})"});
  const std::vector<Event> events = parse_sse(r.body);
  REQUIRE(events.size() == 6);
  CHECK(events.back().data == "[DONE]");
  for (std::size_t i = 0; i + 1 < events.size(); ++i) CHECK_FALSE(json::parse(events[i].data).contains("usage"));
}

TEST_CASE("openai streamed tool call arrives as argument deltas") {
  auto fake = FakeProvider::start();
  std::string req = kOpenAITools;
  req.insert(1, R"("stream":true,)");
  const std::vector<Event> events = parse_sse(post(*fake, {"/v1/chat/completions", req}).body);
  REQUIRE(events.size() == 6);
  const json first = json::parse(events[0].data)["choices"][0]["delta"]["tool_calls"][0];
  CHECK(first["function"]["name"] == "get_weather");
  CHECK(first["id"] == "call_fake1");
  std::string arguments;
  int pieces = 0;
  for (std::size_t i = 1; i + 2 < events.size(); ++i) {
    arguments += json::parse(events[i].data)["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                     .get<std::string>();
    ++pieces;
  }
  CHECK(pieces == 3);
  CHECK(arguments == R"({"query":"switchboard"})");
  CHECK(json::parse(events[4].data)["choices"][0]["finish_reason"] == "tool_calls");
}

TEST_CASE("anthropic message carries a thinking block when asked and the documented usage") {
  auto fake = FakeProvider::start();
  std::string req = kAnthropicBody;
  req.insert(1, R"("thinking":{"type":"enabled","budget_tokens":2048},)");
  const Http r = post(*fake, {"/v1/messages", req, kAnthropicHeaders});
  REQUIRE(r.status == 200);
  const json body = json::parse(r.body);
  CHECK(body["type"] == "message");
  CHECK(body["model"] == "claude-test");
  CHECK(body["stop_reason"] == "end_turn");
  REQUIRE(body["content"].size() == 2);
  CHECK(body["content"][0]["type"] == "thinking");
  CHECK_FALSE(body["content"][0]["signature"].get<std::string>().empty());
  CHECK(body["content"][1]["text"] == text_of("claude-test"));
  const std::int64_t p = static_cast<std::int64_t>(req.size() / 4);
  const json& u = body["usage"];
  CHECK(u["input_tokens"] == p - p / 4 - p / 8);
  CHECK(u["cache_read_input_tokens"] == p / 4);
  CHECK(u["cache_creation_input_tokens"] == p / 8);
  CHECK(u["output_tokens"] == tokens(text_of("claude-test")) + 64);
  CHECK(expected_answer(UsageFormat::kAnthropic, "claude-test", req)->usage ==
        usage_of(p - p / 4 - p / 8, p / 4, p / 8, 0, tokens(text_of("claude-test")) + 64, 0));
}

TEST_CASE("anthropic request with tools is answered with tool_use") {
  auto fake = FakeProvider::start();
  std::string req = kAnthropicBody;
  req.insert(1, R"("tools":[{"name":"get_weather","input_schema":{"type":"object"}}],)");
  const json body = json::parse(post(*fake, {"/v1/messages", req, kAnthropicHeaders}).body);
  CHECK(body["stop_reason"] == "tool_use");
  REQUIRE(body["content"].size() == 1);
  CHECK(body["content"][0]["type"] == "tool_use");
  CHECK(body["content"][0]["name"] == "get_weather");
  CHECK(body["content"][0]["input"] == json{{"query", "switchboard"}});
}

TEST_CASE("anthropic stream follows the real event sequence") {
  auto fake = FakeProvider::start();
  std::string req = kAnthropicBody;
  req.insert(1, R"("stream":true,"thinking":{"type":"enabled","budget_tokens":2048},)");
  const Http r = post(*fake, {"/v1/messages", req, kAnthropicHeaders});
  REQUIRE(r.code == CURLE_OK);
  const std::vector<Event> events = parse_sse(r.body);
  std::vector<std::string> names;
  for (const Event& e : events) {
    names.push_back(e.name);
    CHECK(json::parse(e.data)["type"] == e.name);
  }
  const std::vector<std::string> expected = {
      "message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta",
      "content_block_delta", "content_block_delta", "content_block_stop", "content_block_start",
      "content_block_delta", "content_block_delta", "content_block_delta", "content_block_stop",
      "message_delta", "message_stop"};
  CHECK(names == expected);
  std::string thinking, text;
  for (const Event& e : events) {
    if (e.name != "content_block_delta") continue;
    const json delta = json::parse(e.data)["delta"];
    if (delta["type"] == "thinking_delta") thinking += delta["thinking"].get<std::string>();
    if (delta["type"] == "text_delta") text += delta["text"].get<std::string>();
  }
  CHECK(thinking == expected_answer(UsageFormat::kAnthropic, "claude-test", req)->thinking);
  CHECK(text == text_of("claude-test"));
  const std::int64_t p = static_cast<std::int64_t>(req.size() / 4);
  CHECK(json::parse(events.front().data)["message"]["usage"]["cache_read_input_tokens"] == p / 4);
  const json delta = json::parse(events[events.size() - 2].data);
  CHECK(delta["delta"]["stop_reason"] == "end_turn");
  CHECK(delta["usage"]["output_tokens"] == tokens(text_of("claude-test")) + 64);
}

TEST_CASE("anthropic streamed tool_use arrives as input_json_delta pieces") {
  auto fake = FakeProvider::start();
  std::string req = kAnthropicBody;
  req.insert(1, R"("stream":true,"tools":[{"name":"lookup","input_schema":{"type":"object"}}],)");
  const std::vector<Event> events = parse_sse(post(*fake, {"/v1/messages", req, kAnthropicHeaders}).body);
  REQUIRE(events.size() >= 3);
  CHECK(json::parse(events[1].data)["content_block"]["name"] == "lookup");
  std::string partial;
  for (const Event& e : events) {
    if (e.name == "content_block_delta") partial += json::parse(e.data)["delta"]["partial_json"].get<std::string>();
  }
  CHECK(json::parse(partial) == json{{"query", "switchboard"}});
  CHECK(json::parse(events[events.size() - 2].data)["delta"]["stop_reason"] == "tool_use");
}

TEST_CASE("anthropic without api key or version gets a 401 authentication_error") {
  auto fake = FakeProvider::start();
  for (const auto& headers : {std::vector<std::string>{}, std::vector<std::string>{"x-api-key: k"},
                              std::vector<std::string>{"anthropic-version: 2023-06-01"}}) {
    const Http r = post(*fake, {"/v1/messages", kAnthropicBody, headers});
    CHECK(r.status == 401);
    const json body = json::parse(r.body);
    CHECK(body["type"] == "error");
    CHECK(body["error"]["type"] == "authentication_error");
  }
}

TEST_CASE("gemini generateContent carries parts finishReason and usageMetadata") {
  auto fake = FakeProvider::start();
  std::string req = kGeminiBody;
  req.insert(req.size() - 1, R"(,"generationConfig":{"thinkingConfig":{"thinkingBudget":1024}})");
  const Http r = post(*fake, {"/v1beta/models/gemini-test:generateContent", req});
  REQUIRE(r.status == 200);
  const json body = json::parse(r.body);
  const json& candidate = body["candidates"][0];
  CHECK(candidate["content"]["parts"][0]["text"] == text_of("gemini-test"));
  CHECK(candidate["finishReason"] == "STOP");
  CHECK(body["modelVersion"] == "gemini-test");
  const std::int64_t p = static_cast<std::int64_t>(req.size() / 4);
  const std::int64_t o = tokens(text_of("gemini-test"));
  const json& u = body["usageMetadata"];
  CHECK(u["promptTokenCount"] == p);
  CHECK(u["cachedContentTokenCount"] == p / 4);
  CHECK(u["candidatesTokenCount"] == o);
  CHECK(u["thoughtsTokenCount"] == 64);
  CHECK(u["totalTokenCount"] == p + o + 64);
  CHECK(expected_answer(UsageFormat::kGemini, "gemini-test", req)->usage == usage_of(p - p / 4, p / 4, 0, 0, o, 64));
}

TEST_CASE("gemini request with function declarations is answered with a functionCall") {
  auto fake = FakeProvider::start();
  std::string req = kGeminiBody;
  req.insert(req.size() - 1, R"(,"tools":[{"functionDeclarations":[{"name":"get_weather"}]}])");
  const json body = json::parse(post(*fake, {"/v1beta/models/gemini-test:generateContent", req}).body);
  const json& call = body["candidates"][0]["content"]["parts"][0]["functionCall"];
  CHECK(call["name"] == "get_weather");
  CHECK(call["args"] == json{{"query", "switchboard"}});
}

TEST_CASE("gemini stream sends CRLF events and only the last has finishReason and full usage") {
  auto fake = FakeProvider::start();
  const Http r = post(*fake, {"/v1beta/models/gemini-test:streamGenerateContent?alt=sse", kGeminiBody});
  REQUIRE(r.code == CURLE_OK);
  CHECK(r.content_type == "text/event-stream");
  CHECK(r.body.find("\r\n\r\n") != std::string::npos);
  const std::vector<Event> events = parse_sse(r.body);
  REQUIRE(events.size() == 3);
  std::string text;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const json chunk = json::parse(events[i].data);
    text += chunk["candidates"][0]["content"]["parts"][0]["text"].get<std::string>();
    CHECK(chunk["candidates"][0].contains("finishReason") == (i + 1 == events.size()));
    CHECK(chunk["usageMetadata"].contains("candidatesTokenCount") == (i + 1 == events.size()));
  }
  CHECK(text == text_of("gemini-test"));
  CHECK(json::parse(events.back().data)["usageMetadata"]["candidatesTokenCount"] == tokens(text_of("gemini-test")));
}

TEST_CASE("gemini stream without alt=sse is one JSON array") {
  auto fake = FakeProvider::start();
  const Http r = post(*fake, {"/v1beta/models/gemini-test:streamGenerateContent", kGeminiBody});
  const json body = json::parse(r.body);
  REQUIRE(body.is_array());
  CHECK(body.size() == 3);
  CHECK(body.back()["candidates"][0]["finishReason"] == "STOP");
}

// ---------------------------------------------------------------------------
// What the real APIs refuse, and the answers to the newer request features.

// A provider error body: its type word (OpenAI and Anthropic `type`, Gemini
// `status`) and message.
struct ErrorBody {
  std::string type;
  std::string message;
};

ErrorBody error_of(const Http& r) {
  const json body = json::parse(r.body, nullptr, false);
  if (!body.is_object() || !body.contains("error")) return {};
  const json& e = body["error"];
  return {e.contains("status") ? e["status"].get<std::string>() : e.value("type", ""), e.value("message", "")};
}

Http post_openai(const FakeProvider& fake, const json& body) {
  return post(fake, {"/v1/chat/completions", body.dump()});
}
Http post_anthropic(const FakeProvider& fake, const json& body) {
  return post(fake, {"/v1/messages", body.dump(), kAnthropicHeaders});
}
Http post_gemini(const FakeProvider& fake, const std::string& model, const json& body, bool stream = false) {
  return post(fake, {"/v1beta/models/" + model + (stream ? ":streamGenerateContent?alt=sse" : ":generateContent"),
                     body.dump()});
}

// What the server said about `body`, checked against expected_rejection:
// 400 with `message` in the provider's shape.
void check_refused(const Http& r, UsageFormat format, const std::string& model, const json& body,
                   const std::string& message) {
  CHECK(r.status == 400);
  const ErrorBody e = error_of(r);
  CHECK(e.type == (format == UsageFormat::kGemini ? "INVALID_ARGUMENT" : "invalid_request_error"));
  CHECK(e.message == message);
  const auto predicted = expected_rejection(format, model, body.dump());
  REQUIRE(predicted);
  CHECK(predicted->status == 400);
  CHECK(predicted->message == message);
}

const json kWeatherTool = {{"type", "function"},
                           {"function",
                            {{"name", "get_weather"},
                             {"parameters",
                              {{"type", "object"},
                               {"properties", {{"city", {{"type", "string"}}}, {"days", {{"type", "integer"}}}}},
                               {"required", {"city", "days"}}}}}}};
const json kClockTool = {
    {"type", "function"},
    {"function", {{"name", "get_time"}, {"parameters", {{"type", "object"}, {"properties", json::object()}}}}}};

TEST_CASE("openai json_object without the word JSON in the messages is refused") {
  auto fake = FakeProvider::start();
  json req = {{"model", "gpt-test"},
              {"response_format", {{"type", "json_object"}}},
              {"messages", {{{"role", "user"}, {"content", "List two fruits."}}}}};
  check_refused(post_openai(*fake, req), UsageFormat::kOpenAI, "gpt-test", req,
                "'messages' must contain the word 'json' in some form, to use 'response_format' of type "
                "'json_object'.");
  // Any case, in any message, as a string or a text part.
  req["messages"].insert(req["messages"].begin(),
                         json{{"role", "system"}, {"content", {{{"type", "text"}, {"text", "Answer in Json."}}}}});
  const Http ok = post_openai(*fake, req);
  CHECK(ok.status == 200);
  CHECK(json::parse(ok.body)["choices"][0]["message"]["content"] == text_of("gpt-test"));
  CHECK_FALSE(expected_rejection(UsageFormat::kOpenAI, "gpt-test", req.dump()));
}

TEST_CASE("openai strict schemas must close every object and require every property") {
  auto fake = FakeProvider::start();
  struct Case {
    const char* name;
    json schema;
    std::string error;  // after "Invalid schema for response_format 'fruits': "; "" accepted
  };
  const json address = {{"type", "object"},
                        {"properties", {{"street", {{"type", "string"}}}, {"zip", {{"type", "string"}}}}},
                        {"required", {"street"}},
                        {"additionalProperties", false}};
  const std::vector<Case> cases = {
      {"open top level", {{"type", "object"}, {"properties", {{"a", {{"type", "string"}}}}}, {"required", {"a"}}},
       "In context=(), 'additionalProperties' is required to be supplied and to be false."},
      {"additionalProperties true",
       {{"type", "object"}, {"properties", json::object()}, {"additionalProperties", true}},
       "In context=(), 'additionalProperties' is required to be supplied and to be false."},
      {"nested property not required",
       {{"type", "object"},
        {"properties", {{"address", address}}},
        {"required", {"address"}},
        {"additionalProperties", false}},
       "In context=('properties', 'address'), 'required' is required to be supplied and to be an array including "
       "every key in properties. Missing 'zip'."},
      {"open array items",
       {{"type", "object"},
        {"properties", {{"list", {{"type", "array"}, {"items", {{"type", "object"}, {"properties", json::object()}}}}}}},
        {"required", {"list"}},
        {"additionalProperties", false}},
       "In context=('properties', 'list', 'items'), 'additionalProperties' is required to be supplied and to be "
       "false."},
      {"strict and closed",
       {{"type", "object"},
        {"properties", {{"a", {{"type", "string"}}}}},
        {"required", {"a"}},
        {"additionalProperties", false}},
       ""},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const json req = {{"model", "gpt-test"},
                      {"response_format",
                       {{"type", "json_schema"}, {"json_schema", {{"name", "fruits"}, {"strict", true}, {"schema", c.schema}}}}},
                      {"messages", {{{"role", "user"}, {"content", "Fruits?"}}}}};
    const Http r = post_openai(*fake, req);
    if (c.error.empty()) {
      CHECK(r.status == 200);
    } else {
      check_refused(r, UsageFormat::kOpenAI, "gpt-test", req, "Invalid schema for response_format 'fruits': " + c.error);
    }
    // Without strict the same schema is taken as it is.
    json loose = req;
    loose["response_format"]["json_schema"]["strict"] = false;
    CHECK(post_openai(*fake, loose).status == 200);
  }
  // A strict function tool follows the same rules.
  json tool = kWeatherTool;
  tool["function"]["strict"] = true;
  const json req = {{"model", "gpt-test"}, {"tools", {tool}}, {"messages", {{{"role", "user"}, {"content", "Paris?"}}}}};
  check_refused(post_openai(*fake, req), UsageFormat::kOpenAI, "gpt-test", req,
                "Invalid schema for function 'get_weather': In context=(), 'additionalProperties' is required to be "
                "supplied and to be false.");
}

TEST_CASE("openai json_schema answers with the plainest instance of the schema") {
  auto fake = FakeProvider::start();
  const json schema = {
      {"type", "object"},
      {"properties",
       {{"name", {{"type", "string"}}},
        {"count", {{"type", "integer"}, {"minimum", 3}}},
        {"ratio", {{"type", "number"}}},
        {"ok", {{"type", "boolean"}}},
        {"color", {{"type", "string"}, {"enum", {"red", "green"}}}},
        {"kind", {{"const", "fruit"}}},
        {"maybe", {{"type", {"null", "string"}}}},
        {"tags", {{"type", "array"}, {"items", {{"$ref", "#/$defs/tag"}}}, {"minItems", 2}}},
        {"note", {{"type", "string"}}}}},
      {"required", {"name", "count", "ratio", "ok", "color", "kind", "maybe", "tags"}},
      {"$defs", {{"tag", {{"type", "object"}, {"properties", {{"label", {{"type", "string"}}}}}, {"required", {"label"}}}}}}};
  json req = {{"model", "gpt-test"},
              {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "answer"}, {"schema", schema}}}}},
              {"messages", {{{"role", "user"}, {"content", "Describe it."}}}}};
  const json want = {{"name", "switchboard"},
                     {"count", 3},
                     {"ratio", 0},
                     {"ok", false},
                     {"color", "red"},
                     {"kind", "fruit"},
                     {"maybe", "switchboard"},
                     {"tags", {{{"label", "switchboard"}}, {{"label", "switchboard"}}}}};
  const json body = json::parse(post_openai(*fake, req).body);
  CHECK(body["choices"][0]["finish_reason"] == "stop");
  const std::string text = body["choices"][0]["message"]["content"];
  CHECK(json::parse(text) == want);  // "note" is not required: left out
  CHECK(expected_answer(UsageFormat::kOpenAI, "gpt-test", req.dump())->text == text);
  CHECK(body["usage"]["completion_tokens"] == tokens(text));
  // Streamed: the same text in pieces.
  req["stream"] = true;
  std::string streamed;
  for (const Event& e : parse_sse(post_openai(*fake, req).body)) {
    if (e.data != "[DONE]") streamed += json::parse(e.data)["choices"][0]["delta"].value("content", "");
  }
  CHECK(streamed == text);
}

TEST_CASE("openai tool_choice required or named forces a call even after a tool result, none forbids one") {
  auto fake = FakeProvider::start();
  const json history = {{{"role", "user"}, {"content", "Weather and time?"}},
                        {{"role", "assistant"},
                         {"content", nullptr},
                         {"tool_calls",
                          {{{"id", "call_1"},
                            {"type", "function"},
                            {"function", {{"name", "get_weather"}, {"arguments", "{}"}}}}}}},
                        {{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "sunny"}}};
  struct Case {
    json choice;  // null: none sent
    std::string tool;  // "" text
    json arguments;
  };
  const std::vector<Case> cases = {
      {"required", "get_weather", {{"city", "switchboard"}, {"days", 0}}},
      {{{"type", "function"}, {"function", {{"name", "get_time"}}}}, "get_time", json::object()},
      {"none", "", nullptr},
      {"auto", "", nullptr},
      {nullptr, "", nullptr},
  };
  for (const Case& c : cases) {
    CAPTURE(c.choice.dump());
    json req = {{"model", "gpt-test"}, {"tools", {kWeatherTool, kClockTool}}, {"messages", history}};
    if (!c.choice.is_null()) req["tool_choice"] = c.choice;
    const json body = json::parse(post_openai(*fake, req).body);
    const json& message = body["choices"][0]["message"];
    const auto want = expected_answer(UsageFormat::kOpenAI, "gpt-test", req.dump());
    REQUIRE(want);
    CHECK(want->tool_name == c.tool);
    if (c.tool.empty()) {
      CHECK(body["choices"][0]["finish_reason"] == "stop");
      CHECK(message["content"] == text_of("gpt-test"));
    } else {
      CHECK(body["choices"][0]["finish_reason"] == "tool_calls");
      CHECK(message["tool_calls"][0]["function"]["name"] == c.tool);
      const std::string arguments = message["tool_calls"][0]["function"]["arguments"];
      CHECK(json::parse(arguments) == c.arguments);
      CHECK(want->arguments_json == arguments);
    }
  }
  // Before any tool result, none still forbids the call.
  const json fresh = {{"model", "gpt-test"},
                      {"tools", {kWeatherTool}},
                      {"tool_choice", "none"},
                      {"messages", {{{"role", "user"}, {"content", "Weather?"}}}}};
  CHECK(json::parse(post_openai(*fake, fresh).body)["choices"][0]["finish_reason"] == "stop");
}

TEST_CASE("openai images files and audio are counted in the answer text") {
  auto fake = FakeProvider::start();
  const json req = {
      {"model", "gpt-test"},
      {"messages",
       {{{"role", "user"},
         {"content",
          {{{"type", "text"}, {"text", "What is in these?"}},
           {{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64,iVBORw0KGgo="}}}},
           {{"type", "image_url"}, {"image_url", {{"url", "https://example.com/cat.jpg"}, {"detail", "low"}}}},
           {{"type", "file"}, {"file", {{"filename", "a.pdf"}, {"file_data", "data:application/pdf;base64,JVBERi0="}}}},
           {{"type", "input_audio"}, {"input_audio", {{"data", "UklGRg=="}, {"format", "wav"}}}}}}}}}};
  const std::string want = text_of("gpt-test") + " (saw 2 images, 1 document, 1 audio clip)";
  CHECK(json::parse(post_openai(*fake, req).body)["choices"][0]["message"]["content"] == want);
  CHECK(expected_answer(UsageFormat::kOpenAI, "gpt-test", req.dump())->text == want);
  // One image alone: singular, and only that kind.
  json one = req;
  one["messages"][0]["content"] = {{{"type", "image_url"}, {"image_url", {{"url", "https://example.com/a.png"}}}}};
  CHECK(json::parse(post_openai(*fake, one).body)["choices"][0]["message"]["content"] ==
        text_of("gpt-test") + " (saw 1 image)");
}

const json kLookupTool = {{"name", "get_weather"},
                          {"input_schema",
                           {{"type", "object"},
                            {"properties", {{"city", {{"type", "string"}}}}},
                            {"required", {"city"}}}}};

json anthropic_thinking_request() {
  return {{"model", "claude-test"},
          {"max_tokens", 4096},
          {"thinking", {{"type", "enabled"}, {"budget_tokens", 1024}}},
          {"tools", {kLookupTool}},
          {"messages", {{{"role", "user"}, {"content", "Weather in Paris?"}}}}};
}

// `first` continued with the fake's answer `content` and a result for its tool_use.
json continued(json first, const json& content) {
  std::string id;
  for (const json& block : content) {
    if (block["type"] == "tool_use") id = block["id"];
  }
  first["messages"].push_back({{"role", "assistant"}, {"content", content}});
  first["messages"].push_back(
      {{"role", "user"}, {"content", {{{"type", "tool_result"}, {"tool_use_id", id}, {"content", "sunny"}}}}});
  return first;
}

TEST_CASE("anthropic signs its thinking and checks the signature when it comes back") {
  auto fake = FakeProvider::start();
  const json first = anthropic_thinking_request();
  const Http r = post_anthropic(*fake, first);
  REQUIRE(r.status == 200);
  const json content = json::parse(r.body)["content"];
  REQUIRE(content.size() == 2);
  const auto want = expected_answer(UsageFormat::kAnthropic, "claude-test", first.dump());
  REQUIRE(want);
  CHECK(content[0]["type"] == "thinking");
  CHECK(content[0]["thinking"] == want->thinking);
  CHECK(content[0]["signature"] == want->signature);
  CHECK(content[1]["type"] == "tool_use");

  // The same thinking streams the same signature, in a signature_delta.
  json streamed = first;
  streamed["stream"] = true;
  std::string signature;
  for (const Event& e : parse_sse(post_anthropic(*fake, streamed).body)) {
    const json data = json::parse(e.data);
    if (data["type"] == "content_block_delta" && data["delta"]["type"] == "signature_delta") {
      signature += data["delta"]["signature"].get<std::string>();
    }
  }
  CHECK(signature == want->signature);

  // Sent back untouched, the next turn is answered (with text: the tool answered).
  const json second = continued(first, content);
  const Http next = post_anthropic(*fake, second);
  CHECK(next.status == 200);
  CHECK(json::parse(next.body)["content"].back()["text"] == text_of("claude-test"));

  // A different signature, edited thinking, or none at all is refused.
  json forged = second;
  forged["messages"][1]["content"][0]["signature"] = "EqQBCkgIBRABGAIiQForgedSignature==";
  check_refused(post_anthropic(*fake, forged), UsageFormat::kAnthropic, "claude-test", forged,
                "messages.1.content.0: Invalid `signature` in `thinking` block");
  json edited = second;
  edited["messages"][1]["content"][0]["thinking"] = "I thought something else.";
  check_refused(post_anthropic(*fake, edited), UsageFormat::kAnthropic, "claude-test", edited,
                "messages.1.content.0: Invalid `signature` in `thinking` block");
  json unsigned_block = second;
  unsigned_block["messages"][1]["content"][0].erase("signature");
  check_refused(post_anthropic(*fake, unsigned_block), UsageFormat::kAnthropic, "claude-test", unsigned_block,
                "messages.1.content.0.thinking.signature: Field required");
  // Signatures are checked with thinking off too: they are the fake's or nothing.
  json off = forged;
  off.erase("thinking");
  CHECK(post_anthropic(*fake, off).status == 400);
}

TEST_CASE("anthropic refuses a thinking tool turn whose assistant message lost its thinking block") {
  auto fake = FakeProvider::start();
  const json first = anthropic_thinking_request();
  const json content = json::parse(post_anthropic(*fake, first).body)["content"];
  const std::string tail =
      "`. When `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the "
      "lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks from previous "
      "turns. To avoid this requirement, disable `thinking`. Please consult our documentation at "
      "https://docs.claude.com/en/docs/build-with-claude/extended-thinking";
  json dropped = continued(first, json::array({content[1]}));
  check_refused(post_anthropic(*fake, dropped), UsageFormat::kAnthropic, "claude-test", dropped,
                "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `tool_use" + tail);
  json text_first = continued(first, json::array({{{"type", "text"}, {"text", "Let me look."}}, content[1]}));
  check_refused(post_anthropic(*fake, text_first), UsageFormat::kAnthropic, "claude-test", text_first,
                "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `text" + tail);
  // Without thinking the same history is fine.
  json plain = dropped;
  plain.erase("thinking");
  CHECK(post_anthropic(*fake, plain).status == 200);
  // Only the last assistant message must start with thinking: an earlier
  // tool turn may have lost its thinking once the turn ended in text.
  json older = dropped;
  older["messages"].push_back({{"role", "assistant"}, {"content", {{{"type", "text"}, {"text", "Sunny."}}}}});
  older["messages"].push_back({{"role", "user"}, {"content", "And tomorrow?"}});
  CHECK(post_anthropic(*fake, older).status == 200);
  CHECK_FALSE(expected_rejection(UsageFormat::kAnthropic, "claude-test", older.dump()));
}

TEST_CASE("anthropic checks max_tokens, the thinking budget and what thinking cannot go with") {
  auto fake = FakeProvider::start();
  const std::string consult =
      " Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
      "#important-considerations-when-using-extended-thinking";
  struct Case {
    const char* name;
    json patch;         // merged into a thinking request (null values remove)
    std::string error;  // "" accepted
  };
  const std::vector<Case> cases = {
      {"no max_tokens", {{"max_tokens", nullptr}}, "max_tokens: Field required"},
      {"no budget", {{"thinking", {{"type", "enabled"}, {"budget_tokens", nullptr}}}},
       "thinking.enabled.budget_tokens: Field required"},
      {"budget under 1024", {{"thinking", {{"budget_tokens", 1000}}}},
       "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"},
      {"budget at max_tokens", {{"thinking", {{"budget_tokens", 4096}}}},
       "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at "
       "https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size"},
      {"temperature", {{"temperature", 0.5}}, "`temperature` may only be set to 1 when thinking is enabled." + consult},
      {"top_k", {{"top_k", 5}}, "`top_k` must be unset when thinking is enabled." + consult},
      {"top_p low", {{"top_p", 0.5}}, "`top_p` must be unset or between 0.95 and 1 when thinking is enabled." + consult},
      {"tool_choice any", {{"tool_choice", {{"type", "any"}}}},
       "Thinking may not be enabled when tool_choice forces tool use."},
      {"tool_choice tool", {{"tool_choice", {{"type", "tool"}, {"name", "get_weather"}}}},
       "Thinking may not be enabled when tool_choice forces tool use."},
      {"temperature 1", {{"temperature", 1}}, ""},
      {"top_p 0.95", {{"top_p", 0.95}}, ""},
      {"tool_choice auto", {{"tool_choice", {{"type", "auto"}}}}, ""},
      {"budget just under max_tokens", {{"thinking", {{"budget_tokens", 4095}}}}, ""},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    json req = anthropic_thinking_request();
    req.merge_patch(c.patch);
    const Http r = post_anthropic(*fake, req);
    if (c.error.empty()) {
      CHECK(r.status == 200);
      CHECK_FALSE(expected_rejection(UsageFormat::kAnthropic, "claude-test", req.dump()));
    } else {
      check_refused(r, UsageFormat::kAnthropic, "claude-test", req, c.error);
    }
  }
  // Without thinking, sampling and a forced tool are fine.
  json plain = anthropic_thinking_request();
  plain.erase("thinking");
  plain.merge_patch({{"temperature", 0.2}, {"top_k", 5}, {"top_p", 0.5}, {"tool_choice", {{"type", "any"}}}});
  CHECK(post_anthropic(*fake, plain).status == 200);
}

TEST_CASE("anthropic tool_choice any and tool force a call even after a tool result") {
  auto fake = FakeProvider::start();
  json first = anthropic_thinking_request();
  first.erase("thinking");
  first["tools"].push_back({{"name", "get_time"}, {"input_schema", {{"type", "object"}}}});
  const json content = json::parse(post_anthropic(*fake, first).body)["content"];
  const json answered = continued(first, content);
  CHECK(json::parse(post_anthropic(*fake, answered).body)["stop_reason"] == "end_turn");
  struct Case {
    json choice;
    std::string tool;
    json input;
  };
  for (const Case& c : {Case{{{"type", "any"}}, "get_weather", {{"city", "switchboard"}}},
                        Case{{{"type", "tool"}, {"name", "get_time"}}, "get_time", json::object()},
                        Case{{{"type", "none"}}, "", nullptr}}) {
    CAPTURE(c.choice.dump());
    json req = answered;
    req["tool_choice"] = c.choice;
    const json body = json::parse(post_anthropic(*fake, req).body);
    if (c.tool.empty()) {
      CHECK(body["stop_reason"] == "end_turn");
      CHECK(body["content"][0]["text"] == text_of("claude-test"));
    } else {
      CHECK(body["stop_reason"] == "tool_use");
      CHECK(body["content"][0]["name"] == c.tool);
      CHECK(body["content"][0]["input"] == c.input);
      CHECK(json::parse(expected_answer(UsageFormat::kAnthropic, "claude-test", req.dump())->arguments_json) == c.input);
    }
  }
}

TEST_CASE("anthropic answers the redacted-thinking test prompt with redacted_thinking and checks it back") {
  auto fake = FakeProvider::start();
  json first = anthropic_thinking_request();
  first["messages"][0]["content"] =
      "ANTHROPIC_MAGIC_STRING_TRIGGER_REDACTED_THINKING_46C9A13E193C177646C7398A98432ECCCE4C1253D5E2D82641AC0E52CC2876CB";
  const json body = json::parse(post_anthropic(*fake, first).body);
  const auto want = expected_answer(UsageFormat::kAnthropic, "claude-test", first.dump());
  REQUIRE(want);
  CHECK(want->thinking.empty());
  REQUIRE(body["content"].size() == 2);
  CHECK(body["content"][0] == json{{"type", "redacted_thinking"}, {"data", want->redacted_thinking}});
  CHECK(body["content"][1]["type"] == "tool_use");
  CHECK(body["usage"]["output_tokens"] == tokens("get_weather" + want->arguments_json) + 64);

  json streamed = first;
  streamed["stream"] = true;
  std::vector<std::string> names;
  json start;
  for (const Event& e : parse_sse(post_anthropic(*fake, streamed).body)) {
    names.push_back(e.name);
    if (start.is_null() && e.name == "content_block_start") start = json::parse(e.data);
  }
  CHECK(start["index"] == 0);
  CHECK(start["content_block"] == body["content"][0]);
  CHECK(std::vector<std::string>(names.begin(), names.begin() + 4) ==
        std::vector<std::string>{"message_start", "content_block_start", "ping", "content_block_stop"});

  const json second = continued(first, body["content"]);
  CHECK(post_anthropic(*fake, second).status == 200);
  json forged = second;
  forged["messages"][1]["content"][0]["data"] = "c29tZXRoaW5nIGVsc2U=";
  check_refused(post_anthropic(*fake, forged), UsageFormat::kAnthropic, "claude-test", forged,
                "messages.1.content.0: Invalid `data` in `redacted_thinking` block");
}

TEST_CASE("anthropic images and documents are counted, tool results' included") {
  auto fake = FakeProvider::start();
  const json image = {{"type", "image"},
                      {"source", {{"type", "base64"}, {"media_type", "image/png"}, {"data", "iVBORw0KGgo="}}}};
  const json req = {
      {"model", "claude-test"},
      {"max_tokens", 1024},
      {"messages",
       {{{"role", "user"},
         {"content",
          {image,
           {{"type", "document"},
            {"source", {{"type", "base64"}, {"media_type", "application/pdf"}, {"data", "JVBERi0="}}}},
           {{"type", "text"}, {"text", "What are these?"}}}}},
        {{"role", "assistant"},
         {"content", {{{"type", "tool_use"}, {"id", "toolu_1"}, {"name", "shot"}, {"input", json::object()}}}}},
        {{"role", "user"},
         {"content", {{{"type", "tool_result"}, {"tool_use_id", "toolu_1"}, {"content", {image}}}}}}}}};
  const std::string want = text_of("claude-test") + " (saw 2 images, 1 document)";
  CHECK(json::parse(post_anthropic(*fake, req).body)["content"][0]["text"] == want);
  CHECK(expected_answer(UsageFormat::kAnthropic, "claude-test", req.dump())->text == want);
}

TEST_CASE("gemini refuses schema fields its Schema does not have") {
  auto fake = FakeProvider::start();
  json req = {{"contents", {{{"role", "user"}, {"parts", {{{"text", "Fruits?"}}}}}}},
              {"generationConfig",
               {{"responseMimeType", "application/json"},
                {"responseSchema",
                 {{"type", "OBJECT"},
                  {"additionalProperties", false},
                  {"properties",
                   {{"fruits", {{"type", "ARRAY"}, {"items", {{"$ref", "#/$defs/fruit"}}}}},
                    {"count", {{"type", "INTEGER"}}}}}}}}}};
  check_refused(post_gemini(*fake, "gemini-test", req), UsageFormat::kGemini, "gemini-test", req,
                "Invalid JSON payload received. Unknown name \"additionalProperties\" at "
                "'generation_config.response_schema': Cannot find field.\n"
                "Invalid JSON payload received. Unknown name \"$ref\" at "
                "'generation_config.response_schema.properties[1].value.items': Cannot find field.");
  // A function's parameters are checked the same way.
  const json tools = {{{"functionDeclarations",
                        {{{"name", "get_weather"},
                          {"parameters",
                           {{"$schema", "http://json-schema.org/draft-07/schema#"},
                            {"type", "object"},
                            {"properties", {{"city", {{"type", "string"}}}}}}}}}}}};
  const json with_tool = {{"contents", req["contents"]}, {"tools", tools}};
  check_refused(post_gemini(*fake, "gemini-test", with_tool), UsageFormat::kGemini, "gemini-test", with_tool,
                "Invalid JSON payload received. Unknown name \"$schema\" at "
                "'tools[0].function_declarations[0].parameters': Cannot find field.");
  // responseJsonSchema takes JSON Schema as it is.
  json json_schema = req;
  json_schema["generationConfig"]["responseJsonSchema"] = json_schema["generationConfig"]["responseSchema"];
  json_schema["generationConfig"].erase("responseSchema");
  json_schema["generationConfig"]["responseJsonSchema"]["$defs"] = {{"fruit", {{"type", "string"}}}};
  CHECK(post_gemini(*fake, "gemini-test", json_schema).status == 200);
}

TEST_CASE("gemini responseSchema answers with an instance of it") {
  auto fake = FakeProvider::start();
  const json req = {{"contents", {{{"role", "user"}, {"parts", {{{"text", "Fruits?"}}}}}}},
                    {"generationConfig",
                     {{"responseMimeType", "application/json"},
                      {"responseSchema",
                       {{"type", "OBJECT"},
                        {"properties",
                         {{"fruits", {{"type", "ARRAY"}, {"minItems", "1"}, {"items", {{"type", "STRING"}}}}},
                          {"count", {{"type", "INTEGER"}}},
                          {"ripe", {{"type", "BOOLEAN"}, {"nullable", true}}}}},
                        {"required", {"fruits", "count"}},
                        {"propertyOrdering", {"fruits", "count", "ripe"}}}}}}};
  const json body = json::parse(post_gemini(*fake, "gemini-test", req).body);
  const std::string text = body["candidates"][0]["content"]["parts"][0]["text"];
  CHECK(json::parse(text) == json{{"fruits", {"switchboard"}}, {"count", 0}});
  CHECK(expected_answer(UsageFormat::kGemini, "gemini-test", req.dump())->text == text);
}

json gemini_thinking_request(bool include_thoughts) {
  return {{"contents", {{{"role", "user"}, {"parts", {{{"text", "Weather in Paris?"}}}}}}},
          {"tools", {{{"functionDeclarations", {{{"name", "get_weather"}}}}}}},
          {"generationConfig", {{"thinkingConfig", {{"thinkingBudget", 1024}, {"includeThoughts", include_thoughts}}}}}};
}

TEST_CASE("gemini thinking answers carry a thought part and a thoughtSignature") {
  auto fake = FakeProvider::start();
  const json req = gemini_thinking_request(true);
  const auto want = expected_answer(UsageFormat::kGemini, "gemini-test", req.dump());
  REQUIRE(want);
  CHECK_FALSE(want->signature.empty());
  const json parts = json::parse(post_gemini(*fake, "gemini-test", req).body)["candidates"][0]["content"]["parts"];
  REQUIRE(parts.size() == 2);
  CHECK(parts[0] == json{{"text", want->thinking}, {"thought", true}});
  CHECK(parts[1]["functionCall"]["name"] == "get_weather");
  CHECK(parts[1]["thoughtSignature"] == want->signature);

  // Text answers sign their text part; without includeThoughts there is no thought part.
  json text_req = gemini_thinking_request(false);
  text_req.erase("tools");
  const json text_parts =
      json::parse(post_gemini(*fake, "gemini-test", text_req).body)["candidates"][0]["content"]["parts"];
  REQUIRE(text_parts.size() == 1);
  CHECK(text_parts[0]["text"] == text_of("gemini-test"));
  CHECK(text_parts[0]["thoughtSignature"] == want->signature);
  CHECK(expected_answer(UsageFormat::kGemini, "gemini-test", text_req.dump())->thinking.empty());

  // Streamed: a chunk of the thought first, then the answer's chunks, the first signed.
  json stream_req = gemini_thinking_request(true);
  stream_req.erase("tools");
  const std::vector<Event> events = parse_sse(post_gemini(*fake, "gemini-test", stream_req, true).body);
  REQUIRE(events.size() == 4);
  const json thought = json::parse(events[0].data);
  CHECK(thought["candidates"][0]["content"]["parts"] == json::array({{{"text", want->thinking}, {"thought", true}}}));
  CHECK_FALSE(thought["candidates"][0].contains("finishReason"));
  CHECK(json::parse(events[1].data)["candidates"][0]["content"]["parts"][0]["thoughtSignature"] == want->signature);
  std::string text;
  for (std::size_t i = 1; i < events.size(); ++i) {
    text += json::parse(events[i].data)["candidates"][0]["content"]["parts"][0]["text"].get<std::string>();
  }
  CHECK(text == text_of("gemini-test"));
  CHECK(json::parse(events.back().data)["usageMetadata"]["thoughtsTokenCount"] == 64);
}

TEST_CASE("gemini 3 refuses a function call of the current turn without its thoughtSignature") {
  auto fake = FakeProvider::start();
  const std::string model = "gemini-3-pro-preview";
  const json first = gemini_thinking_request(false);
  const json call = json::parse(post_gemini(*fake, model, first).body)["candidates"][0]["content"]["parts"][0];
  REQUIRE(call.contains("thoughtSignature"));
  json second = first;
  second["contents"].push_back({{"role", "model"}, {"parts", {call}}});
  second["contents"].push_back(
      {{"role", "user"},
       {"parts", {{{"functionResponse", {{"name", "get_weather"}, {"response", {{"result", "sunny"}}}}}}}}});
  CHECK(post_gemini(*fake, model, second).status == 200);

  json unsigned_call = second;
  unsigned_call["contents"][1]["parts"][0].erase("thoughtSignature");
  check_refused(post_gemini(*fake, model, unsigned_call), UsageFormat::kGemini, model, unsigned_call,
                "Function call is missing a thought_signature in functionCall parts. This is required for tools to "
                "work correctly, and missing thought_signature may lead to degraded model performance. Additional "
                "data, function call `default_api:get_weather` , position 2. Please refer to "
                "https://ai.google.dev/gemini-api/docs/thought-signatures for more details.");
  // Gemini 2.5 does not insist; nor does Gemini 3 for a turn that has ended.
  CHECK(post_gemini(*fake, "gemini-2.5-flash", unsigned_call).status == 200);
  json ended = unsigned_call;
  ended["contents"].push_back({{"role", "model"}, {"parts", {{{"text", "Sunny."}}}}});
  ended["contents"].push_back({{"role", "user"}, {"parts", {{{"text", "Thanks."}}}}});
  CHECK(post_gemini(*fake, model, ended).status == 200);

  // A signature the fake did not make is corrupted, on any model.
  json forged = second;
  forged["contents"][1]["parts"][0]["thoughtSignature"] = "Q2xhdWRlIHNpZ25lZCB0aGlz";
  check_refused(post_gemini(*fake, "gemini-2.5-flash", forged), UsageFormat::kGemini, "gemini-2.5-flash", forged,
                "Corrupted thought signature.");
}

TEST_CASE("gemini mode ANY forces a call even after a function response") {
  auto fake = FakeProvider::start();
  json req = {{"contents",
               {{{"role", "user"}, {"parts", {{{"text", "Weather?"}}}}},
                {{"role", "model"}, {"parts", {{{"functionCall", {{"name", "get_weather"}, {"args", json::object()}}}}}}},
                {{"role", "user"},
                 {"parts", {{{"functionResponse", {{"name", "get_weather"}, {"response", {{"result", "sunny"}}}}}}}}}}},
              {"tools",
               {{{"functionDeclarations",
                  {{{"name", "get_weather"},
                    {"parameters",
                     {{"type", "OBJECT"}, {"properties", {{"city", {{"type", "STRING"}}}}}, {"required", {"city"}}}}},
                   {{"name", "get_time"}}}}}}}};
  CHECK(json::parse(post_gemini(*fake, "gemini-test", req).body)["candidates"][0]["content"]["parts"][0]["text"] ==
        text_of("gemini-test"));
  req["toolConfig"] = {{"functionCallingConfig", {{"mode", "ANY"}}}};
  json call = json::parse(post_gemini(*fake, "gemini-test", req).body)["candidates"][0]["content"]["parts"][0];
  CHECK(call["functionCall"] == json{{"name", "get_weather"}, {"args", {{"city", "switchboard"}}}});
  req["toolConfig"]["functionCallingConfig"]["allowedFunctionNames"] = {"get_time"};
  call = json::parse(post_gemini(*fake, "gemini-test", req).body)["candidates"][0]["content"]["parts"][0];
  CHECK(call["functionCall"] == json{{"name", "get_time"}, {"args", json::object()}});
  CHECK(expected_answer(UsageFormat::kGemini, "gemini-test", req.dump())->tool_name == "get_time");
}

TEST_CASE("gemini inline and file data are counted by their media type") {
  auto fake = FakeProvider::start();
  const json req = {
      {"contents",
       {{{"role", "user"},
         {"parts",
          {{{"text", "What are these?"}},
           {{"inlineData", {{"mimeType", "image/jpeg"}, {"data", "/9j/4AAQ"}}}},
           {{"fileData", {{"mimeType", "application/pdf"}, {"fileUri", "https://example.com/a.pdf"}}}},
           {{"inline_data", {{"mime_type", "audio/wav"}, {"data", "UklGRg=="}}}}}}}}}};
  const std::string want = text_of("gemini-test") + " (saw 1 image, 1 document, 1 audio clip)";
  CHECK(json::parse(post_gemini(*fake, "gemini-test", req).body)["candidates"][0]["content"]["parts"][0]["text"] ==
        want);
  CHECK(expected_answer(UsageFormat::kGemini, "gemini-test", req.dump())->text == want);
}

TEST_CASE("a refused request does not use up a fault") {
  auto fake = FakeProvider::start();
  fake->inject(Fault::kServerError);
  const json bad = {{"model", "gpt-test"},
                    {"response_format", {{"type", "json_object"}}},
                    {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  CHECK(post_openai(*fake, bad).status == 400);
  CHECK(post(*fake, {"/v1/chat/completions", kOpenAIBody}).status == 500);
}

TEST_CASE("rate limiting answers 429 with Retry-After in each provider's error shape") {
  auto fake = FakeProvider::start();
  struct Case {
    Call call;
    std::string error_type;  // where each provider names the error
  };
  const std::vector<Case> cases = {
      {{"/v1/chat/completions", kOpenAIBody}, "requests"},
      {{"/v1/messages", kAnthropicBody, kAnthropicHeaders}, "rate_limit_error"},
      {{"/v1beta/models/gemini-test:generateContent", kGeminiBody}, "RESOURCE_EXHAUSTED"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.call.path);
    FaultSpec spec;
    spec.kind = Fault::kRateLimited;
    spec.retry_after_s = 7;
    fake->inject(spec);
    const Http r = post(*fake, c.call);
    CHECK(r.status == 429);
    CHECK(header_value(r.headers, "Retry-After") == "7");
    const json body = json::parse(r.body);
    const json& type = body.contains("type") ? body["error"]["type"]
                       : body["error"].contains("status") ? body["error"]["status"]
                                                          : body["error"]["type"];
    CHECK(type == c.error_type);
    CHECK(post(*fake, c.call).status == 200);  // one time only
  }
}

TEST_CASE("server errors and overload use each provider's status") {
  auto fake = FakeProvider::start();
  fake->inject(Fault::kServerError);
  CHECK(post(*fake, {"/v1/chat/completions", kOpenAIBody}).status == 500);
  fake->inject(Fault::kOverloaded, 2);
  const Http anthropic = post(*fake, {"/v1/messages", kAnthropicBody, kAnthropicHeaders});
  CHECK(anthropic.status == 529);
  CHECK(json::parse(anthropic.body)["error"]["type"] == "overloaded_error");
  const Http gemini = post(*fake, {"/v1beta/models/g:generateContent", kGeminiBody});
  CHECK(gemini.status == 503);
  CHECK(json::parse(gemini.body)["error"]["status"] == "UNAVAILABLE");
  fake->inject(Fault::kOverloaded);
  CHECK(post(*fake, {"/v1/chat/completions", kOpenAIBody}).status == 503);
}

TEST_CASE("a fault for one model leaves other models alone") {
  auto fake = FakeProvider::start();
  fake->inject(Fault::kServerError, 1, "gemini-sick");
  CHECK(post(*fake, {"/v1beta/models/gemini-well:generateContent", kGeminiBody}).status == 200);
  CHECK(post(*fake, {"/v1/chat/completions", kOpenAIBody}).status == 200);
  CHECK(post(*fake, {"/v1beta/models/gemini-sick:generateContent", kGeminiBody}).status == 500);
  CHECK(post(*fake, {"/v1beta/models/gemini-sick:generateContent", kGeminiBody}).status == 200);
}

TEST_CASE("a cut stream closes the connection before its final event") {
  auto fake = FakeProvider::start();
  fake->inject(Fault::kCutStream, 2);
  const Http openai = post(*fake, {"/v1/chat/completions", R"({"model":"m","stream":true,"messages":[]})"});
  CHECK(openai.code == CURLE_PARTIAL_FILE);
  CHECK(openai.status == 200);
  CHECK_FALSE(parse_sse(openai.body).empty());
  CHECK(openai.body.find("[DONE]") == std::string::npos);
  std::string req = kAnthropicBody;
  req.insert(1, R"("stream":true,)");
  const Http anthropic = post(*fake, {"/v1/messages", req, kAnthropicHeaders});
  CHECK(anthropic.code == CURLE_PARTIAL_FILE);
  CHECK(anthropic.body.find("message_start") != std::string::npos);
  CHECK(anthropic.body.find("message_stop") == std::string::npos);
}

TEST_CASE("malformed JSON and the wrong content type arrive as 200s") {
  auto fake = FakeProvider::start();
  fake->inject(Fault::kMalformedJson);
  const Http malformed = post(*fake, {"/v1/chat/completions", kOpenAIBody});
  CHECK(malformed.code == CURLE_OK);
  CHECK(malformed.status == 200);
  CHECK(malformed.content_type == "application/json");
  CHECK(json::parse(malformed.body, nullptr, false).is_discarded());
  fake->inject(Fault::kWrongContentType);
  const Http html = post(*fake, {"/v1/messages", kAnthropicBody, kAnthropicHeaders});
  CHECK(html.status == 200);
  CHECK(html.content_type == "text/html");
  CHECK(html.body.find("502 Bad Gateway") != std::string::npos);
}

TEST_CASE("an oversized body has the requested size and stops when the client leaves") {
  auto fake = FakeProvider::start();
  FaultSpec spec;
  spec.kind = Fault::kOversizedBody;
  spec.bytes = 2u << 20;
  fake->inject(spec);
  const Http whole = post(*fake, {"/v1/chat/completions", kOpenAIBody});
  REQUIRE(whole.code == CURLE_OK);
  CHECK(whole.body.size() == spec.bytes);
  const json body = json::parse(whole.body);
  CHECK(body["choices"][0]["message"]["content"].get<std::string>().size() > spec.bytes / 2);

  spec.bytes = 64u << 20;
  fake->inject(spec);
  Call call{"/v1/chat/completions", kOpenAIBody};
  call.stop_after = 1u << 20;
  const Http aborted = post(*fake, call);
  CHECK(aborted.code == CURLE_WRITE_ERROR);
  CHECK(post(*fake, {"/v1/chat/completions", kOpenAIBody}).status == 200);
}

TEST_CASE("a slow first byte arrives after the delay") {
  auto fake = FakeProvider::start();
  FaultSpec spec;
  spec.kind = Fault::kSlowFirstByte;
  spec.delay = std::chrono::milliseconds(150);
  fake->inject(spec);
  const auto start = Clock::now();
  const Http r = post(*fake, {"/v1/chat/completions", kOpenAIBody});
  CHECK(r.status == 200);
  CHECK(Clock::now() - start >= std::chrono::milliseconds(150));
}

TEST_CASE("a hung request times out on the client and the server still stops") {
  auto fake = FakeProvider::start();
  fake->inject(Fault::kHang);
  Call call{"/v1beta/models/g:generateContent", kGeminiBody};
  call.timeout_ms = 300;
  const auto start = Clock::now();
  const Http r = post(*fake, call);
  CHECK(r.code == CURLE_OPERATION_TIMEDOUT);
  CHECK(Clock::now() - start < std::chrono::seconds(2));
  CHECK(post(*fake, {"/v1beta/models/g:generateContent", kGeminiBody}).status == 200);
  // A hang the client never gives up on: the destructor must still return.
  fake->inject(Fault::kHang);
  std::thread waiting([base = fake->base_url(), call] {
    Call forever = call;
    forever.timeout_ms = 10000;
    CurlHandle curl(curl_easy_init());
    CHECK(post(curl.get(), base, forever).code != CURLE_OPERATION_TIMEDOUT);
  });
  REQUIRE(fake->wait_held(2, std::chrono::seconds(5)));
  fake.reset();
  waiting.join();
}

// The requests the held-connection cases send: three streams and one plain
// call, each with what only its final bytes would carry.
struct HeldCase {
  const char* name;
  std::string path;
  std::string body;
  std::vector<std::string> headers;
  std::string model;
  std::string final_mark;  // "" for the plain call: checked by Content-Length instead
};

std::vector<HeldCase> held_cases() {
  std::string anthropic = kAnthropicBody;
  anthropic.insert(1, R"("stream":true,)");
  return {
      {"openai stream", "/v1/chat/completions", R"({"model":"gpt-test","stream":true,"messages":[]})", {},
       "gpt-test", "[DONE]"},
      {"anthropic stream", "/v1/messages", anthropic, kAnthropicHeaders, "claude-test", "message_stop"},
      {"gemini stream", "/v1beta/models/gemini-test:streamGenerateContent?alt=sse", kGeminiBody, {},
       "gemini-test", "finishReason"},
      {"gemini plain call", "/v1beta/models/gemini-test:generateContent", kGeminiBody, {}, "gemini-test", ""},
  };
}

TEST_CASE("a stalled stream sends what a cut stream sends, then stays open and silent") {
  for (const HeldCase& c : held_cases()) {
    CAPTURE(c.name);
    // Two fresh servers, so both answers carry the same sequence number.
    auto cut_fake = FakeProvider::start();
    cut_fake->inject(Fault::kCutStream);
    RawClient cut_client(cut_fake->port());
    REQUIRE(cut_client.send_all(raw_post(c.path, c.body, c.headers)));
    const std::string cut = cut_client.read_to_end(std::chrono::seconds(5));
    REQUIRE(cut_client.eof());

    auto fake = FakeProvider::start();
    fake->inject(Fault::kStallStream);
    RawClient client(fake->port());
    REQUIRE(client.send_all(raw_post(c.path, c.body, c.headers)));
    const std::string got = client.read(cut.size(), std::chrono::seconds(5));
    CHECK(got == cut);
    CHECK(got.rfind("HTTP/1.1 200 ", 0) == 0);
    const std::size_t head_end = got.find("\r\n\r\n");
    REQUIRE(head_end != std::string::npos);
    const std::string body = got.substr(head_end + 4);
    if (c.final_mark.empty()) {
      const std::string length = header_value(got.substr(0, head_end + 2), "Content-Length");
      REQUIRE_FALSE(length.empty());
      CHECK(body.size() == std::stoul(length) / 2);
    } else {
      CHECK(body.find("data: ") != std::string::npos);     // some events came
      CHECK(body.find(c.final_mark) == std::string::npos);  // but not the last
    }
    // Then nothing, and the connection stays open.
    CHECK(client.read(1, std::chrono::milliseconds(200)).empty());
    CHECK_FALSE(client.eof());
    const std::vector<HeldConnection> held = fake->held();
    REQUIRE(held.size() == 1);
    CHECK(held[0].fault == Fault::kStallStream);
    CHECK(held[0].model == c.model);
    CHECK_FALSE(held[0].closed.has_value());
  }
}

TEST_CASE("a held connection closed by its client is seen within 100 ms") {
  for (const Fault fault : {Fault::kHang, Fault::kStallStream}) {
    for (const HeldCase& c : held_cases()) {
      CAPTURE(c.name);
      CAPTURE(fault == Fault::kHang ? "hang" : "stall");
      auto fake = FakeProvider::start();
      fake->inject(fault);
      RawClient client(fake->port());
      REQUIRE(client.send_all(raw_post(c.path, c.body, c.headers)));
      REQUIRE(fake->wait_held(1, std::chrono::seconds(5)));
      if (fault == Fault::kStallStream) CHECK_FALSE(client.read(1, std::chrono::seconds(5)).empty());
      CHECK_FALSE(fake->wait_held_closed(1, std::chrono::milliseconds(50)));  // open: not closed yet
      const Clock::time_point client_closed = client.close();
      REQUIRE(fake->wait_held_closed(1, std::chrono::seconds(5)));
      const std::vector<HeldConnection> held = fake->held();
      REQUIRE(held.size() == 1);
      REQUIRE(held[0].closed.has_value());
      CHECK(held[0].fault == fault);
      CHECK(held[0].received < client_closed);
      CHECK(*held[0].closed >= client_closed);
      CHECK(*held[0].closed - client_closed < std::chrono::milliseconds(100));
    }
  }
}

TEST_CASE("held connections are listed in arrival order and each close is its own") {
  auto fake = FakeProvider::start();
  fake->inject(Fault::kHang, 1, "m-first");
  fake->inject(Fault::kStallStream, 1, "m-second");
  RawClient first(fake->port());
  REQUIRE(first.send_all(raw_post("/v1/chat/completions", R"({"model":"m-first","messages":[]})")));
  REQUIRE(fake->wait_held(1, std::chrono::seconds(5)));
  RawClient second(fake->port());
  REQUIRE(second.send_all(raw_post("/v1/chat/completions", R"({"model":"m-second","stream":true,"messages":[]})")));
  REQUIRE(fake->wait_held(2, std::chrono::seconds(5)));
  CHECK(post(*fake, {"/v1/chat/completions", kOpenAIBody}).status == 200);  // not held
  second.close();
  REQUIRE(fake->wait_held_closed(1, std::chrono::seconds(5)));
  std::vector<HeldConnection> held = fake->held();
  REQUIRE(held.size() == 2);
  CHECK(held[0].model == "m-first");
  CHECK(held[0].fault == Fault::kHang);
  CHECK_FALSE(held[0].closed.has_value());
  CHECK(held[1].model == "m-second");
  CHECK(held[1].fault == Fault::kStallStream);
  CHECK(held[1].closed.has_value());
  CHECK(held[0].received <= held[1].received);

  // clear() forgets them; a close after it is not recorded anywhere.
  fake->clear();
  CHECK(fake->held().empty());
  first.close();
  CHECK_FALSE(fake->wait_held_closed(1, std::chrono::milliseconds(200)));
  CHECK(fake->held().empty());
}

TEST_CASE("a server that stops with held connections open records no client close") {
  auto fake = FakeProvider::start();
  fake->inject(Fault::kHang);
  fake->inject(Fault::kStallStream);
  RawClient hung(fake->port());
  REQUIRE(hung.send_all(raw_post("/v1/chat/completions", kOpenAIBody)));
  REQUIRE(fake->wait_held(1, std::chrono::seconds(5)));
  RawClient stalled(fake->port());
  REQUIRE(stalled.send_all(raw_post("/v1/chat/completions", R"({"model":"m","stream":true,"messages":[]})")));
  REQUIRE(fake->wait_held(2, std::chrono::seconds(5)));
  CHECK_FALSE(stalled.read(1, std::chrono::seconds(5)).empty());
  fake->stop();
  // The clients see the server close: end of file after whatever was sent.
  hung.read_to_end(std::chrono::seconds(5));
  stalled.read_to_end(std::chrono::seconds(5));
  CHECK(hung.eof());
  CHECK(stalled.eof());
  const std::vector<HeldConnection> held = fake->held();
  REQUIRE(held.size() == 2);
  CHECK_FALSE(held[0].closed.has_value());
  CHECK_FALSE(held[1].closed.has_value());
  CHECK_FALSE(fake->wait_held_closed(1, std::chrono::milliseconds(0)));
  fake->stop();  // again: nothing left to do
}

TEST_CASE("latency delays every answer without holding up other connections") {
  FakeProviderOptions options;
  options.latency = std::chrono::milliseconds(200);
  options.threads = 1;
  auto fake = FakeProvider::start(options);
  const auto start = Clock::now();
  std::vector<std::thread> clients;
  std::vector<long> statuses(8);
  for (std::size_t i = 0; i < statuses.size(); ++i) {
    clients.emplace_back([&, i] { statuses[i] = post(*fake, {"/v1/chat/completions", kOpenAIBody}).status; });
  }
  for (std::thread& t : clients) t.join();
  const auto elapsed = Clock::now() - start;
  for (long s : statuses) CHECK(s == 200);
  CHECK(elapsed >= std::chrono::milliseconds(200));
  CHECK(elapsed < std::chrono::milliseconds(1200));  // 8 sequential waits would take 1600
}

TEST_CASE("keep-alive serves two requests on one connection") {
  auto fake = FakeProvider::start();
  CurlHandle curl(curl_easy_init());
  const Http first = post(curl.get(), fake->base_url(), {"/v1/chat/completions", kOpenAIBody});
  const Http second = post(curl.get(), fake->base_url(), {"/v1/messages", kAnthropicBody, kAnthropicHeaders});
  CHECK(first.status == 200);
  CHECK(second.status == 200);
  CHECK(first.new_connections == 1);
  CHECK(second.new_connections == 0);
}

TEST_CASE("received records method target headers and body until clear") {
  auto fake = FakeProvider::start();
  post(*fake, {"/v1/messages", kAnthropicBody, kAnthropicHeaders});
  post(*fake, {"/v1beta/models/gemini-test:streamGenerateContent?alt=sse", kGeminiBody});
  const std::vector<ReceivedRequest> got = fake->received();
  REQUIRE(got.size() == 2);
  CHECK(fake->request_count() == 2);
  CHECK(got[0].method == "POST");
  CHECK(got[0].target == "/v1/messages");
  CHECK(got[0].header("X-API-KEY") == "test-key");
  CHECK(got[0].body == kAnthropicBody);
  CHECK(got[1].target == "/v1beta/models/gemini-test:streamGenerateContent?alt=sse");
  fake->inject(Fault::kServerError);
  fake->clear();
  CHECK(fake->received().empty());
  CHECK(fake->request_count() == 0);
  CHECK(post(*fake, {"/v1/chat/completions", kOpenAIBody}).status == 200);  // the fault went too
}

TEST_CASE("bad requests are refused and the server carries on") {
  auto fake = FakeProvider::start();
  CHECK(post(*fake, {"/v1/chat/completions", "{not json"}).status == 400);
  CHECK(post(*fake, {"/v1/chat/completions", "[1,2]"}).status == 400);
  CHECK(post(*fake, {"/v1/chat/completions", R"({"messages":[]})"}).status == 400);
  const Http gemini = post(*fake, {"/v1beta/models/g:generateContent", "{"});
  CHECK(gemini.status == 400);
  CHECK(json::parse(gemini.body)["error"]["status"] == "INVALID_ARGUMENT");
  CHECK(post(*fake, {"/v1/unknown", kOpenAIBody}).status == 404);
  CHECK(post(*fake, {"/v1beta/models/g:countTokens", kGeminiBody}).status == 404);

  // Not HTTP at all, over a plain socket.
  RawClient raw(fake->port());
  REQUIRE(raw.ok());
  REQUIRE(raw.send_all("\x01\x02 NOT HTTP\r\n\r\n"));
  const std::string answer = raw.read_to_end(std::chrono::seconds(5));
  CHECK(raw.eof());
  CHECK(answer.rfind("HTTP/1.1 400 ", 0) == 0);
  CHECK(post(*fake, {"/v1/chat/completions", kOpenAIBody}).status == 200);
}

TEST_CASE("the fake_provider program prints its port and exits on SIGTERM") {
  int out[2];
  REQUIRE(pipe(out) == 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  char program[] = SWITCHBOARD_FAKE_PROVIDER;
  char flag[] = "--latency-ms";
  char value[] = "1";
  char* argv[] = {program, flag, value, nullptr};
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, program, &actions, nullptr, argv, environ) == 0);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  std::string line;
  char ch;
  while (read(out[0], &ch, 1) == 1 && ch != '\n') line += ch;
  close(out[0]);
  REQUIRE(line.rfind("listening on 127.0.0.1:", 0) == 0);
  const std::string base = "http://" + line.substr(std::string("listening on ").size());
  CurlHandle curl(curl_easy_init());
  CHECK(post(curl.get(), base, {"/v1/chat/completions", kOpenAIBody}).status == 200);
  kill(pid, SIGTERM);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

}  // TEST_SUITE

}  // namespace
}  // namespace switchboard::testing
