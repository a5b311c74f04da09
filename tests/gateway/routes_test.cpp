// The gateway's routes beside the two chat APIs, driven as a child process
// over HTTP: POST /v1/messages/count_tokens (Anthropic's own count through
// the fake provider, or the engine's estimate), GET /v1/models/{id}, HEAD on
// every GET route, OPTIONS, and CORS ([gateway] cors_origins).
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <memory>
#include <string>
#include <utility>
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

// Mechanical roles go cheap, "claude" to the Anthropic tier (when there is one), the rest premium.
const char* kRoutesRules = R"lua(
function classify(step, ctx)
  if step.role == "format" then return { tier = "cheap", reason = "mechanical" } end
  if step.role == "claude" then return "claude" end
  return { tier = "premium", reason = "everything else" }
end
)lua";

// Sim models (one with a slash in its name), and m-claude, an Anthropic
// model at the fake provider when its URL is given.
std::string routes_config(const std::string& fake_url, const std::string& gateway_extra) {
  std::string c = R"toml(
[routing]
price_catalog = "prices.toml"
premium_tier = "premium"
default_fallback_tier = "cheap"

[calls]
max_attempts = 1

[models.m-cheap]
provider = "sim"
context_window = 100000

[models.m-premium]
provider = "sim"
context_window = 200000

[models."org/m-slash"]
provider = "sim"
context_window = 100000

[tiers.cheap]
models = ["m-cheap", "org/m-slash"]

[tiers.premium]
models = ["m-premium", "m-cheap"]
)toml";
  if (!fake_url.empty()) {
    c += R"toml(
[models.m-claude]
provider = "anthropic"
endpoint = ")toml" + fake_url + R"toml("
api_key_env = "SWITCHBOARD_TEST_UPSTREAM_KEY"
context_window = 200000

[tiers.claude]
models = ["m-claude"]
)toml";
  }
  c += R"toml(
[workloads.w]
rules = "rules/w.lua"
fallback_tier = "cheap"

[gateway]
default_workload = "w"
ledger = "ledger.db"
)toml" + gateway_extra;
  return c;
}

const std::string kRoutesPrices = R"toml(
[models."org/m-slash"]
input = 1.0
output = 1.0

[models.m-claude]
input = 3.0
output = 15.0
)toml";

struct RoutesRig {
  explicit RoutesRig(const std::string& gateway_extra = "", const std::string& fake_url = "") {
    dir.write("rules/w.lua", kRoutesRules);
    dir.write("prices.toml", small_prices(kRoutesPrices));
    config = dir.write("switchboard.toml", routes_config(fake_url, gateway_extra));
    gateway = std::make_unique<GatewayProcess>(
        config, std::vector<std::pair<std::string, std::string>>{{"SWITCHBOARD_TEST_UPSTREAM_KEY", "upstream-key"}});
  }
  std::string url(const std::string& path) const { return gateway->url() + path; }

  TempDir dir;
  std::string config;
  std::unique_ptr<GatewayProcess> gateway;
};

// One raw request on a connection of its own (Connection: close): every byte
// the gateway sent until it closed, so a test sees what a HEAD answer holds
// beyond its head.
std::string raw_bytes(std::uint16_t port, const std::string& method, const std::string& path,
                      const std::string& headers = "") {
  RawConnection c(port);
  REQUIRE(c.ok());
  REQUIRE(c.send_all(method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + headers +
                     "\r\n"));
  return c.read_until_closed(10s);
}

// The header `name` (lowercase) of a raw head, or "".
std::string raw_header(const std::string& bytes, const std::string& name) {
  const std::string head = bytes.substr(0, bytes.find("\r\n\r\n"));
  std::size_t at = 0;
  while ((at = head.find("\r\n", at)) != std::string::npos) {
    at += 2;
    const std::size_t colon = head.find(':', at);
    const std::size_t end = std::min(head.find("\r\n", at), head.size());
    if (colon == std::string::npos || colon > end) continue;
    std::string n = head.substr(at, colon - at);
    for (char& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (n == name) return head.substr(colon + 2, end - colon - 2);
  }
  return "";
}

const std::string kCountBody =
    R"({"model":"m-claude","system":"Be brief.","messages":[{"role":"user","content":"What is 2+2?"}],)"
    R"("tools":[{"name":"calc","description":"adds","input_schema":{"type":"object","properties":{"a":{"type":"number"}}}}],)"
    R"("thinking":{"type":"enabled","budget_tokens":2048}})";

}  // namespace

