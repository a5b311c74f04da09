// Three switchboard-gateway processes sharing their budgets through one
// redis-server ([state] backend = "redis"), each with its own ledger, behind
// a round-robin client with 64 concurrent callers: the ledgers' spend
// together stays within the workload's cap; and with Redis stopped, a
// fail_closed gateway answers 503 at once, and serves again when Redis is back.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/redis_server.h"
#include "support/replicas.h"
#include "gateway/gateway_rig.h"
#include "test_util.h"

#ifdef SWITCHBOARD_GATEWAY

namespace switchboard::testing {
namespace {

using namespace std::chrono_literals;

const char* kCheapRules = R"lua(
function classify(step, ctx) return "cheap" end
)lua";

// One replica's directory: rules, prices, and a config whose workload "w" has
// a cap of `cap_usd`, sharing its state through `redis_url`.
std::string replica_config(const TempDir& dir, const std::string& cap_usd, const std::string& redis_url) {
  dir.write("rules/w.lua", kCheapRules);
  dir.write("prices.toml", small_prices());
  return dir.write("switchboard.toml", small_config("budget_usd = " + cap_usd + R"toml(

[gateway]
default_workload = "w"
ledger = "ledger.db"
)toml" + shared_state_section(redis_url, 3)));
}

std::string chat_body() { return replica_chat_body(); }

// The ledger's settled spend and ok calls for workload "w".
struct LedgerSum {
  std::int64_t spend = 0;
  std::int64_t ok_calls = 0;
};

LedgerSum ledger_sum(const std::string& path) {
  LedgerSum sum;
  sum.spend = ledger_figure(path, "SELECT COALESCE(SUM(cost_micro_usd), 0) FROM calls WHERE workload = 'w'");
  sum.ok_calls = ledger_figure(path, "SELECT COALESCE(SUM(status = 'ok'), 0) FROM calls WHERE workload = 'w'");
  return sum;
}

}  // namespace

TEST_SUITE("gateway") {

TEST_CASE("three gateways sharing one Redis keep a workload's spend within its cap under 64 concurrent clients") {
  RedisServer redis;
  REQUIRE_MESSAGE(redis.ok(), "redis-server did not start (apt-get install redis-server): ", redis.log());
  std::vector<std::unique_ptr<TempDir>> dirs;
  std::vector<std::unique_ptr<GatewayProcess>> gateways;
  for (int i = 0; i < 3; ++i) {
    dirs.push_back(std::make_unique<TempDir>());
    gateways.push_back(std::make_unique<GatewayProcess>(replica_config(*dirs.back(), "0.05", redis.url())));
  }
  constexpr int kClients = 64;
  constexpr int kRequestsEach = 4;
  std::atomic<int> ok{0};
  std::atomic<int> refused{0};
  std::atomic<int> other{0};
  std::atomic<int> next{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] {
      for (int i = 0; i < kRequestsEach; ++i) {
        const GatewayProcess& gw = *gateways[static_cast<std::size_t>(next.fetch_add(1) % 3)];  // round robin
        const Reply r = post(gw.url() + "/v1/chat/completions", chat_body(), {}, 30'000);
        if (r.status == 200) {
          ++ok;
        } else if (r.status == 429 && contains(r.body, "budget_exceeded")) {
          ++refused;
        } else {
          ++other;
        }
      }
    });
  }
  for (std::thread& t : clients) t.join();
  CHECK(other == 0);
  CHECK(ok > 0);
  CHECK(refused > 0);  // the cap was reached: 256 calls cost far more than $0.05

  LedgerSum total;
  for (std::size_t i = 0; i < gateways.size(); ++i) {
    gateways[i]->signal(SIGTERM);
    REQUIRE(gateways[i]->wait_exit(15s) == 0);
    const LedgerSum s = ledger_sum((dirs[i]->path() / "ledger.db").string());
    total.spend += s.spend;
    total.ok_calls += s.ok_calls;
  }
  CHECK(total.ok_calls == ok);
  CHECK(total.spend > 0);
  CHECK(total.spend <= 50'000);  // $0.05, across the three ledgers
}

TEST_CASE("a fail_closed gateway answers 503 at once while Redis is down and serves again when it is back") {
  RedisServer redis;
  REQUIRE_MESSAGE(redis.ok(), redis.log());
  TempDir dir;
  GatewayProcess gw(replica_config(dir, "10.0", redis.url()));
  const std::string url = gw.url() + "/v1/chat/completions";
  REQUIRE(post(url, chat_body()).status == 200);

  redis.stop();
  const auto started = std::chrono::steady_clock::now();
  const Reply down = post(url, chat_body());
  CHECK(std::chrono::steady_clock::now() - started < 3s);
  CHECK(down.status == 503);
  CHECK(contains(down.body, "budget_state_unavailable"));
  const Reply metrics = http("GET", gw.url() + "/metrics");
  CHECK(contains(metrics.body, "switchboard_shared_state_degraded 1"));
  CHECK(contains(metrics.body, "switchboard_budget_refused_unavailable_total 1"));

  REQUIRE(redis.restart());
  long status = 0;
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (status != 200 && std::chrono::steady_clock::now() < deadline) {
    status = post(url, chat_body()).status;
    if (status != 200) std::this_thread::sleep_for(200ms);
  }
  CHECK(status == 200);
  CHECK(contains(http("GET", gw.url() + "/metrics").body, "switchboard_shared_state_degraded 0"));
}

}  // TEST_SUITE("gateway")

}  // namespace switchboard::testing

#endif  // SWITCHBOARD_GATEWAY
