// Hostile HTTP against switchboard-gateway as a child process, over raw
// sockets where curl would not send the bytes: every case gets an answer in
// its API's error shape (or a closed connection, for a client too slow to
// answer), a normal request is served after it, and the process lives. The
// [gateway] memory and parse limits are the defaults; the peak RSS of the
// whole run is reported and bounded.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "fake_provider.h"
#include "gateway_rig.h"
#include "test_util.h"

#ifdef SWITCHBOARD_GATEWAY

namespace switchboard::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

const char* kRules = R"lua(
function classify(step, ctx)
  return { tier = "cheap", reason = "one tier" }
end
)lua";

// Sim models, a tier "tiny" whose only model has a 1,000-token window, and
// "keyed" (the fake provider) for upstream errors. Every [gateway] limit
// but the header timeout (short, so the slow client ends soon) is the default.
std::string hostile_config(const std::string& fake_url) {
  return R"toml(
[routing]
price_catalog = "prices.toml"
premium_tier = "premium"
default_fallback_tier = "cheap"

[calls]
max_attempts = 1

[models.m-cheap]
provider = "sim"
context_window = 100000
default_output_tokens = 200

[models.m-premium]
provider = "sim"
context_window = 200000
default_output_tokens = 400

[models.m-tiny]
provider = "sim"
context_window = 1000
default_output_tokens = 100

[models.m-keyed]
provider = "openai"
endpoint = ")toml" + fake_url + R"toml(/v1"
api_key_env = "SWITCHBOARD_TEST_UPSTREAM_KEY"
context_window = 100000

[tiers.cheap]
models = ["m-cheap"]

[tiers.premium]
models = ["m-premium"]

[tiers.tiny]
models = ["m-tiny"]

[tiers.keyed]
models = ["m-keyed"]

[workloads.w]
rules = "rules/w.lua"
fallback_tier = "cheap"

[gateway]
default_workload = "w"
ledger = "ledger.db"
header_timeout_ms = 1500
)toml";
}

const std::string kPrices = R"toml(
[models.m-tiny]
input = 1.0
output = 1.0

[models.m-keyed]
input = 1.0
output = 1.0
)toml";

struct HostileRig {
  HostileRig() : fake(FakeProvider::start()) {
    dir.write("rules/w.lua", kRules);
    dir.write("prices.toml", small_prices(kPrices));
    const std::string config = dir.write("switchboard.toml", hostile_config(fake->base_url()));
    gateway = std::make_unique<GatewayProcess>(
        config, std::vector<std::pair<std::string, std::string>>{{"SWITCHBOARD_TEST_UPSTREAM_KEY", "upstream-key"}});
  }
  std::string url(const std::string& path) const { return gateway->url() + path; }
  std::uint16_t port() const { return gateway->port(); }

  std::unique_ptr<FakeProvider> fake;
  TempDir dir;
  std::unique_ptr<GatewayProcess> gateway;
};

const std::string kChat = R"({"model":"auto","messages":[{"role":"user","content":"hello"}]})";
const std::string kMessages = R"({"model":"auto","max_tokens":100,"messages":[{"role":"user","content":"hello"}]})";

// A raw request with this head (its lines, without the final CRLF) and body.
std::string raw(const std::string& head, const std::string& body = "") { return head + "\r\n\r\n" + body; }

// The body is the error JSON of its API: OpenAI {"error":{"message","type",...}}
// or Anthropic {"type":"error","error":{"type","message"}}; returns the error object.
json error_of(const std::string& body, bool anthropic) {
  const json j = json::parse(body, nullptr, false);
  REQUIRE_MESSAGE(j.is_object(), body);
  REQUIRE_MESSAGE(j.contains("error"), body);
  const json& e = j["error"];
  REQUIRE_MESSAGE(e.is_object(), body);
  CHECK_MESSAGE(e["message"].is_string(), body);
  CHECK_MESSAGE(e["type"].is_string(), body);
  if (anthropic) {
    CHECK_MESSAGE(j["type"] == "error", body);
  } else {
    CHECK_MESSAGE(e.contains("code"), body);
    CHECK_MESSAGE(e.contains("param"), body);
  }
  return e;
}

// A normal request is served, and the process lives.
void still_serves(HostileRig& rig) {
  const Reply r = post(rig.url("/v1/chat/completions"), kChat);
  CHECK_MESSAGE(r.status == 200, r.body);
  CHECK(rig.gateway->alive());
}