TEST_SUITE("gateway routes") {

TEST_CASE("count_tokens asks Anthropic's own endpoint for an Anthropic model with its key and says exact") {
  const auto fake = FakeProvider::start();
  RoutesRig rig("", fake->base_url());
  const Reply r = post(rig.url("/v1/messages/count_tokens"), kCountBody, {"anthropic-version: 2023-06-01"});
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(r.header("x-switchboard-token-count") == "exact");
  CHECK(r.header("x-switchboard-model") == "m-claude");
  CHECK(r.header("x-switchboard-tier") == "claude");

  // The count is the fake's, of the body it was sent: the call's input fields
  // translated as a call translates them, with the gateway's upstream key.
  const std::vector<ReceivedRequest> sent = fake->received();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].target == "/v1/messages/count_tokens");
  CHECK(sent[0].header("x-api-key") == "upstream-key");
  CHECK_FALSE(sent[0].header("anthropic-version").empty());
  const json upstream = json::parse(sent[0].body);
  CHECK(upstream["model"] == "m-claude");
  CHECK(upstream["system"] == "Be brief.");
  CHECK(upstream["tools"][0]["name"] == "calc");
  CHECK(upstream["thinking"]["budget_tokens"] == 2048);
  CHECK_FALSE(upstream.contains("max_tokens"));
  const std::size_t expected = std::max<std::size_t>(1, sent[0].body.size() / 4);
  CHECK(json::parse(r.body) == json{{"input_tokens", expected}});

  // "auto" counts for the model the rules choose: here, by role, the Anthropic one.
  const Reply routed = post(rig.url("/v1/messages/count_tokens"),
                            R"({"model":"auto","messages":[{"role":"user","content":"hi"}]})",
                            {"x-switchboard-role: claude"});
  REQUIRE_MESSAGE(routed.status == 200, routed.body);
  CHECK(routed.header("x-switchboard-token-count") == "exact");
  CHECK(routed.header("x-switchboard-model") == "m-claude");
  CHECK(fake->request_count() == 2);

  // Counting is no call: nothing billed, no ledger record, no decision.
  rig.gateway->signal(SIGTERM);
  REQUIRE(rig.gateway->wait_exit(10s) == 0);
  const auto records = read_sqlite_ledger((rig.dir.path() / "ledger.db").string());
  REQUIRE_MESSAGE(records.ok(), records.status().to_string());
  CHECK(records->empty());
  const auto decisions = read_sqlite_decisions((rig.dir.path() / "ledger.db").string());
  REQUIRE_MESSAGE(decisions.ok(), decisions.status().to_string());
  CHECK(decisions->empty());
}

TEST_CASE("count_tokens answers the engine's count for the rules' choice when no exact count is possible") {
  RoutesRig rig;
  // Format steps go to m-cheap, a sim model, counted with o200k_base: 3 for
  // the reply, 3 per message and its role ("system", "user": 1 each), "Be
  // brief." 3 and the question 9.
  const Reply r = post(rig.url("/v1/messages/count_tokens"),
                       R"({"model":"auto","system":"Be brief.","messages":[{"role":"user","content":"Format this as a list: a, b"}]})",
                       {"x-switchboard-role: format"});
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(r.header("x-switchboard-token-count") == "estimated");
  CHECK(r.header("x-switchboard-model") == "m-cheap");
  CHECK(r.header("x-switchboard-tier") == "cheap");
  CHECK(r.body == R"({"input_tokens":23})");
  CHECK(overhead_ms(r.header("x-switchboard-overhead-ms")) >= 0);

  // A tier counts as its first model.
  const Reply tier = post(rig.url("/v1/messages/count_tokens"),
                          R"({"model":"premium","messages":[{"role":"user","content":"abc"}]})");
  REQUIRE_MESSAGE(tier.status == 200, tier.body);
  CHECK(tier.header("x-switchboard-model") == "m-premium");
  CHECK(tier.body == R"({"input_tokens":8})");  // 3 + 3 + "user" 1 + "abc" 1

  const Reply metrics = http("GET", rig.url("/metrics"));
  CHECK(contains(metrics.body, R"(switchboard_requests_total{endpoint="/v1/messages/count_tokens",status="200"} 2)"));
  CHECK(contains(metrics.body, R"(switchboard_overhead_ms_count{endpoint="/v1/messages/count_tokens"} 2)"));
}

