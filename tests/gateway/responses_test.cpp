// POST /v1/responses end to end, and Claude thinking + tool loops through
// the gateway: switchboard-gateway as a child process in front of the
// FakeProvider speaking Anthropic's Messages API, which rejects a thinking
// tool turn whose thinking block does not come back verbatim. Covers
// previous_response_id (kept across a restart, refused with store: false),
// the stateless way (reasoning items sent back), and the stream's events.
#include <curl/curl.h>
#include <doctest/doctest.h>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fake_provider.h"
#include "gateway_rig.h"
#include "providers/sse.h"
#include "test_util.h"

#ifdef SWITCHBOARD_GATEWAY

namespace switchboard::testing {
namespace {

using nlohmann::json;

constexpr const char* kKeyEnv = "SWITCHBOARD_RESPONSES_TEST_KEY";

// Every step goes to Claude (at the fake); a step the client asks for by
// model name is honoured as usual.
std::string config_for(const std::string& fake_url, const std::string& gateway_extra) {
  return R"toml(
[routing]
price_catalog = "prices.toml"
premium_tier = "claude"
default_fallback_tier = "claude"

[calls]
max_attempts = 1
first_byte_timeout_ms = 5000

[models.claude-rt]
provider = "anthropic"
endpoint = ")toml" + fake_url + R"toml("
api_key_env = ")toml" + kKeyEnv + R"toml("
context_window = 200000
max_output_tokens = 32000
capabilities = { thinking = true, tools = true, json_schema = true, vision = true }
thinking_budget = { low = 1024, medium = 2048, high = 4096 }

[models.m-cheap]
provider = "sim"
context_window = 100000

[tiers.claude]
models = ["claude-rt"]

[tiers.sim]
models = ["m-cheap"]

[workloads.w]
rules = "rules/w.lua"
fallback_tier = "claude"

[gateway]
default_workload = "w"
ledger = "ledger.db"
)toml" + gateway_extra;
}

struct Rig {
  explicit Rig(const std::string& gateway_extra = "") {
    fake = FakeProvider::start();
    dir.write("rules/w.lua", R"lua(function classify(step, ctx) return "claude" end)lua");
    dir.write("prices.toml", small_prices("[models.claude-rt]\ninput = 3.0\noutput = 15.0\n"));
    config = dir.write("switchboard.toml", config_for(fake->base_url(), gateway_extra));
    start();
  }
  void start() { gateway = std::make_unique<GatewayProcess>(config, env()); }
  std::vector<std::pair<std::string, std::string>> env() const { return {{kKeyEnv, "sk-ant-test-1234567890"}}; }
  std::string url(const std::string& path) const { return gateway->url() + path; }
  // The body of the last request the fake received.
  json last_upstream() const {
    const std::vector<ReceivedRequest> got = fake->received();
    REQUIRE_FALSE(got.empty());
    return json::parse(got.back().body);
  }

