// Same-protocol passthrough through the running gateway: a client's fields the
// router does not model reach a model of the client's API verbatim (its beta
// headers too, from [gateway] passthrough_headers), and a model of another
// API is skipped with the field's name in the ledger instead of being called
// without it. The fake provider refuses undocumented fields as the real APIs
// do, so a field that reached it was one the API takes.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fake_provider.h"
#include "gateway_rig.h"
#include "test_util.h"

#ifdef SWITCHBOARD_GATEWAY

namespace switchboard::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// "claude" (Anthropic) and "gpt" (OpenAI), both served by the fake, in tiers
// that try each first and fall back to the other.
std::string passthrough_config(const std::string& fake_url, const std::string& gateway_extra) {
  return R"toml(
[routing]
price_catalog = "prices.toml"
premium_tier = "claude-first"
default_fallback_tier = "gpt-first"

[calls]
max_attempts = 1

[models.claude]
provider = "anthropic"
endpoint = ")toml" + fake_url + R"toml("
api_key_env = "SWITCHBOARD_TEST_UPSTREAM_KEY"
context_window = 100000

[models.gpt]
provider = "openai"
endpoint = ")toml" + fake_url + R"toml(/v1"
api_key_env = "SWITCHBOARD_TEST_UPSTREAM_KEY"
context_window = 100000

[tiers.claude-first]
models = ["claude", "gpt"]

[tiers.gpt-first]
models = ["gpt", "claude"]

[workloads.w]
rules = "rules/w.lua"
fallback_tier = "gpt-first"

[gateway]
default_workload = "w"
ledger = "ledger.db"
)toml" + gateway_extra;
}

const char* kPrices = R"toml(
[models.claude]
input = 3.0
output = 15.0

[models.gpt]
input = 1.0
output = 8.0
)toml";

struct PassthroughRig {
  PassthroughRig(const std::string& fake_url, const std::string& gateway_extra = "") {
    dir.write("rules/w.lua", "function classify(step, ctx) return { tier = 'claude-first', reason = 'r' } end\n");
    dir.write("prices.toml", small_prices(kPrices));
    const std::string config = dir.write("switchboard.toml", passthrough_config(fake_url, gateway_extra));
    gateway = std::make_unique<GatewayProcess>(
        config, std::vector<std::pair<std::string, std::string>>{{"SWITCHBOARD_TEST_UPSTREAM_KEY", "k"}});
  }
  std::string url(const std::string& path) const { return gateway->url() + path; }

  // The ledger's records of `trace`, once the gateway stopped.
  std::vector<CostRecord> records_of(const std::string& trace) {
    gateway->signal(SIGTERM);
    REQUIRE(gateway->wait_exit(10s) == 0);
    auto records = read_sqlite_ledger((dir.path() / "ledger.db").string());
    REQUIRE_MESSAGE(records.ok(), records.status().to_string());
    std::vector<CostRecord> out;
    for (const CostRecord& c : *records) {
      if (c.trace_id == trace) out.push_back(c);
    }
    return out;
  }

  TempDir dir;
  std::unique_ptr<GatewayProcess> gateway;
};

// The requests the fake received on `path`.
std::vector<ReceivedRequest> received_on(const FakeProvider& fake, const std::string& path) {
  std::vector<ReceivedRequest> out;
  for (const ReceivedRequest& r : fake.received()) {
    if (r.target == path) out.push_back(r);
  }
  return out;
}

}  // namespace