TEST_CASE("count_tokens falls back to the engine's count when Anthropic's count fails and keeps the request's deadline") {
  const auto fake = FakeProvider::start();
  RoutesRig rig("", fake->base_url());
  fake->inject(Fault::kServerError, 1, "m-claude");
  const Reply r = post(rig.url("/v1/messages/count_tokens"),
                       R"({"model":"m-claude","messages":[{"role":"user","content":"Format this as a list: a, b"}]})");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(r.header("x-switchboard-token-count") == "estimated");
  // o200k_base's 16 (3 + 3 + "user" 1 + 9) times the default calibration floor 1.10, rounded up.
  CHECK(r.body == R"({"input_tokens":18})");
  CHECK(fake->request_count() == 1);
  CHECK(rig.gateway->wait_for_log("count_tokens: anthropic m-claude: HTTP 500", 5s));

  // An upstream that never answers: the request's deadline ends it, 504 in Anthropic's shape.
  fake->inject(Fault::kHang, 1, "m-claude");
  const auto start = std::chrono::steady_clock::now();
  const Reply late = post(rig.url("/v1/messages/count_tokens"),
                          R"({"model":"m-claude","messages":[{"role":"user","content":"hi"}]})",
                          {"x-switchboard-timeout-ms: 300"});
  CHECK(late.status == 504);
  CHECK(contains(late.body, R"("type":"timeout_error")"));
  CHECK(std::chrono::steady_clock::now() - start < 5s);
}

TEST_CASE("count_tokens refuses what Anthropic's endpoint refuses in Anthropic's error shape") {
  RoutesRig rig;
  const std::string url = rig.url("/v1/messages/count_tokens");
  const Reply extra = post(url, R"({"model":"auto","max_tokens":10,"messages":[{"role":"user","content":"hi"}]})");
  CHECK(extra.status == 400);
  CHECK(contains(extra.body, R"("type":"invalid_request_error")"));
  CHECK(contains(extra.body, "max_tokens"));
  const Reply no_messages = post(url, R"({"model":"auto"})");
  CHECK(no_messages.status == 400);
  CHECK(contains(no_messages.body, "messages is required"));
  const Reply unknown = post(url, R"({"model":"nope","messages":[{"role":"user","content":"hi"}]})");
  CHECK(unknown.status == 404);
  CHECK(contains(unknown.body, R"("type":"not_found_error")"));
  CHECK(contains(unknown.body, "'nope'"));
  const Reply get = http("GET", url);
  CHECK(get.status == 405);
  CHECK(get.header("allow") == "POST, OPTIONS");
  CHECK(contains(get.body, R"("type":"error")"));
}