  std::unique_ptr<FakeProvider> fake;
  TempDir dir;
  std::string config;
  std::unique_ptr<GatewayProcess> gateway;
};

std::vector<SseEvent> events_of(const std::string& body) {
  std::vector<SseEvent> out;
  SseParser parser;
  parser.feed(body, [&](const SseEvent& e) {
    out.push_back(e);
    return true;
  });
  return out;
}

// What a Responses stream says, accumulated the way the openai SDK's
// ResponseAccumulator does (it throws on the same gaps: a delta for an item
// or part that was never added).
struct Streamed {
  json response;                   // response.completed's
  std::vector<std::string> types;  // every event's type, in order
  std::string reasoning;           // reasoning_summary_text deltas
  std::string text;                // output_text deltas
  std::string arguments;           // function_call_arguments deltas
};

Streamed accumulate(const std::string& body) {
  Streamed s;
  json snapshot;
  std::int64_t sequence = -1;
  for (const SseEvent& e : events_of(body)) {
    const json data = json::parse(e.data);
    const std::string type = data.at("type");
    CHECK(e.type == type);  // the event: line names the data's type
    s.types.push_back(type);
    CHECK(data.at("sequence_number").get<std::int64_t>() == sequence + 1);
    sequence = data.at("sequence_number");
    if (type == "response.created") {
      snapshot = data.at("response");
      CHECK(snapshot.at("status") == "in_progress");
      continue;
    }
    REQUIRE_FALSE(snapshot.is_null());
    if (type == "response.output_item.added") {
      CHECK(data.at("output_index") == snapshot["output"].size());
      snapshot["output"].push_back(data.at("item"));
    } else if (type == "response.output_item.done") {
      snapshot["output"].at(data.at("output_index").get<std::size_t>()) = data.at("item");
    } else if (type == "response.content_part.added") {
      snapshot["output"].at(data.at("output_index").get<std::size_t>())["content"].push_back(data.at("part"));
    } else if (type == "response.reasoning_summary_part.added") {
      snapshot["output"].at(data.at("output_index").get<std::size_t>())["summary"].push_back(data.at("part"));
    } else if (type == "response.output_text.delta") {
      json& item = snapshot["output"].at(data.at("output_index").get<std::size_t>());
      REQUIRE(item.at("content").at(data.at("content_index").get<std::size_t>()).at("type") == "output_text");
      s.text += data.at("delta").get<std::string>();
    } else if (type == "response.reasoning_summary_text.delta") {
      json& item = snapshot["output"].at(data.at("output_index").get<std::size_t>());
      REQUIRE(item.at("type") == "reasoning");
      REQUIRE(item.at("summary").size() > data.at("summary_index").get<std::size_t>());
      s.reasoning += data.at("delta").get<std::string>();
    } else if (type == "response.function_call_arguments.delta") {
      REQUIRE(snapshot["output"].at(data.at("output_index").get<std::size_t>()).at("type") == "function_call");
      s.arguments += data.at("delta").get<std::string>();
    } else if (type == "response.completed" || type == "response.incomplete") {
      s.response = data.at("response");
    }
  }
  return s;
}

// The first output item of `type` in a response object.
json item_of(const json& response, const std::string& type) {
  for (const json& item : response.at("output")) {
    if (item.at("type") == type) return item;
  }
  return nullptr;
}

const char* kTools = R"([{"type":"function","name":"search","description":"Searches the web",
  "parameters":{"type":"object","properties":{"query":{"type":"string"}},"required":["query"]}}])";

}  // namespace

