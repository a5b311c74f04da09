// Three switchboard-gateway processes sharing their budgets through one
// redis-server ([state] backend = "redis"), each with its own ledger, behind
// a round-robin client with 64 concurrent callers: the ledgers' spend
// together stays within the workload's cap; and with Redis stopped, a
// fail_closed gateway answers 503 at once, and serves again when Redis is back.
// Issue 19's done-when test: three gateways on one Redis and one PostgreSQL
// ledger, a workload cap, a key cap and a key's 120 requests per minute,
// 64 round-robin clients, one replica SIGKILLed under load.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/postgres_server.h"
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

// One replica of the done-when test: workload "w" capped at $0.05, key "k"
// (for "w") capped at $0.02 and 120 requests per minute, key "k2" (for "w")
// with no limit of its own; the state in `redis_url`, the ledger in
// PostgreSQL at `pg_url`; answers take 30 ms, so a kill finds calls in flight;
// a reservation a dead replica held goes back after 2 s.
std::string shared_config(const TempDir& dir, const std::string& redis_url, const std::string& pg_url) {
  dir.write("rules/w.lua", kCheapRules);
  dir.write("prices.toml", small_prices());
  return dir.write("switchboard.toml", small_config("budget_usd = 0.05" + std::string(R"toml(

[sim]
base_latency_ms = 30

[gateway]
default_workload = "w"
ledger = "ledger.db"

[gateway.keys.k]
key_env = "SWITCHBOARD_TEST_KEY_K"
workload = "w"
budget_usd = 0.02
requests_per_minute = 120

[gateway.keys.k2]
key_env = "SWITCHBOARD_TEST_KEY_K2"
workload = "w"

[ledger]
url = ")toml") + pg_url + R"toml("

[state]
backend = "redis"
redis_url = ")toml" + redis_url + R"toml("
timeout_ms = 300
on_unavailable = "fail_closed"
replicas = 3
reservation_ttl_s = 2
)toml"));
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, sep);) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

// The most values of `times_ms` (sorted here) inside any window of `window_ms`.
std::size_t max_in_window(std::vector<std::int64_t> times_ms, std::int64_t window_ms) {
  std::sort(times_ms.begin(), times_ms.end());
  std::size_t most = 0;
  for (std::size_t lo = 0, hi = 0; hi < times_ms.size(); ++hi) {
    while (times_ms[hi] - times_ms[lo] >= window_ms) ++lo;
    most = std::max(most, hi - lo + 1);
  }
  return most;
}

}  // namespace