TEST_CASE("GET /v1/models/{id} answers each listed id in the OpenAI or Anthropic shape and 404 otherwise") {
  RoutesRig rig;
  const json list = json::parse(http("GET", rig.url("/v1/models")).body);
  const json anthropic_list =
      json::parse(http("GET", rig.url("/v1/models"), "", {"anthropic-version: 2023-06-01"}).body);
  REQUIRE(list["data"].size() == 6);  // auto, 2 tiers, 3 models
  for (std::size_t i = 0; i < list["data"].size(); ++i) {
    const std::string id = list["data"][i]["id"];
    INFO(id);
    const std::string path = "/v1/models/" + (id == "org/m-slash" ? std::string("org%2Fm-slash") : id);
    const Reply one = http("GET", rig.url(path));
    REQUIRE(one.status == 200);
    CHECK(json::parse(one.body) == list["data"][i]);
    const Reply theirs = http("GET", rig.url(path), "", {"anthropic-version: 2023-06-01"});
    REQUIRE(theirs.status == 200);
    CHECK(json::parse(theirs.body) == anthropic_list["data"][i]);
  }
  const json cheap = json::parse(http("GET", rig.url("/v1/models/m-cheap")).body);
  CHECK(cheap["object"] == "model");
  CHECK(cheap["owned_by"] == "switchboard");
  CHECK(cheap["created"].is_number_integer());
  const json tier = json::parse(http("GET", rig.url("/v1/models/cheap"), "", {"anthropic-version: 2023-06-01"}).body);
  CHECK(tier == json{{"type", "model"},
                     {"id", "cheap"},
                     {"display_name", "tier cheap"},
                     {"created_at", anthropic_list["data"][0]["created_at"]}});

  const Reply unknown = http("GET", rig.url("/v1/models/gpt-nope"));
  CHECK(unknown.status == 404);
  CHECK(contains(unknown.body, R"("code":"model_not_found")"));
  CHECK(contains(unknown.body, "'gpt-nope'"));
  const Reply unknown_anthropic = http("GET", rig.url("/v1/models/gpt-nope"), "", {"anthropic-version: 2023-06-01"});
  CHECK(unknown_anthropic.status == 404);
  CHECK(contains(unknown_anthropic.body, R"("type":"not_found_error")"));
  CHECK(http("POST", rig.url("/v1/models/m-cheap"), "{}").status == 405);
}

TEST_CASE("HEAD answers every GET route with the GET's status and headers and no body") {
  RoutesRig rig;
  const std::uint16_t port = rig.gateway->port();
  for (const char* path : {"/healthz", "/v1/models", "/v1/models/m-cheap", "/v1/models/nope", "/v1/rules/status",
                           "/metrics"}) {
    INFO(path);
    const Reply get = http("GET", rig.url(path));
    const std::string head = raw_bytes(port, "HEAD", path);
    REQUIRE(head.rfind("HTTP/1.1 " + std::to_string(get.status) + " ", 0) == 0);
    CHECK(head.size() == head.find("\r\n\r\n") + 4);  // nothing after the head
    CHECK(raw_header(head, "content-type") == get.header("content-type"));
    if (std::string(path) != "/metrics") {  // its body counts the requests, so it grows
      CHECK(raw_header(head, "content-length") == std::to_string(get.body.size()));
    } else {
      CHECK_FALSE(raw_header(head, "content-length").empty());
    }
  }
  // A POST route: 405 with Allow, still no body.
  const std::string post_head = raw_bytes(port, "HEAD", "/v1/chat/completions");
  CHECK(post_head.rfind("HTTP/1.1 405 ", 0) == 0);
  CHECK(raw_header(post_head, "allow") == "POST, OPTIONS");
  CHECK(post_head.size() == post_head.find("\r\n\r\n") + 4);
}

TEST_CASE("OPTIONS answers 204 with Allow and CORS is off by default") {
  RoutesRig rig;
  const std::uint16_t port = rig.gateway->port();
  const std::string preflight = "Origin: https://app.example.com\r\nAccess-Control-Request-Method: POST\r\n";
  for (const auto& [path, allow] : std::vector<std::pair<std::string, std::string>>{
           {"/v1/chat/completions", "POST, OPTIONS"},
           {"/v1/messages", "POST, OPTIONS"},
           {"/v1/messages/count_tokens", "POST, OPTIONS"},
           {"/v1/models", "GET, HEAD, OPTIONS"},
           {"/v1/models/auto", "GET, HEAD, OPTIONS"},
           {"/healthz", "GET, HEAD, OPTIONS"}}) {
    INFO(path);
    const std::string r = raw_bytes(port, "OPTIONS", path, preflight);
    CHECK(r.rfind("HTTP/1.1 204 ", 0) == 0);
    CHECK(raw_header(r, "allow") == allow);
    CHECK(raw_header(r, "content-length").empty());
    CHECK(r.find("Access-Control-") == std::string::npos);
    CHECK(r.size() == r.find("\r\n\r\n") + 4);
  }
  CHECK(raw_bytes(port, "OPTIONS", "/nowhere").rfind("HTTP/1.1 404 ", 0) == 0);
  const Reply chat = post(rig.url("/v1/chat/completions"),
                          R"({"model":"auto","messages":[{"role":"user","content":"hi"}]})",
                          {"Origin: https://app.example.com"});
  CHECK(chat.status == 200);
  CHECK(chat.header("access-control-allow-origin").empty());
  CHECK(chat.header("vary").empty());

  // The 404 for an unknown route names every route.
  const Reply lost = http("GET", rig.url("/v1/nowhere"));
  CHECK(lost.status == 404);
  for (const char* route : {"POST /v1/messages/count_tokens", "GET /v1/models/{id}", "HEAD", "OPTIONS"}) {
    CHECK_MESSAGE(contains(lost.body, route), route);
  }
}