TEST_SUITE("gateway_responses") {

TEST_CASE("a Responses request is answered as a response object and routed like the others") {
  Rig rig;
  const Reply r = post(rig.url("/v1/responses"),
                       R"({"model":"sim","instructions":"Be brief.","input":"Format this: a, b","max_output_tokens":64})");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const json body = json::parse(r.body);
  CHECK(body.at("object") == "response");
  CHECK(body.at("id").get<std::string>().rfind("resp_", 0) == 0);
  CHECK(body.at("status") == "completed");
  CHECK(body.at("model") == "m-cheap");
  CHECK(body.at("instructions") == "Be brief.");
  CHECK(body.at("max_output_tokens") == 64);
  const json message = item_of(body, "message");
  REQUIRE_FALSE(message.is_null());
  CHECK(message.at("role") == "assistant");
  CHECK(message.at("content").at(0).at("type") == "output_text");
  CHECK_FALSE(message.at("content").at(0).at("text").get<std::string>().empty());
  CHECK(body.at("usage").at("input_tokens").get<int>() > 0);
  CHECK(body.at("usage").at("total_tokens") ==
        body.at("usage").at("input_tokens").get<int>() + body.at("usage").at("output_tokens").get<int>());
  CHECK(r.header("x-switchboard-tier") == "sim");

  // Unknown fields and tools are 400s in OpenAI's error shape, naming them.
  const Reply bad = post(rig.url("/v1/responses"), R"({"model":"auto","input":"x","background":true})");
  CHECK(bad.status == 400);
  CHECK(json::parse(bad.body).at("error").at("param") == "background");
  const Reply tool = post(rig.url("/v1/responses"),
                          R"({"model":"auto","input":"x","tools":[{"type":"web_search_preview"}]})");
  CHECK(tool.status == 400);
  CHECK(json::parse(tool.body).at("error").at("param") == "tools[0].type");
}

TEST_CASE("a Claude thinking and tool loop of three turns through /v1/responses streams its thinking and completes") {
  Rig rig;
  // Turn 1: the question; Claude thinks, then calls search.
  const Reply t1 = post(rig.url("/v1/responses"),
                        std::string(R"({"model":"auto","stream":true,"reasoning":{"effort":"high"},"tools":)") + kTools +
                            R"(,"input":[{"role":"user","content":"Look switchboard up, then tell me about it."}]})");
  REQUIRE_MESSAGE(t1.status == 200, t1.body);
  CHECK(contains(t1.header("content-type"), "text/event-stream"));
  const Streamed s1 = accumulate(t1.body);
  CHECK(s1.types.front() == "response.created");
  CHECK(s1.types.back() == "response.completed");
  CHECK_FALSE(s1.reasoning.empty());  // the thinking, visible as it streamed
  CHECK(json::parse(s1.arguments) == json{{"query", "switchboard"}});
  const json reasoning1 = item_of(s1.response, "reasoning");
  REQUIRE_FALSE(reasoning1.is_null());
  CHECK(reasoning1.at("summary").at(0).at("text") == s1.reasoning);
  CHECK(reasoning1.at("encrypted_content").get<std::string>().rfind("anthropic:", 0) == 0);
  const json call1 = item_of(s1.response, "function_call");
  REQUIRE_FALSE(call1.is_null());
  CHECK(call1.at("name") == "search");
  const json upstream1 = rig.last_upstream();
  CHECK(upstream1.at("thinking").at("type") == "enabled");

  // Turn 2: only the tool's output, chained by previous_response_id; the fake
  // rejects the turn unless Claude's thinking block comes back verbatim.
  const json turn2 = {{"model", "auto"},
                      {"stream", true},
                      {"reasoning", {{"effort", "high"}}},
                      {"tools", json::parse(kTools)},
                      {"previous_response_id", s1.response.at("id")},
                      {"input", json::array({json{{"type", "function_call_output"},
                                                  {"call_id", call1.at("call_id")},
                                                  {"output", "Switchboard routes model calls."}}})}};
  const Reply t2 = post(rig.url("/v1/responses"), turn2.dump());
  REQUIRE_MESSAGE(t2.status == 200, t2.body);
  const Streamed s2 = accumulate(t2.body);
  REQUIRE_MESSAGE(s2.types.back() == "response.completed", t2.body);
  CHECK_FALSE(s2.text.empty());
  const json upstream2 = rig.last_upstream();
  const json& assistant = upstream2.at("messages").at(1);
  CHECK(assistant.at("role") == "assistant");
  CHECK(assistant.at("content").at(0).at("type") == "thinking");
  CHECK(assistant.at("content").at(0).at("thinking") == s1.reasoning);
  CHECK("anthropic:" + assistant.at("content").at(0).at("signature").get<std::string>() ==
        reasoning1.at("encrypted_content"));
  CHECK(upstream2.at("messages").at(2).at("content").at(0).at("type") == "tool_result");

  // Turn 3: a new question on the chain: both earlier thinking blocks go back.
  const json turn3 = {{"model", "auto"},
                      {"reasoning", {{"effort", "high"}}},
                      {"tools", json::parse(kTools)},
                      {"previous_response_id", s2.response.at("id")},
                      {"input", "Search once more."}};
  const Reply t3 = post(rig.url("/v1/responses"), turn3.dump());
  REQUIRE_MESSAGE(t3.status == 200, t3.body);
  const json r3 = json::parse(t3.body);
  CHECK_FALSE(item_of(r3, "function_call").is_null());
  const json upstream3 = rig.last_upstream();
  REQUIRE(upstream3.at("messages").size() == 5);
  CHECK(upstream3.at("messages").at(1).at("content").at(0).at("type") == "thinking");
  CHECK(upstream3.at("messages").at(3).at("content").at(0).at("type") == "thinking");
}

TEST_CASE("without a store the client sends the reasoning items back itself") {
  Rig rig;
  const Reply t1 = post(rig.url("/v1/responses"),
                        std::string(R"({"model":"auto","store":false,"reasoning":{"effort":"high"},"tools":)") +
                            kTools + R"(,"input":"Look switchboard up."})");
  REQUIRE_MESSAGE(t1.status == 200, t1.body);
  const json r1 = json::parse(t1.body);
  CHECK(r1.at("store") == false);
  json input = json::array({json{{"role", "user"}, {"content", "Look switchboard up."}}});
  for (const json& item : r1.at("output")) input.push_back(item);
  input.push_back(json{{"type", "function_call_output"},
                       {"call_id", item_of(r1, "function_call").at("call_id")},
                       {"output", "Switchboard routes model calls."}});
  const json turn2 = {{"model", "auto"}, {"store", false}, {"reasoning", {{"effort", "high"}}},
                      {"tools", json::parse(kTools)}, {"input", input}};
  const Reply t2 = post(rig.url("/v1/responses"), turn2.dump());
  REQUIRE_MESSAGE(t2.status == 200, t2.body);
  CHECK(rig.last_upstream().at("messages").at(1).at("content").at(0).at("type") == "thinking");

  // store: false keeps nothing to chain to.
  const json chained = {{"model", "auto"}, {"previous_response_id", r1.at("id")}, {"input", "Go on."}};
  const Reply missing = post(rig.url("/v1/responses"), chained.dump());
  CHECK(missing.status == 404);
  const json error = json::parse(missing.body).at("error");
  CHECK(error.at("param") == "previous_response_id");
  CHECK(error.at("code") == "previous_response_not_found");
}

TEST_CASE("a stored response survives a restart and the store keeps at most stored_responses") {
  Rig rig("stored_responses = 2\n");
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    const Reply r = post(rig.url("/v1/responses"), R"({"model":"sim","input":"Turn )" + std::to_string(i) + R"("})");
    REQUIRE_MESSAGE(r.status == 200, r.body);
    ids.push_back(json::parse(r.body).at("id"));
  }
  rig.gateway.reset();  // killed: nothing is flushed on the way out
  rig.start();
  const auto follow = [&](const std::string& id) {
    const json body = {{"model", "sim"}, {"previous_response_id", id}, {"input", "And then?"}};
    return post(rig.url("/v1/responses"), body.dump());
  };
  CHECK(follow(ids[0]).status == 404);  // the oldest, evicted by the third
  const Reply kept = follow(ids[2]);
  CHECK_MESSAGE(kept.status == 200, kept.body);
  CHECK(json::parse(kept.body).at("previous_response_id") == ids[2]);
}

