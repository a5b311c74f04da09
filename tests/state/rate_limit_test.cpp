// RateLimiter: requests and tokens per sliding minute, in one process (a
// fake clock) and shared by two limiters through a real redis-server
// (support/redis_server.h), with Retry-After figures and headroom.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "support/redis_server.h"
#include "switchboard/rate_limit.h"

using namespace switchboard;
using namespace std::chrono_literals;
using switchboard::testing::RedisServer;

namespace {

RateLimit limit(std::string scope, std::int64_t rpm, std::int64_t tpm) {
  RateLimit l;
  l.scope = std::move(scope);
  l.requests_per_minute = rpm;
  l.tokens_per_minute = tpm;
  return l;
}

StateSettings shared(const RedisServer& redis, const std::string& prefix) {
  StateSettings s;
  s.backend = StateSettings::Backend::kRedis;
  s.redis_url = redis.url();
  s.timeout = 500ms;
  s.key_prefix = prefix;
  return s;
}

}  // namespace

TEST_CASE("in one process: at most N requests in any 60 s and Retry-After says when the next fits") {
  std::chrono::system_clock::time_point now{std::chrono::hours(24 * 20000)};
  RateLimiter limiter({}, [&] { return now; });
  limiter.set_limit(limit("key:k", 3, 0));
  for (int i = 0; i < 3; ++i) {
    auto d = limiter.admit({"key:k"}, 10);
    REQUIRE(d.ok());
    CHECK(d.value().allowed);
    CHECK(d.value().requests_left == 2 - i);
    now += 10s;
  }
  auto refused = limiter.admit({"key:k"}, 10);  // at 30 s: the first leaves the window at 60 s
  REQUIRE(refused.ok());
  CHECK_FALSE(refused.value().allowed);
  CHECK(refused.value().limited_by == "key:k");
  CHECK(refused.value().retry_after == 30s);
  now += 30s;  // 60 s after the first: it has left
  CHECK(limiter.admit({"key:k"}, 10).value().allowed);
  CHECK_FALSE(limiter.admit({"key:k"}, 10).value().allowed);
}

TEST_CASE("in one process: tokens per minute in all scopes or none and a request larger than the limit never fits") {
  std::chrono::system_clock::time_point now{std::chrono::hours(24 * 20000)};
  RateLimiter limiter({}, [&] { return now; });
  limiter.set_limit(limit("key:k", 100, 1000));
  limiter.set_limit(limit("model:m", 0, 500));
  auto first = limiter.admit({"key:k", "model:m", "workload:unlimited"}, 400);
  REQUIRE(first.ok());
  CHECK(first.value().allowed);
  CHECK(first.value().tokens_left == 100);  // the tightest: model:m
  CHECK(first.value().requests_left == 99);
  now += 5s;
  auto over = limiter.admit({"key:k", "model:m"}, 200);
  REQUIRE(over.ok());
  CHECK_FALSE(over.value().allowed);
  CHECK(over.value().limited_by == "model:m");
  CHECK(over.value().retry_after == 55s);
  // Refused in model:m, so not counted in key:k either: key:k still has 600 tokens.
  auto key_only = limiter.admit({"key:k"}, 600);
  REQUIRE(key_only.ok());
  CHECK(key_only.value().allowed);
  CHECK(key_only.value().tokens_left == 0);
  auto never = limiter.admit({"model:m"}, 501);
  REQUIRE(never.ok());
  CHECK_FALSE(never.value().allowed);
  CHECK_FALSE(never.value().retry_after.has_value());
  CHECK_FALSE(limiter.admit({"key:k"}, -1).ok());
}

TEST_SUITE("shared_state") {

TEST_CASE("two limiters sharing one Redis admit at most N per minute between them") {
  RedisServer redis;
  REQUIRE_MESSAGE(redis.ok(), "redis-server did not start (apt-get install redis-server): ", redis.log());
  const std::string prefix = "rl" + std::to_string(getpid()) + ":";
  RateLimiter a(shared(redis, prefix));
  RateLimiter b(shared(redis, prefix));
  for (RateLimiter* l : {&a, &b}) l->set_limit(limit("key:k", 12, 0));
  std::atomic<int> allowed{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      RateLimiter& l = t % 2 == 0 ? a : b;
      for (int i = 0; i < 10; ++i) {
        auto d = l.admit({"key:k"}, 1);
        if (!d.ok()) {
          ++errors;
        } else if (d.value().allowed) {
          ++allowed;
        } else {
          const auto retry = d.value().retry_after.value_or(0ms);
          if (retry <= 0ms || retry > 60s) ++errors;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(errors == 0);
  CHECK(allowed == 12);

  // Tokens, shared the same way; the refusal names the scope.
  a.set_limit(limit("model:m", 0, 1000));
  b.set_limit(limit("model:m", 0, 1000));
  CHECK(a.admit({"model:m"}, 700).value().allowed);
  auto over = b.admit({"model:m"}, 400);
  REQUIRE(over.ok());
  CHECK_FALSE(over.value().allowed);
  CHECK(over.value().limited_by == "model:m");
  auto fits = b.admit({"model:m"}, 300);
  REQUIRE(fits.ok());
  CHECK(fits.value().allowed);
  CHECK(fits.value().tokens_left == 0);
}

TEST_CASE("rate limits while Redis is down: fail_closed refuses and local counts this process's share") {
  RedisServer redis;
  REQUIRE_MESSAGE(redis.ok(), redis.log());
  StateSettings closed = shared(redis, "rl-down:");
  StateSettings local = closed;
  local.on_unavailable = StateSettings::OnUnavailable::kLocal;
  local.replicas = 2;
  RateLimiter a(closed);
  RateLimiter b(local);
  a.set_limit(limit("key:k", 10, 0));
  b.set_limit(limit("key:k", 10, 0));
  redis.stop();
  auto refused = a.admit({"key:k"}, 1);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == Status::Code::kUnavailable);
  CHECK(refused.status().reason() == Status::Reason::kRateStateUnreachable);  // the gateway's 503 keys on it
  CHECK(a.admit({"key:unlimited"}, 1).ok());
  int allowed = 0;
  for (int i = 0; i < 8; ++i) allowed += b.admit({"key:k"}, 1).value().allowed ? 1 : 0;
  CHECK(allowed == 5);  // 10 / 2 replicas
}

}  // TEST_SUITE("shared_state")