TEST_CASE("with cors_origins a preflight from an allowed origin is granted and every answer carries the origin") {
  RoutesRig rig(R"(cors_origins = ["https://app.example.com", "http://localhost:5173"])" "\n");
  const std::string chat_url = rig.url("/v1/chat/completions");
  const Reply granted = http("OPTIONS", chat_url, "",
                             {"Origin: https://app.example.com", "Access-Control-Request-Method: POST",
                              "Access-Control-Request-Headers: authorization, content-type, x-stainless-os, "
                              "x-switchboard-role"});
  CHECK(granted.status == 204);
  CHECK(granted.header("access-control-allow-origin") == "https://app.example.com");
  CHECK(granted.header("vary") == "Origin");
  CHECK(granted.header("access-control-allow-methods") == "POST, OPTIONS");
  CHECK(granted.header("access-control-allow-headers") ==
        "authorization, content-type, x-stainless-os, x-switchboard-role");
  CHECK(granted.header("access-control-max-age") == "7200");

  // The origin compares ignoring case; the grant echoes the request's.
  const Reply local = http("OPTIONS", rig.url("/v1/models"), "",
                           {"Origin: http://LOCALHOST:5173", "Access-Control-Request-Method: GET"});
  CHECK(local.status == 204);
  CHECK(local.header("access-control-allow-origin") == "http://LOCALHOST:5173");
  CHECK(local.header("access-control-allow-methods") == "GET, HEAD, OPTIONS");

  // What CORS does not grant is a 403 that says why.
  const Reply other = http("OPTIONS", chat_url, "",
                           {"Origin: https://evil.example.com", "Access-Control-Request-Method: POST"});
  CHECK(other.status == 403);
  CHECK(other.header("access-control-allow-origin").empty());
  CHECK(other.header("vary") == "Origin");
  CHECK(contains(other.body, "origin 'https://evil.example.com' is not in [gateway] cors_origins"));
  const Reply header = http("OPTIONS", chat_url, "",
                            {"Origin: https://app.example.com", "Access-Control-Request-Method: POST",
                             "Access-Control-Request-Headers: content-type, x-evil"});
  CHECK(header.status == 403);
  CHECK(contains(header.body, "request header 'x-evil' is not allowed"));
  const Reply method = http("OPTIONS", chat_url, "",
                            {"Origin: https://app.example.com", "Access-Control-Request-Method: DELETE"});
  CHECK(method.status == 403);
  CHECK(contains(method.body, "method DELETE is not served here"));

  // Actual answers: plain, streamed and errors carry the grant and expose the gateway's headers.
  const std::string origin = "Origin: https://app.example.com";
  const Reply plain = post(chat_url, R"({"model":"auto","messages":[{"role":"user","content":"hi"}]})", {origin});
  CHECK(plain.status == 200);
  CHECK(plain.header("access-control-allow-origin") == "https://app.example.com");
  CHECK(plain.header("vary") == "Origin");
  CHECK(contains(plain.header("access-control-expose-headers"), "x-switchboard-cost-usd"));
  CHECK(contains(plain.header("access-control-expose-headers"), "x-switchboard-trace-id"));
  const Reply streamed =
      post(chat_url, R"({"model":"auto","stream":true,"messages":[{"role":"user","content":"hi"}]})", {origin});
  CHECK(streamed.status == 200);
  CHECK(contains(streamed.body, "[DONE]"));
  CHECK(streamed.header("access-control-allow-origin") == "https://app.example.com");
  const Reply failed = post(chat_url, R"({"model":"nope","messages":[{"role":"user","content":"hi"}]})", {origin});
  CHECK(failed.status == 404);
  CHECK(failed.header("access-control-allow-origin") == "https://app.example.com");
  const Reply counted = post(rig.url("/v1/messages/count_tokens"),
                             R"({"model":"auto","messages":[{"role":"user","content":"hi"}]})", {origin});
  CHECK(counted.status == 200);
  CHECK(counted.header("access-control-allow-origin") == "https://app.example.com");
  CHECK(contains(counted.header("access-control-expose-headers"), "x-switchboard-token-count"));
  // Another origin is served (only a browser enforces CORS), without the grant.
  const Reply elsewhere = post(chat_url, R"({"model":"auto","messages":[{"role":"user","content":"hi"}]})",
                               {"Origin: https://evil.example.com"});
  CHECK(elsewhere.status == 200);
  CHECK(elsewhere.header("access-control-allow-origin").empty());
  CHECK(elsewhere.header("vary") == "Origin");
}

TEST_CASE("cors_origins \"*\" grants any origin") {
  RoutesRig rig(R"(cors_origins = ["*"])" "\n");
  const Reply r = http("GET", rig.url("/v1/models"), "", {"Origin: https://anything.example"});
  CHECK(r.status == 200);
  CHECK(r.header("access-control-allow-origin") == "https://anything.example");
}

}  // TEST_SUITE

}  // namespace switchboard::testing

