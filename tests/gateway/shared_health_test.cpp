// Two switchboard-gateway processes sharing model health through one
// redis-server ([state] backend = "redis"). Each has its own fake provider
// behind model m-fake; replica A's answers 500 for it. Once A's breaker opens
// (two failures), replica B, whose own provider is fine, stops calling m-fake
// within a second: its answers come from the fallback m-cheap and its ledger
// says m-fake's breaker was open.
#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <memory>
#include <string>
#include <thread>

#include "fake_provider.h"
#include "gateway/gateway_rig.h"
#include "support/redis_server.h"
#include "support/replicas.h"
#include "test_util.h"

#ifdef SWITCHBOARD_GATEWAY

namespace switchboard::testing {
namespace {

using namespace std::chrono_literals;

// A replica's directory: tier "fake" is m-fake (at `fake_url`), then m-cheap;
// the breaker opens after two failures in a row.
std::string fake_replica_config(const TempDir& dir, const std::string& fake_url, const std::string& redis_url) {
  dir.write("rules/w.lua", R"lua(function classify(step, ctx) return "fake" end)lua");
  dir.write("prices.toml", small_prices("\n[models.m-fake]\ninput = 2.0\noutput = 8.0\n"));
  return dir.write("switchboard.toml", small_config(R"toml(
[models.m-fake]
provider = "openai"
endpoint = ")toml" + fake_url + R"toml(/v1"
api_key_env = "SWITCHBOARD_TEST_UPSTREAM_KEY"
context_window = 100000

[tiers.fake]
models = ["m-fake", "m-cheap"]

[calls]
max_attempts = 1

[health]
failure_threshold = 2
cooldown_s = 60

[gateway]
default_workload = "w"
ledger = "ledger.db"
)toml" + shared_state_section(redis_url, 2)));
}

}  // namespace

TEST_SUITE("gateway") {

TEST_CASE("a model failing for one gateway's traffic is skipped by another sharing its Redis within a second") {
  RedisServer redis;
  REQUIRE_MESSAGE(redis.ok(), "redis-server did not start (apt-get install redis-server): ", redis.log());
  const auto fake_a = FakeProvider::start();
  const auto fake_b = FakeProvider::start();
  fake_a->inject(Fault::kServerError, 1000, "m-fake");
  const std::vector<std::pair<std::string, std::string>> env = {{"SWITCHBOARD_TEST_UPSTREAM_KEY", "k"}};
  TempDir da, db;
  GatewayProcess a(fake_replica_config(da, fake_a->base_url(), redis.url()), env);
  GatewayProcess b(fake_replica_config(db, fake_b->base_url(), redis.url()), env);
  const std::string body = replica_chat_body("Hello");

  // B's provider answers m-fake.
  Reply r = post(b.url() + "/v1/chat/completions", body);
  REQUIRE(r.status == 200);
  CHECK(r.header("x-switchboard-model") == "m-fake");

  // A's fails it twice: A's breaker opens (each answer came from the fallback).
  for (int i = 0; i < 2; ++i) {
    r = post(a.url() + "/v1/chat/completions", body);
    REQUIRE(r.status == 200);
    CHECK(r.header("x-switchboard-model") == "m-cheap");
  }
  const auto opened = std::chrono::steady_clock::now();
  CHECK(contains(http("GET", a.url() + "/metrics").body,
                 R"(switchboard_model_breaker_state{model="m-fake",state="open"} 1)"));

  // B skips m-fake within a second, though its own provider never failed.
  std::string model = "m-fake";
  while (model == "m-fake" && std::chrono::steady_clock::now() - opened < 1s) {
    r = post(b.url() + "/v1/chat/completions", body);
    REQUIRE(r.status == 200);
    model = r.header("x-switchboard-model");
    if (model == "m-fake") std::this_thread::sleep_for(20ms);
  }
  MESSAGE("B skipped m-fake ",
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - opened).count(),
          " ms after A's breaker opened");
  CHECK(model == "m-cheap");
  const std::size_t b_calls = fake_b->request_count();
  for (int i = 0; i < 3; ++i) CHECK(post(b.url() + "/v1/chat/completions", body).header("x-switchboard-model") == "m-cheap");
  CHECK(fake_b->request_count() == b_calls);  // no call reached B's m-fake
  const std::string metrics = http("GET", b.url() + "/metrics").body;
  CHECK(contains(metrics, R"(switchboard_model_breaker_state{model="m-fake",state="open"} 1)"));
  CHECK(contains(metrics, "switchboard_shared_health_degraded 0"));

  for (GatewayProcess* gw : {&a, &b}) {
    gw->signal(SIGTERM);
    REQUIRE(gw->wait_exit(15s) == 0);
  }
  const std::string ledger = (db.path() / "ledger.db").string();
  CHECK(ledger_figure(ledger, "SELECT COUNT(*) FROM calls WHERE model = 'm-fake' AND status = 'fallback' "
                              "AND error LIKE '%circuit breaker is open%'") >= 3);
  CHECK(ledger_figure(ledger, "SELECT COUNT(*) FROM calls WHERE model = 'm-fake' AND status = 'error'") == 0);
}

}  // TEST_SUITE("gateway")

}  // namespace switchboard::testing

#endif  // SWITCHBOARD_GATEWAY