// Nested n deep: {"a":{"a":...{}...}}.
std::string deep_object(int n) {
  std::string s;
  s.reserve(static_cast<std::size_t>(n) * 6 + 2);
  for (int i = 0; i < n; ++i) s += R"({"a":)";
  s += "{}";
  s.append(static_cast<std::size_t>(n), '}');
  return s;
}

}  // namespace

TEST_SUITE("gateway hostile http") {

TEST_CASE("malformed framing gets a 4xx in its API's shape and the gateway goes on serving") {
  HostileRig rig;
  const std::string body = kChat;
  const std::string cl = "Content-Length: " + std::to_string(body.size());
  const std::string post_head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json";
  char hex[16];
  std::snprintf(hex, sizeof hex, "%zx", body.size());
  const std::string one_chunk = std::string(hex) + "\r\n" + body + "\r\n";
  struct Case {
    const char* what;
    std::string request;
    int status;
    const char* says;
  };
  const Case cases[] = {
      {"a trailer field of 70,000 bytes", raw(post_head + "\r\nTransfer-Encoding: chunked", one_chunk + "0\r\nX-Big: " +
                                                  std::string(70'000, 'a') + "\r\n\r\n"),
       431, "trailer"},
      {"a trailer field of 65,535 bytes", raw(post_head + "\r\nTransfer-Encoding: chunked", one_chunk + "0\r\nX: " +
                                                  std::string(65'535, 'a') + "\r\n\r\n"),
       431, "trailer"},
      {"HTTP/1.1 without Host", raw("POST /v1/chat/completions HTTP/1.1\r\n" + cl, body), 400, "Host"},
      {"two Host headers", raw(post_head + "\r\nHost: y\r\n" + cl, body), 400, "Host"},
      {"an obs-folded header", raw(post_head + "\r\nX-Folded: a\r\n b\r\n" + cl, body), 400, "obs-fold"},
      {"Content-Length and Transfer-Encoding", raw(post_head + "\r\n" + cl + "\r\nTransfer-Encoding: chunked",
                                                   one_chunk + "0\r\n\r\n"),
       400, "Content-Length"},
      {"Transfer-Encoding then Content-Length",
       raw(post_head + "\r\nTransfer-Encoding: gzip\r\n" + cl, body), 400, "Content-Length"},
      {"two Content-Length headers", raw(post_head + "\r\n" + cl + "\r\n" + cl, body), 400, "Content-Length"},
      {"a Content-Length list", raw(post_head + "\r\nContent-Length: " + std::to_string(body.size()) + ", " +
                                        std::to_string(body.size()),
                                    body),
       400, "Content-Length"},
      {"a Content-Length that is not a number", raw(post_head + "\r\nContent-Length: 12abc", body), 400, "Content-Length"},
      {"a coding other than chunked", raw(post_head + "\r\nTransfer-Encoding: gzip, chunked", one_chunk + "0\r\n\r\n"),
       501, "gzip"},
      {"Transfer-Encoding not ending in chunked", raw(post_head + "\r\nTransfer-Encoding: gzip", body), 400, "chunked"},
      {"headers over 64 KiB", raw(post_head + "\r\nX-Big: " + std::string(70'000, 'h') + "\r\n" + cl, body), 431,
       "bytes"},
      {"garbage bytes", std::string("\x16\x03\x01\x02\x00\xff\xfe GARBAGE\r\n\r\n", 20), 400, "not valid HTTP"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    const RawResponse r = raw_exchange(rig.port(), c.request);
    CHECK_MESSAGE(r.status == c.status, r.body);
    if (r.status != 0) {
      const json e = error_of(r.body, false);
      CHECK_MESSAGE(contains(e["message"].get<std::string>(), c.says), r.body);
    }
    still_serves(rig);
  }

  // Anthropic's path gets Anthropic's shape.
  const RawResponse anthropic =
      raw_exchange(rig.port(), raw("POST /v1/messages HTTP/1.1\r\nX-Folded: a\r\n\tb\r\nHost: x\r\n" + cl, body));
  CHECK(anthropic.status == 400);
  CHECK(error_of(anthropic.body, true)["type"] == "invalid_request_error");
  still_serves(rig);
}

TEST_CASE("pipelined requests are answered in order on one connection") {
  HostileRig rig;
  const std::string one = raw("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                                  std::to_string(kChat.size()),
                              kChat);
  const std::string health = raw("GET /healthz HTTP/1.1\r\nHost: x");
  RawConnection c(rig.port());
  REQUIRE(c.ok());
  REQUIRE(c.send_all(one + health + one));
  std::string got = c.read(10s, [](const std::string& s) {
    std::size_t at = 0;
    for (int i = 0; i < 3; ++i) {
      const RawResponse r = parse_raw_response(std::string_view(s).substr(at));
      if (r.status == 0) return false;
      at += r.size;
    }
    return true;
  });
  std::vector<RawResponse> answers;
  for (std::size_t at = 0; answers.size() < 3;) {
    RawResponse r = parse_raw_response(std::string_view(got).substr(at));
    if (r.status == 0) break;
    at += r.size;
    answers.push_back(std::move(r));
  }
  REQUIRE(answers.size() == 3);
  CHECK(answers[0].status == 200);
  CHECK(contains(answers[0].body, R"("object":"chat.completion")"));
  CHECK(answers[1].status == 200);
  CHECK(answers[1].body == R"({"status":"ok"})");
  CHECK(answers[2].status == 200);
  CHECK(answers[0].header("x-switchboard-trace-id") != answers[2].header("x-switchboard-trace-id"));
  still_serves(rig);
}

TEST_CASE("JSON nested 70,000 deep is a 400 naming the field in either API") {
  HostileRig rig;
  const std::string deep = deep_object(70'000);
  struct Case {
    const char* path;
    std::string body;
    bool anthropic;
    const char* field;
  };
  const Case cases[] = {
      {"/v1/chat/completions",
       R"({"model":"auto","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":)" +
           deep + "}}]}",
       false, "tools[0].function.parameters nests deeper than 64"},
      {"/v1/messages",
       R"({"model":"auto","max_tokens":100,"messages":[{"role":"user","content":"hi"}],"tools":[{"name":"f","input_schema":)" +
           deep + "}]}",
       true, "tools[0].input_schema nests deeper than 64"},
      {"/v1/messages",
       R"({"model":"auto","max_tokens":100,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":)" +
           deep + R"(}]},{"role":"user","content":"hi"}]})",
       true, "messages[0].content[0].input nests deeper than 64"},
      {"/v1/chat/completions", std::string(70'000, '[') + std::string(70'000, ']'), false,
       "the request body nests deeper than 64"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.field);
    const Reply r = post(rig.url(c.path), c.body, {"anthropic-version: 2023-06-01"});
    CHECK_MESSAGE(r.status == 400, r.body);
    const json e = error_of(r.body, c.anthropic);
    CHECK(e["type"] == "invalid_request_error");
    CHECK_MESSAGE(contains(e["message"].get<std::string>(), c.field), r.body);
    still_serves(rig);
  }
  // Within the bound, a schema is passed on.
  const Reply ok = post(rig.url("/v1/chat/completions"),
                        R"({"model":"auto","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":)" +
                            deep_object(50) + "}}]}");
  CHECK_MESSAGE(ok.status == 200, ok.body);
}

TEST_CASE("headers the step keeps must be UTF-8 and an upstream's keys never reach the client") {
  HostileRig rig;
  const Reply role = post(rig.url("/v1/chat/completions"), kChat, {"x-switchboard-role: caf\xc3"});
  CHECK(role.status == 400);
  CHECK(contains(error_of(role.body, false)["message"].get<std::string>(), "x-switchboard-role"));
  const Reply meta = post(rig.url("/v1/messages"), kMessages, {"x-switchboard-meta-team: \xff\xfe"});
  CHECK(meta.status == 400);
  CHECK(contains(error_of(meta.body, true)["message"].get<std::string>(), "x-switchboard-meta-team"));
  still_serves(rig);

  rig.fake->inject(Fault::kInvalidKey);
  const Reply keyed = post(rig.url("/v1/chat/completions"), R"({"model":"keyed","messages":[{"role":"user","content":"hi"}]})");
  CHECK(keyed.status == 502);
  const std::string message = error_of(keyed.body, false)["message"].get<std::string>();
  CHECK_MESSAGE(contains(message, "Incorrect API key provided: [redacted]"), message);
  CHECK_FALSE(contains(keyed.body, "sk-upst"));
  CHECK_FALSE(contains(keyed.body, "3a9c"));
  CHECK_FALSE(contains(keyed.body, kQuotedKey));
  CHECK_FALSE(contains(keyed.body, "AIza"));
  CHECK_FALSE(contains(keyed.body, "upstream-key"));
  still_serves(rig);
}

TEST_CASE("a prompt too large for every context window is a 400 context_length_exceeded") {
  HostileRig rig;
  const std::string big(20'000, 'x');
  const Reply openai = post(rig.url("/v1/chat/completions"),
                            R"({"model":"tiny","messages":[{"role":"user","content":")" + big + R"("}]})");
  CHECK(openai.status == 400);
  const json e = error_of(openai.body, false);
  CHECK(e["type"] == "invalid_request_error");
  CHECK(e["code"] == "context_length_exceeded");
  const Reply anthropic = post(rig.url("/v1/messages"),
                               R"({"model":"tiny","max_tokens":100,"messages":[{"role":"user","content":")" + big +
                                   R"("}]})");
  CHECK(anthropic.status == 400);
  CHECK(error_of(anthropic.body, true)["type"] == "invalid_request_error");
  still_serves(rig);
}

TEST_CASE("slow clients and 500 idle connections do not stop the gateway serving others") {
  HostileRig rig;
  // Headers dribbled a byte every 50 ms: cut off at header_timeout (1.5 s),
  // however steadily the bytes come, long before the 20 s the 400 bytes take.
  RawConnection slow(rig.port());
  REQUIRE(slow.ok());
  const std::string head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(400, 's');
  bool cut = false;
  for (std::size_t i = 0; i < head.size() && !cut; ++i) {
    cut = !slow.send_all(head.substr(i, 1)) || slow.peer_closed();
    std::this_thread::sleep_for(50ms);
    if (i % 10 == 0) {
      const Reply r = post(rig.url("/v1/chat/completions"), kChat);  // others are served meanwhile
      CHECK(r.status == 200);
    }
  }
  CHECK(cut);
  CHECK(rig.gateway->alive());

  // 500 connections that say nothing.
  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < 500; ++i) {
    idle.push_back(std::make_unique<RawConnection>(rig.port()));
    REQUIRE(idle.back()->ok());
  }
  still_serves(rig);
  idle.clear();
  still_serves(rig);

  const std::int64_t peak = peak_rss_bytes(rig.gateway->pid());
  MESSAGE("gateway peak RSS: ", peak >> 20, " MiB");
  CHECK(peak < (std::int64_t{1} << 30));
}

TEST_CASE("the gateway's peak RSS across every hostile case stays under 1 GiB with default limits") {
  // The cases above each run their own gateway; this one replays the big
  // ones on one process and reads its high-water mark.
  HostileRig rig;
  const std::string deep = deep_object(70'000);
  for (int i = 0; i < 4; ++i) {
    post(rig.url("/v1/chat/completions"),
         R"({"model":"auto","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":)" +
             deep + "}}]}");
    raw_exchange(rig.port(), raw("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked",
                                 "2\r\n{}\r\n0\r\nX-Big: " + std::string(70'000, 'a') + "\r\n\r\n"));
    raw_exchange(rig.port(), raw("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(70'000, 'h')));
    // A body just under max_body_bytes.
    std::string big = R"({"model":"auto","messages":[)";
    while (big.size() < 4'000'000) big += R"({"role":"user","content":"hello"},)";
    big += R"({"role":"user","content":"end"}]})";
    // A million tokens: no window holds them. Parsing and counting 4 MB of
    // messages takes seconds on a loaded 2-core machine: a generous timeout.
    const Reply r = post(rig.url("/v1/chat/completions"), big, {}, 120'000);
    CHECK_MESSAGE(r.status == 400, r.status);
    CHECK(contains(r.body, "context_length_exceeded"));
  }
  still_serves(rig);
  const std::int64_t peak = peak_rss_bytes(rig.gateway->pid());
  MESSAGE("gateway peak RSS after the hostile cases: ", peak >> 20, " MiB");
  CHECK(peak > 0);
  CHECK(peak < (std::int64_t{1} << 30));
}

}  // TEST_SUITE

}  // namespace switchboard::testing

#endif  // SWITCHBOARD_GATEWAY