TEST_CASE("a Claude thinking and tool loop of three turns through /v1/messages streams its thinking and completes") {
  Rig rig;
  json messages = json::array({json{{"role", "user"}, {"content", "Look switchboard up, then tell me about it."}}});
  const json tools = json::parse(R"([{"name":"search","description":"Searches the web",
    "input_schema":{"type":"object","properties":{"query":{"type":"string"}},"required":["query"]}}])");
  // One streamed turn: the assistant's content as the SDK accumulates it.
  const auto turn = [&](std::string* thinking) {
    const json body = {{"model", "auto"},  {"max_tokens", 8000}, {"stream", true},
                       {"tools", tools},   {"messages", messages},
                       {"thinking", {{"type", "enabled"}, {"budget_tokens", 2048}}}};
    const Reply r = post(rig.url("/v1/messages"), body.dump(), {"anthropic-version: 2023-06-01"});
    REQUIRE_MESSAGE(r.status == 200, r.body);
    json content = json::array();
    for (const SseEvent& e : events_of(r.body)) {
      const json data = json::parse(e.data);
      if (e.type == "content_block_start") {
        content.push_back(data.at("content_block"));
      } else if (e.type == "content_block_delta") {
        json& block = content.at(data.at("index").get<std::size_t>());
        const json& delta = data.at("delta");
        if (delta.at("type") == "thinking_delta") {
          block["thinking"] = block["thinking"].get<std::string>() + delta.at("thinking").get<std::string>();
          *thinking += delta.at("thinking").get<std::string>();
        } else if (delta.at("type") == "signature_delta") {
          block["signature"] = delta.at("signature");
        } else if (delta.at("type") == "text_delta") {
          block["text"] = block["text"].get<std::string>() + delta.at("text").get<std::string>();
        } else if (delta.at("type") == "input_json_delta") {
          block["partial"] = block.value("partial", "") + delta.at("partial_json").get<std::string>();
        }
      }
    }
    for (json& block : content) {
      if (block.contains("partial")) {
        block["input"] = json::parse(block["partial"].get<std::string>());
        block.erase("partial");
      }
    }
    return content;
  };
  for (int t = 0; t < 3; ++t) {
    CAPTURE(t);
    std::string thinking;
    const json content = turn(&thinking);
    CHECK_FALSE(thinking.empty());  // visible in the stream
    REQUIRE(content.at(0).at("type") == "thinking");
    messages.push_back(json{{"role", "assistant"}, {"content", content}});
    const json& last = content.back();
    if (last.at("type") == "tool_use") {
      messages.push_back(json{{"role", "user"},
                              {"content", json::array({json{{"type", "tool_result"},
                                                            {"tool_use_id", last.at("id")},
                                                            {"content", "Switchboard routes model calls."}}})}});
    } else {
      messages.push_back(json{{"role", "user"}, {"content", "Search once more."}});
    }
  }
  // The last upstream request carried every thinking block back.
  const json upstream = rig.last_upstream();
  int thinking_blocks = 0;
  for (const json& m : upstream.at("messages")) {
    if (m.at("role") == "assistant" && m.at("content").at(0).at("type") == "thinking") ++thinking_blocks;
  }
  CHECK(thinking_blocks == 2);
}

