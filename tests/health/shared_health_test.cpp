// Model health shared through Redis ([state] backend = "redis"): two engines
// (as two replicas) on one redis-server the test starts (support/redis_server.h).
// A breaker one opens is open in the other within a second; the other sees the
// fleet's window and latencies; a probe's success after the cool-down closes it
// in both; and with Redis down each keeps its own breakers, nothing waits.
#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "support/redis_server.h"
#include "switchboard/engine.h"
#include "switchboard/health.h"
#include "test_util.h"

using namespace switchboard;
using namespace switchboard::testing;
using namespace std::chrono_literals;
using State = ModelHealth::State;

namespace {

const char* kRules = R"lua(function classify(step, ctx) return "premium" end)lua";

// [health] opening after two failures in a row, for one second; [state] on `redis_url`.
std::string shared_health_config(const std::string& redis_url) {
  return R"toml(
[health]
failure_threshold = 2
cooldown_s = 1

[state]
backend = "redis"
redis_url = ")toml" + redis_url + R"toml("
timeout_ms = 200
)toml";
}

std::unique_ptr<Engine> open_replica(const TempDir& dir, const std::string& redis_url) {
  auto e = engine_with_rules(dir, kRules, shared_health_config(redis_url));
  REQUIRE_MESSAGE(e.ok(), e.status().message());
  return std::move(e).value();
}

// Polls `done` every 10 ms for at most `most`; returns how long it took, or nothing.
std::optional<std::chrono::milliseconds> within(std::chrono::milliseconds most, const std::function<bool()>& done) {
  const auto start = std::chrono::steady_clock::now();
  while (!done()) {
    if (std::chrono::steady_clock::now() - start > most) return std::nullopt;
    std::this_thread::sleep_for(10ms);
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
}

// Until both engines have exchanged once (so the next exchange is the one measured).
void wait_shared(const Engine& a, const Engine& b) {
  REQUIRE(within(2s, [&] { return a.health().sharing().exchanges > 0 && b.health().sharing().exchanges > 0; }));
}

void fail(HealthBook& book, const std::string& model, int times) {
  for (int i = 0; i < times; ++i) {
    REQUIRE(book.admit(model));
    book.record_failure(model);
  }
}

}  // namespace