#endif  // SWITCHBOARD_GATEWAY

namespace switchboard::testing {

TEST_SUITE("config") {

TEST_CASE("[gateway] cors_origins takes exact origins or \"*\" alone and errors name their place") {
  TempDir dir;
  dir.write("prices.toml", small_prices());
  dir.write("rules/w.lua", "function classify() return 'cheap' end");
  const std::string base = small_config();
  const int line = static_cast<int>(std::count(base.begin(), base.end(), '\n')) + 2;  // after "[gateway]"
  const auto parse = [&](const std::string& value) {
    return parse_config(base + "[gateway]\ncors_origins = " + value + "\n", "bad.toml", dir.path().string());
  };
  const auto ok = parse(R"(["https://app.example.com", "http://localhost:5173", "http://[::1]:8080"])");
  REQUIRE_MESSAGE(ok.ok(), ok.status().message());
  CHECK(ok->gateway.cors_origins ==
        std::vector<std::string>{"https://app.example.com", "http://localhost:5173", "http://[::1]:8080"});
  const auto defaults = parse_config(base, "ok.toml", dir.path().string());
  REQUIRE(defaults.ok());
  CHECK(defaults->gateway.cors_origins.empty());

  const std::string at = "bad.toml:" + std::to_string(line) + ":";
  const struct {
    std::string value;
    std::string error;
  } cases[] = {
      {R"("https://app.example.com")",
       at + "16: [gateway] cors_origins must be a list of origins, e.g. [\"https://app.example.com\"]"},
      {R"(["https://app.example.com/"])",
       at + "17: [gateway] cors_origins: 'https://app.example.com/' is not an origin: write scheme://host[:port] "
            "(http or https, no path, no trailing slash), e.g. \"https://app.example.com\", or \"*\" alone"},
      {R"(["ftp://files.example.com"])", at + "17: [gateway] cors_origins: 'ftp://files.example.com' is not an origin"},
      {R"(["https://a.example", "https://b.example:99999"])",
       at + "38: [gateway] cors_origins: 'https://b.example:99999' is not an origin"},
      {R"(["*", "https://a.example"])", at + "22: [gateway] cors_origins: \"*\" allows every origin: list it alone"},
      {R"(["https://a.example", "https://A.example"])",
       at + "38: [gateway] cors_origins: 'https://A.example' is listed twice"},
      {R"([1])", at + "17: [gateway] cors_origins: origins are strings"},
  };
  for (const auto& c : cases) {
    INFO(c.value);
    const auto bad = parse(c.value);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.status().message().rfind(c.error, 0) == 0);
  }
}

}  // TEST_SUITE

}  // namespace switchboard::testing