TEST_SUITE("gateway") {

TEST_CASE("three gateways on one Redis and one PostgreSQL hold a workload cap, a key cap and 120 RPM, and lose no "
          "acknowledged call when one is SIGKILLed") {
  RedisServer redis;
  REQUIRE_MESSAGE(redis.ok(), "redis-server did not start (apt-get install redis-server): ", redis.log());
  PostgresServer pg;  // REQUIREs that it started
  const std::vector<std::pair<std::string, std::string>> env = {{"SWITCHBOARD_TEST_KEY_K", "sk-k-111"},
                                                                {"SWITCHBOARD_TEST_KEY_K2", "sk-k2-222"}};
  std::vector<std::unique_ptr<TempDir>> dirs;
  std::vector<std::unique_ptr<GatewayProcess>> gateways;
  for (int i = 0; i < 3; ++i) {
    dirs.push_back(std::make_unique<TempDir>());
    gateways.push_back(std::make_unique<GatewayProcess>(shared_config(*dirs.back(), redis.url(), pg.url()), env));
  }

  // 64 clients, half with key k, half with k2, round robin over the replicas,
  // for 8 s (at most 150 requests each); replica 0 is SIGKILLed after 3 s.
  constexpr int kClients = 64;
  constexpr int kMaxEach = 150;
  const auto started = std::chrono::steady_clock::now();
  const auto stop_at = started + 8s;
  std::atomic<bool> killed{false};
  std::atomic<int> next{0};
  std::atomic<int> ok{0}, budget_refused{0}, rate_refused{0}, rate_without_retry_after{0}, down{0}, other{0};
  std::mutex mu;
  std::vector<std::string> acknowledged;  // trace ids of the answers received in full
  std::string other_example;
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      const std::string auth = c % 2 == 0 ? "Authorization: Bearer sk-k-111" : "Authorization: Bearer sk-k2-222";
      for (int i = 0; i < kMaxEach && std::chrono::steady_clock::now() < stop_at; ++i) {
        const std::size_t g = static_cast<std::size_t>(next.fetch_add(1) % 3);
        if (g == 0 && killed) {
          ++down;
          continue;
        }
        const Reply r = post(gateways[g]->url() + "/v1/chat/completions", chat_body(), {auth}, 10'000);
        if (r.status == 200) {
          ++ok;
          std::lock_guard<std::mutex> lock(mu);
          acknowledged.push_back(r.header("x-switchboard-trace-id"));
        } else if (r.status == 429 && contains(r.body, "budget_exceeded")) {
          ++budget_refused;
        } else if (r.status == 429 && contains(r.body, "rate_limit_exceeded")) {
          ++rate_refused;
          if (r.header("retry-after").empty()) ++rate_without_retry_after;
          std::this_thread::sleep_for(20ms);  // a client that backs off a little
        } else if (g == 0 && (r.code != CURLE_OK || killed)) {
          ++down;  // the killed replica: no answer was acknowledged
        } else {
          ++other;
          std::lock_guard<std::mutex> lock(mu);
          other_example = std::to_string(r.status) + " " + r.body;
        }
      }
    });
  }
  std::this_thread::sleep_for(3s);
  killed = true;
  gateways[0]->signal(SIGKILL);
  for (std::thread& t : clients) t.join();
  const auto load_took = std::chrono::steady_clock::now() - started;
  INFO("ok ", ok.load(), ", budget 429 ", budget_refused.load(), ", rate 429 ", rate_refused.load(), ", down ",
       down.load(), ", other ", other.load(), " (", other_example, ")");
  CHECK(other == 0);
  CHECK(ok > 0);
  CHECK(budget_refused > 0);  // the caps were reached
  CHECK(rate_refused > 0);    // and key k's 120 a minute
  CHECK(rate_without_retry_after == 0);
  CHECK(load_took < 20s);

  // No budget is left reserved once the dead replica's reservations expire.
  std::this_thread::sleep_for(2500ms);
  StateSettings state;
  state.backend = StateSettings::Backend::kRedis;
  state.redis_url = redis.url();
  BudgetBook book({}, state);
  book.set_limit({workload_budget_scope("w"), 50'000, BudgetPeriod::kMonth});
  book.set_limit({key_budget_scope("k"), 20'000, BudgetPeriod::kMonth});
  CHECK(book.snapshot(workload_budget_scope("w")).reserved == 0);
  CHECK(book.snapshot(key_budget_scope("k")).reserved == 0);

  for (std::size_t i = 1; i < gateways.size(); ++i) {
    gateways[i]->signal(SIGTERM);
    CHECK(gateways[i]->wait_exit(15s) == 0);
  }

  // Each scope's spend in the one ledger is within its cap, exactly.
  const std::string key_k = "budget_scopes LIKE '%\"key:k\"%'";
  CHECK(std::stoll(pg.query("SELECT COALESCE(SUM(cost_micro_usd), 0) FROM calls WHERE workload = 'w'")) <= 50'000);
  CHECK(std::stoll(pg.query("SELECT COALESCE(SUM(cost_micro_usd), 0) FROM calls WHERE " + key_k)) <= 20'000);
  CHECK(std::stoll(pg.query("SELECT COALESCE(SUM(cost_micro_usd), 0) FROM calls WHERE workload = 'w'")) > 0);

  // Key k: at most 120 steps admitted by its rate limit in any 60 s (the
  // ledger's times of every step not refused by it; budget refusals were admitted).
  const std::vector<std::string> admitted =
      split(pg.query("SELECT string_agg(t::text, ',') FROM (SELECT MIN(time_ms) AS t FROM calls WHERE " + key_k +
                     " AND status <> 'refused_by_rate_limit' GROUP BY trace_id) s"),
            ',');
  std::vector<std::int64_t> times;
  for (const std::string& t : admitted) times.push_back(std::stoll(t));
  INFO("key k: ", times.size(), " steps admitted");
  CHECK(max_in_window(times, 60'000) <= 120);
  CHECK(times.size() >= 100);  // the demand was far above the limit: the limit, not the clients, bound it
  CHECK(std::stoll(pg.query("SELECT COUNT(*) FROM calls WHERE status = 'refused_by_rate_limit' AND " + key_k)) > 0);

  // Every acknowledged answer has its ok record, the killed replica's included.
  const std::vector<std::string> recorded = split(pg.query("SELECT string_agg(trace_id, ',') FROM calls WHERE status = 'ok'"), ',');
  const std::set<std::string> in_ledger(recorded.begin(), recorded.end());
  std::size_t missing = 0;
  for (const std::string& trace : acknowledged) missing += in_ledger.count(trace) == 0 ? 1 : 0;
  CHECK(acknowledged.size() == static_cast<std::size_t>(ok.load()));
  CHECK(missing == 0);
  MESSAGE("ok ", ok.load(), ", budget 429 ", budget_refused.load(), ", rate 429 ", rate_refused.load(),
          ", key k admitted ", times.size(), " (most in 60 s: ", max_in_window(times, 60'000), "), acknowledged ",
          acknowledged.size(), ", missing ", missing, ", load ",
          std::chrono::duration_cast<std::chrono::milliseconds>(load_took).count(), " ms");
}


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