TEST_SUITE("gateway") {

TEST_CASE("an OpenAI client's unmodelled fields skip the Anthropic model with a reason and reach the OpenAI one") {
  const auto fake = FakeProvider::start();
  PassthroughRig rig(fake->base_url());
  const json web = {{"search_context_size", "low"}};
  const Reply r = post(rig.url("/v1/chat/completions"),
                       json{{"model", "claude-first"},
                            {"messages", json::array({{{"role", "user"}, {"content", "Hi"}}})},
                            {"verbosity", "low"},
                            {"web_search_options", web},
                            {"prompt_cache_key", "conv-7"},
                            {"service_tier", "priority"}}
                           .dump(),
                       {"openai-beta: assistants=v2", "anthropic-beta: never-for-openai", "x-custom: not-listed"});
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(r.header("x-switchboard-model") == "gpt");

  CHECK(received_on(*fake, "/v1/messages").empty());  // Claude was never called without the fields
  const std::vector<ReceivedRequest> sent = received_on(*fake, "/v1/chat/completions");
  REQUIRE(sent.size() == 1);
  const json body = json::parse(sent[0].body);
  CHECK(body["verbosity"] == "low");
  CHECK(body["web_search_options"] == web);
  CHECK(body["prompt_cache_key"] == "conv-7");  // a hint, to an OpenAI model
  CHECK_FALSE(body.contains("service_tier"));    // priced at the standard tier: never sent
  // Headers: the listed ones the client sent. The gateway does not know which
  // API a header belongs to: every listed header goes with the request.
  CHECK(sent[0].header("openai-beta") == "assistants=v2");
  CHECK(sent[0].header("anthropic-beta") == "never-for-openai");
  CHECK(sent[0].header("x-custom").empty());

  const std::vector<CostRecord> records = rig.records_of(r.header("x-switchboard-trace-id"));
  REQUIRE(records.size() == 2);
  CHECK(records[0].model == "claude");
  CHECK(records[0].cost == 0);
  CHECK(records[0].error.find("cannot take the field 'verbosity'") != std::string::npos);
  CHECK(records[1].model == "gpt");
  CHECK(records[1].status == CallStatus::kOk);
}

TEST_CASE("an Anthropic client's fields and beta headers reach the Anthropic model verbatim, streamed too") {
  const auto fake = FakeProvider::start();
  PassthroughRig rig(fake->base_url());
  const json edits = json::parse(R"({"edits":[{"type":"clear_tool_uses_20250919","keep":{"type":"tool_uses","value":3}}]})");
  for (const bool stream : {false, true}) {
    CAPTURE(stream);
    const Reply r = post(rig.url("/v1/messages"),
                         json{{"model", "gpt-first"},
                              {"max_tokens", 100},
                              {"stream", stream},
                              {"messages", json::array({{{"role", "user"}, {"content", "Hi"}}})},
                              {"context_management", edits}}
                             .dump(),
                         {"anthropic-beta: context-management-2025-06-27", "anthropic-version: 2023-06-01"});
    REQUIRE_MESSAGE(r.status == 200, r.body);
    CHECK(r.header("x-switchboard-model") == "claude");  // gpt was skipped: it cannot take the field
    CHECK(contains(r.body, "Hello from claude"));
  }
  const std::vector<ReceivedRequest> sent = received_on(*fake, "/v1/messages");
  REQUIRE(sent.size() == 2);
  for (const ReceivedRequest& s : sent) {
    CHECK(json::parse(s.body)["context_management"] == edits);
    CHECK(s.header("anthropic-beta") == "context-management-2025-06-27");
  }
  CHECK(received_on(*fake, "/v1/chat/completions").empty());
}

TEST_CASE("a field the provider does not know is judged by the provider: its own message reaches the client") {
  const auto fake = FakeProvider::start();
  PassthroughRig rig(fake->base_url(), "\n[tiers.gpt-only]\nmodels = [\"gpt\"]\n");
  const Reply r = post(rig.url("/v1/chat/completions"),
                       R"({"model":"gpt-only","messages":[{"role":"user","content":"Hi"}],"not_a_field":1})");
  // The provider's own 400 and message, as a direct call would get, not a 502
  // an SDK would retry: the router does not judge the field itself.
  CHECK(r.status == 400);
  const json error = json::parse(r.body)["error"];
  CHECK(error["type"] == "invalid_request_error");
  CHECK(error["code"] == "upstream_rejected_request");
  CHECK(contains(error["message"].get<std::string>(), "Unrecognized request argument supplied: not_a_field"));
  const std::vector<ReceivedRequest> sent = received_on(*fake, "/v1/chat/completions");
  REQUIRE_FALSE(sent.empty());
  CHECK(json::parse(sent[0].body)["not_a_field"] == 1);
}

TEST_CASE("an empty passthrough_headers list forwards no client header") {
  const auto fake = FakeProvider::start();
  PassthroughRig rig(fake->base_url(), "passthrough_headers = []\n");
  const Reply r = post(rig.url("/v1/messages"),
                       R"({"model":"claude-first","max_tokens":50,"messages":[{"role":"user","content":"Hi"}]})",
                       {"anthropic-beta: context-management-2025-06-27"});
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const std::vector<ReceivedRequest> sent = received_on(*fake, "/v1/messages");
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].header("anthropic-beta").empty());
}

}  // TEST_SUITE

}  // namespace switchboard::testing

#endif  // SWITCHBOARD_GATEWAY