TEST_SUITE("health") {

TEST_CASE("failures on one replica open the breaker on another sharing its Redis within a second") {
  RedisServer redis;
  REQUIRE_MESSAGE(redis.ok(), "redis-server did not start (apt-get install redis-server): ", redis.log());
  TempDir da, db;
  auto a = open_replica(da, redis.url());
  auto b = open_replica(db, redis.url());
  wait_shared(*a, *b);
  CHECK(b->health().sharing().enabled);
  CHECK_FALSE(b->health().sharing().degraded);
  CHECK(b->health().admit("m-premium"));
  b->health().record_neutral("m-premium");

  fail(a->health(), "m-premium", 2);
  CHECK(a->health().snapshot("m-premium").state == State::kOpen);  // at once, locally
  const auto took = within(1s, [&] { return b->health().snapshot("m-premium").state == State::kOpen; });
  REQUIRE(took);
  MESSAGE("B saw A's breaker open after ", took->count(), " ms");
  CHECK_FALSE(b->health().admit("m-premium"));
  const ModelHealth seen = b->health().snapshot("m-premium");
  CHECK_FALSE(seen.healthy);
  CHECK(seen.calls == 2);  // the fleet's window: A's two failures
  CHECK(seen.error_rate == doctest::Approx(1.0));
  CHECK(seen.consecutive_failures == 2);
  CHECK(b->health().snapshot("m-cheap").state == State::kClosed);  // only the failing model
  CHECK(b->health().admit("m-cheap"));
  b->health().record_neutral("m-cheap");
}

TEST_CASE("the fleet's window and latencies are what each replica's rules see") {
  RedisServer redis;
  REQUIRE_MESSAGE(redis.ok(), redis.log());
  TempDir da, db;
  auto a = open_replica(da, redis.url());
  auto b = open_replica(db, redis.url());
  wait_shared(*a, *b);
  for (int i = 0; i < 3; ++i) {
    REQUIRE(a->health().admit("m-cheap"));
    a->health().record_success("m-cheap", 100ms, {});
  }
  REQUIRE(b->health().admit("m-cheap"));
  b->health().record_failure("m-cheap");  // one failure: the breaker stays closed
  REQUIRE(b->health().admit("m-cheap"));
  b->health().record_success("m-cheap", 300ms, {});
  const auto both = [](const Engine& e) {
    const ModelHealth h = e.health().snapshot("m-cheap");
    return h.calls == 5 && h.p50_ms && *h.p50_ms == 100;
  };
  REQUIRE(within(1s, [&] { return both(*a) && both(*b); }));
  const ModelHealth h = a->health().snapshot("m-cheap");
  CHECK(h.error_rate == doctest::Approx(0.2));
  CHECK(h.p95_ms == 300);
  CHECK(h.state == State::kClosed);
}

TEST_CASE("after the cool-down a probe's success on one replica closes the breaker on the other") {
  RedisServer redis;
  REQUIRE_MESSAGE(redis.ok(), redis.log());
  TempDir da, db;
  auto a = open_replica(da, redis.url());
  auto b = open_replica(db, redis.url());
  wait_shared(*a, *b);
  fail(a->health(), "m-premium", 2);
  REQUIRE(within(1s, [&] { return b->health().snapshot("m-premium").state == State::kOpen; }));

  // The fleet's cool-down (1 s, by Redis's clock) ends: each replica may send a probe.
  REQUIRE(within(2s, [&] { return a->health().snapshot("m-premium").state == State::kHalfOpen; }));
  REQUIRE(within(1s, [&] { return b->health().snapshot("m-premium").state == State::kHalfOpen; }));
  REQUIRE(a->health().admit("m-premium"));  // A's probe
  CHECK_FALSE(a->health().admit("m-premium"));
  a->health().record_success("m-premium", 50ms, {});
  CHECK(a->health().snapshot("m-premium").state == State::kClosed);
  REQUIRE(within(1s, [&] { return b->health().snapshot("m-premium").state == State::kClosed; }));
  const ModelHealth h = b->health().snapshot("m-premium");
  CHECK(h.healthy);
  CHECK(h.calls == 1);  // the failures that opened it no longer count: the probe alone
  CHECK(h.consecutive_failures == 0);
  // B admits as many calls as it likes again (closed, not a half-open probe).
  CHECK(b->health().admit("m-premium"));
  CHECK(b->health().admit("m-premium"));
  b->health().record_neutral("m-premium");
  b->health().record_neutral("m-premium");
}

TEST_CASE("a probe that fails again opens the breaker for the whole fleet for another cool-down") {
  RedisServer redis;
  REQUIRE_MESSAGE(redis.ok(), redis.log());
  TempDir da, db;
  auto a = open_replica(da, redis.url());
  auto b = open_replica(db, redis.url());
  wait_shared(*a, *b);
  fail(a->health(), "m-premium", 2);
  REQUIRE(within(1s, [&] { return b->health().snapshot("m-premium").state == State::kOpen; }));
  REQUIRE(within(2s, [&] { return b->health().snapshot("m-premium").state == State::kHalfOpen; }));
  REQUIRE(b->health().admit("m-premium"));  // B's probe
  b->health().record_failure("m-premium");
  CHECK(b->health().snapshot("m-premium").state == State::kOpen);
  // A, half-open by then, is told the breaker opened again.
  REQUIRE(within(1s, [&] { return a->health().snapshot("m-premium").state == State::kOpen; }));
  CHECK_FALSE(a->health().admit("m-premium"));
}

TEST_CASE("with Redis unreachable each replica keeps its own breakers, and nothing waits on Redis") {
  RedisServer redis;
  REQUIRE_MESSAGE(redis.ok(), redis.log());
  const std::string url = redis.url();
  redis.stop();
  TempDir da;
  auto a = open_replica(da, url);
  REQUIRE(within(2s, [&] { return a->health().sharing().degraded; }));
  CHECK(a->health().sharing().unavailable > 0);
  CHECK(a->health().sharing().exchanges == 0);

  const auto start = std::chrono::steady_clock::now();
  fail(a->health(), "m-premium", 2);  // the local breaker still works
  CHECK_FALSE(a->health().admit("m-premium"));
  CHECK(std::chrono::steady_clock::now() - start < 50ms);
  const ModelHealth h = a->health().snapshot("m-premium");
  CHECK(h.state == State::kOpen);
  CHECK(h.calls == 2);  // its own figures

  // Redis comes back (the client backs off up to 5 s): A's outcomes reach the fleet then.
  REQUIRE(redis.restart());
  REQUIRE(within(8s, [&] { return !a->health().sharing().degraded; }));
  TempDir db;
  auto b = open_replica(db, url);
  REQUIRE(within(1s, [&] { return b->health().snapshot("m-premium").calls == 2; }));
  const auto closing = std::chrono::steady_clock::now();
  a.reset();  // the engine stops its exchange promptly
  CHECK(std::chrono::steady_clock::now() - closing < 1s);
}

}  // TEST_SUITE("health")