// What a streamed POST received, piece by piece with the time each came.
struct Timed {
  long status = 0;
  std::chrono::milliseconds first_byte{0};  // the head's first byte
  std::vector<std::pair<std::chrono::milliseconds, std::string>> pieces;  // body pieces
  std::string body() const {
    std::string all;
    for (const auto& [at, piece] : pieces) all += piece;
    return all;
  }
};

Timed timed_post(const std::string& url, const std::string& body, const std::vector<std::string>& headers) {
  struct State {
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    Timed out;
    bool headed = false;
  } state;
  const auto since = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - state.start);
  };
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  curl_slist* list = curl_slist_append(nullptr, "Content-Type: application/json");
  for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, 20'000L);
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  using Callback = size_t (*)(char*, size_t, size_t, void*);
  struct Ctx {
    State* state;
    decltype(since)* now;
  } ctx{&state, &since};
  Callback on_header = [](char*, size_t size, size_t n, void* user) -> size_t {
    auto* c = static_cast<Ctx*>(user);
    if (!c->state->headed) c->state->out.first_byte = (*c->now)();
    c->state->headed = true;
    return size * n;
  };
  Callback on_body = [](char* data, size_t size, size_t n, void* user) -> size_t {
    auto* c = static_cast<Ctx*>(user);
    c->state->out.pieces.emplace_back((*c->now)(), std::string(data, size * n));
    return size * n;
  };
  curl_easy_setopt(curl.get(), CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl.get(), CURLOPT_HEADERDATA, &ctx);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &ctx);
  curl_easy_perform(curl.get());
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &state.out.status);
  curl_slist_free_all(list);
  return state.out;
}

TEST_CASE("a stream whose upstream thinks silently gets its head at once and keep-alives until the first token") {
  // The upstream sends its first event, then nothing for 3 s (a model
  // thinking without a word); the gateway keeps the client's connection
  // alive every 250 ms (15 s by default: the proportions of a 40 s pause).
  Rig rig("stream_keepalive_ms = 250\n");
  const std::string claude = R"({"model":"auto","max_tokens":500,"stream":true,"messages":[{"role":"user","content":"Hi"}]})";
  const std::string openai = R"({"model":"auto","stream":true,"messages":[{"role":"user","content":"Hi"}]})";
  struct Shape {
    const char* path;
    std::string body;
    std::vector<std::string> headers;
    const char* keep_alive;    // what a keep-alive looks like in this shape
    const char* first_token;   // what the first token's event holds
  };
  const Shape shapes[] = {
      {"/v1/messages", claude, {"anthropic-version: 2023-06-01"}, "event: ping", "text_delta"},
      {"/v1/chat/completions", openai, {}, ": keep-alive", "\"content\":\"Hello"},
      {"/v1/responses", R"({"model":"auto","stream":true,"input":"Hi"})", {}, ": keep-alive", "output_text.delta"},
  };
  for (const Shape& shape : shapes) {
    CAPTURE(shape.path);
    rig.fake->inject(FaultSpec{Fault::kPauseStream, 1, "", std::chrono::milliseconds(3000), 1, 0});
    const Timed t = timed_post(rig.url(shape.path), shape.body, shape.headers);
    REQUIRE(t.status == 200);
    CHECK(t.first_byte < std::chrono::milliseconds(1500));  // the head before the pause ends
    // Keep-alives, each in a piece of its own, before the first token.
    int keep_alives = 0;
    std::chrono::milliseconds first_token{-1};
    for (const auto& [at, piece] : t.pieces) {
      if (piece.find(shape.first_token) != std::string::npos && first_token.count() < 0) first_token = at;
      if (piece.find(shape.keep_alive) != std::string::npos && first_token.count() < 0) ++keep_alives;
    }
    CHECK(first_token >= std::chrono::milliseconds(2900));
    CHECK(keep_alives >= 6);  // ~12 expected in 3 s at 250 ms; slack for a loaded machine
    CHECK(contains(t.body(), shape.first_token));
  }
}

}  // TEST_SUITE

}  // namespace switchboard::testing

#endif  // SWITCHBOARD_GATEWAY
