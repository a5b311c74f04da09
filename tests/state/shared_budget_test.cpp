// BudgetBook with [state] backend = "redis": several books (as several
// replicas) sharing one real redis-server that the test starts and stops
// (support/redis_server.h). Caps hold across books, reservations of a dead
// process expire, a missing period's key is seeded from the ledger's spend,
// scripts are loaded again after SCRIPT FLUSH, and both on_unavailable modes
// behave as documented when Redis goes away and comes back.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "support/redis_server.h"
#include "support/silent_server.h"
#include "state/redis_client.h"
#include "switchboard/budget.h"
#include "switchboard/config.h"

using namespace switchboard;
using namespace std::chrono_literals;
using switchboard::testing::RedisServer;

namespace {

constexpr MicroUsd kDollar = kMicroPerUsd;

StateSettings shared(const RedisServer& redis, const std::string& prefix) {
  StateSettings s;
  s.backend = StateSettings::Backend::kRedis;
  s.redis_url = redis.url();
  s.timeout = 500ms;
  s.key_prefix = prefix;
  return s;
}

// Each test case its own key prefix, so cases sharing a server never see each other's figures.
std::string fresh_prefix() {
  static std::atomic<int> n{0};
  return "t" + std::to_string(getpid()) + "-" + std::to_string(n.fetch_add(1)) + ":";
}

BudgetLimit limit(std::string scope, MicroUsd cap) {
  BudgetLimit l;
  l.scope = std::move(scope);
  l.cap = cap;
  l.period = BudgetPeriod::kMonth;
  return l;
}

// Waits until `book` reaches Redis again after a restart (the client backs off up to 5 s).
bool wait_until_shared(BudgetBook& book, const std::string& scope, std::chrono::seconds most) {
  const auto deadline = std::chrono::steady_clock::now() + most;
  while (std::chrono::steady_clock::now() < deadline) {
    (void)book.snapshot(scope);
    if (!book.state_counters().degraded) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

}  // namespace

TEST_CASE("redis_url is parsed and what it cannot hold is named") {
  auto a = detail::parse_redis_url("redis://10.0.0.5:6380/2");
  REQUIRE(a.ok());
  CHECK(a.value().host == "10.0.0.5");
  CHECK(a.value().port == 6380);
  CHECK(a.value().db == 2);
  auto d = detail::parse_redis_url("redis://cache");
  REQUIRE(d.ok());
  CHECK(d.value().port == 6379);
  CHECK(d.value().db == 0);
  CHECK(d.value().password.empty());
  // A password (percent-decoded), for the default user or an ACL user.
  auto p = detail::parse_redis_url("redis://:s%40cr%2Ft@cache:6380/3");
  REQUIRE(p.ok());
  CHECK(p.value().host == "cache");
  CHECK(p.value().port == 6380);
  CHECK(p.value().db == 3);
  CHECK(p.value().user.empty());
  CHECK(p.value().password == "s@cr/t");
  auto u = detail::parse_redis_url("redis://router:pw@10.0.0.5");
  REQUIRE(u.ok());
  CHECK(u.value().user == "router");
  CHECK(u.value().password == "pw");
  CHECK(u.value().host == "10.0.0.5");
  struct Bad {
    const char* url;
    const char* says;
  };
  for (const Bad& b : {Bad{"http://cache:6379", "does not start with redis://"},
                       Bad{"redis://:6379", "names no host"},
                       Bad{"redis://cache:http", "port 'http' is not a number"},
                       Bad{"redis://cache:70000", "port '70000'"},
                       Bad{"redis://user@cache", "names a user without a password"},
                       Bad{"redis://user:@cache", "has an empty password"},
                       Bad{"redis://user:secret%zz@cache", "a malformed %-escape"},
                       Bad{"redis://:secret@cache:http", "'redis://:***@cache:http': port 'http'"},
                       Bad{"rediss://:secret@cache", "'rediss://:***@cache' does not start with redis://"}}) {
    CAPTURE(b.url);
    auto r = detail::parse_redis_url(b.url);
    REQUIRE_FALSE(r.ok());
    CHECK_MESSAGE(r.status().message().find(b.says) != std::string::npos, r.status().message());
    CHECK(r.status().message().find("secret") == std::string::npos);  // a message never shows the password
  }
}

TEST_CASE("[state] is read and a wrong value is named with its line") {
  const auto parse = [](const std::string& state) {
    return parse_config("[state]\n" + state, "sb.toml", ".");
  };
  // Only the [state] table's own errors matter here: the rest of the config is missing on purpose,
  // so a valid [state] fails later, on something else.
  struct Bad {
    const char* text;
    const char* says;
  };
  for (const Bad& b : {Bad{"backend = \"etcd\"\n", "sb.toml:2:11: [state] backend must be \"memory\" or \"redis\""},
                       Bad{"backend = \"redis\"\n", "[state] backend = \"redis\" needs redis_url"},
                       Bad{"backend = \"redis\"\nredis_url = \"tcp://x\"\n", "sb.toml:3:13: [state] redis_url"},
                       Bad{"redis_url = \"redis://x\"\n", "redis_url is used only with backend = \"redis\""},
                       Bad{"backend = \"redis\"\nredis_url = \"redis://x\"\non_unavailable = \"open\"\n",
                           "sb.toml:4:18: [state] on_unavailable must be \"fail_closed\" or \"local\""},
                       Bad{"replicas = 0\n", "replicas"},
                       Bad{"timeout_ms = 120000\n", "sb.toml:2:14: [state] timeout_ms is at most 60000"},
                       Bad{"backend = \"redis\"\nredis_url = \"redis://x\"\nredis_password_env = \"\"\n",
                           "sb.toml:4:22: [state] redis_password_env is empty"},
                       Bad{"redis_password_env = \"REDIS_PASSWORD\"\n",
                           "sb.toml:2:22: [state] redis_password_env is used only with redis_url"},
                       Bad{"backend = \"redis\"\nredis_url = \"redis://:pw@x\"\nredis_password_env = \"P\"\n",
                           "sb.toml:4:22: [state] redis_password_env and a password in redis_url: give the "
                           "password one way"},
                       Bad{"shards = 3\n", "shards"}}) {
    CAPTURE(b.text);
    auto c = parse(b.text);
    REQUIRE_FALSE(c.ok());
    CHECK_MESSAGE(c.status().message().find(b.says) != std::string::npos, c.status().message());
  }
}

TEST_CASE("[state] values reach the config") {
  switchboard::testing::TempDir d;
  d.write("rules/w.lua", "function classify(step, ctx) return 'cheap' end");
  auto c = load_config(switchboard::testing::write_small_config(d, R"toml(
[state]
backend = "redis"
redis_url = "redis://127.0.0.1:7000/1"
timeout_ms = 120
on_unavailable = "local"
replicas = 3
reservation_ttl_s = 60
key_prefix = "fleet-a:"
)toml"));
  REQUIRE_MESSAGE(c.ok(), c.status().message());
  const StateSettings& s = c.value().state;
  CHECK(s.backend == StateSettings::Backend::kRedis);
  CHECK(s.redis_url == "redis://127.0.0.1:7000/1");
  CHECK(s.timeout == 120ms);
  CHECK(s.on_unavailable == StateSettings::OnUnavailable::kLocal);
  CHECK(s.replicas == 3);
  CHECK(s.reservation_ttl == 60s);
  CHECK(s.key_prefix == "fleet-a:");
  auto plain = load_config(switchboard::testing::write_small_config(d));
  REQUIRE(plain.ok());
  CHECK(plain.value().state.backend == StateSettings::Backend::kMemory);
}

TEST_SUITE("shared_state") {

TEST_CASE("two books sharing one Redis see each other's reservations and spend") {
  RedisServer redis;
  REQUIRE_MESSAGE(redis.ok(), "redis-server did not start (apt-get install redis-server): ", redis.log());
  const std::string prefix = fresh_prefix();
  BudgetBook a({}, shared(redis, prefix));
  BudgetBook b({}, shared(redis, prefix));
  a.set_limit(limit("workload:w", 1 * kDollar));
  b.set_limit(limit("workload:w", 1 * kDollar));

  auto held = a.reserve("workload:w", 700'000);
  REQUIRE(held.ok());
  CHECK(b.snapshot("workload:w").reserved == 700'000);
  auto refused = b.reserve("workload:w", 400'000);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == Status::Code::kOverBudget);
  CHECK(refused.status().message().find("budget workload:w: request $0.400000 is over the cap $1.000000") !=
        std::string::npos);
  held.value().settle(250'000);
  const BudgetBook::Snapshot s = b.snapshot("workload:w");
  CHECK(s.spent == 250'000);
  CHECK(s.reserved == 0);
  CHECK(s.left() == 750'000);

  // reserve_within takes the largest amount every scope can hold, in all or none.
  b.set_limit(limit("key:k", 100'000));
  auto within = b.reserve_within({"workload:w", "key:k"}, 10'000, 500'000);
  REQUIRE(within.ok());
  CHECK(within.value().amount() == 100'000);
  CHECK(a.snapshot("workload:w").reserved == 100'000);
  auto none = b.reserve_within({"workload:w", "key:k"}, 1, 1);
  REQUIRE_FALSE(none.ok());
  CHECK(none.status().message().find("budget key:k") != std::string::npos);
  CHECK(a.snapshot("workload:w").reserved == 100'000);  // nothing was taken in workload:w either

  // Replacing: the held reservation counts as left, and is given back in the same step.
  a.set_limit(limit("key:k", 100'000));
  auto bigger = b.reserve_within({"workload:w", "key:k"}, 100'000, 100'000, &within.value());
  REQUIRE(bigger.ok());
  CHECK_FALSE(within.value());
  CHECK(b.snapshot("key:k").reserved == 100'000);
  bigger.value().reduce_to(40'000);
  CHECK(b.snapshot("key:k").reserved == 40'000);
  bigger.value().release();
  CHECK(b.snapshot("key:k").reserved == 0);
  CHECK(b.state_counters().unavailable == 0);
}

TEST_CASE("a Redis that requires a password: AUTH with the URL's or the environment's, and a wrong one is named") {
  // A password made for this run (never a fixed secret), with characters a URL must escape.
  const std::string password = "pw/" + std::to_string(getpid()) + "@" + fresh_prefix();
  RedisServer redis(password);
  REQUIRE_MESSAGE(redis.ok(), redis.log());
  const std::string host = "127.0.0.1:" + std::to_string(redis.port());
  std::string escaped;
  for (const char c : password) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      escaped += c;
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", static_cast<unsigned char>(c));
      escaped += hex;
    }
  }
  const auto book_with = [&](const std::string& url, const std::string& password_env) {
    StateSettings s = shared(redis, fresh_prefix());
    s.redis_url = url;
    s.redis_password_env = password_env;
    auto book = std::make_unique<BudgetBook>(BudgetBook::Clock{}, s);
    book->set_limit(limit("workload:w", 1 * kDollar));
    return book;
  };
  SUBCASE("in the URL, for the default user") {
    auto book = book_with("redis://:" + escaped + "@" + host, "");
    auto held = book->reserve("workload:w", 100'000);
    REQUIRE_MESSAGE(held.ok(), held.status().message());
    held.value().settle(100'000);
    CHECK(book->snapshot("workload:w").spent == 100'000);
    CHECK_FALSE(book->state_counters().degraded);
  }
  SUBCASE("in the URL with the user named (Redis 6 ACL)") {
    auto book = book_with("redis://default:" + escaped + "@" + host + "/2", "");
    auto held = book->reserve("workload:w", 100'000);
    REQUIRE_MESSAGE(held.ok(), held.status().message());
  }
  SUBCASE("from redis_password_env") {
    REQUIRE(setenv("SWITCHBOARD_TEST_REDIS_PASSWORD", password.c_str(), 1) == 0);
    auto book = book_with("redis://" + host, "SWITCHBOARD_TEST_REDIS_PASSWORD");
    auto held = book->reserve("workload:w", 100'000);
    REQUIRE_MESSAGE(held.ok(), held.status().message());
    auto address = detail::redis_address_of(shared(redis, "x:"));
    REQUIRE(address.ok());
    CHECK(address->password.empty());
    StateSettings unset = shared(redis, "x:");
    unset.redis_password_env = "SWITCHBOARD_TEST_REDIS_PASSWORD_UNSET";
    auto missing = detail::redis_address_of(unset);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.status().message() ==
          "[state] redis_password_env: the environment variable SWITCHBOARD_TEST_REDIS_PASSWORD_UNSET is not set");
  }
  SUBCASE("a wrong password: refused as unavailable, naming the server and Redis's answer, not the password") {
    detail::RedisClient client(detail::parse_redis_url("redis://:wrong-" + escaped + "@" + host).value(), 1s);
    auto r = client.command({"PING"});
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kUnavailable);
    CHECK_MESSAGE(r.status().message().starts_with("redis " + host + " refused AUTH: WRONGPASS"), r.status().message());
    CHECK(r.status().message().find(password) == std::string::npos);
  }
  SUBCASE("no password: unavailable (not a script's failure), saying where a password goes") {
    detail::RedisClient client(detail::parse_redis_url("redis://" + host).value(), 1s);
    auto r = client.command({"PING"});
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kUnavailable);
    CHECK(r.status().message() == "redis " + host +
                                      " requires a password (set one in redis_url or redis_password_env): NOAUTH "
                                      "Authentication required.");
    auto book = book_with("redis://" + host, "");
    auto refused = book->reserve("workload:w", 100'000);
    REQUIRE_FALSE(refused.ok());
    CHECK_MESSAGE(refused.status().code() == Status::Code::kUnavailable, refused.status().message());  // fail_closed, as for a Redis that is down
  }
}

TEST_CASE("a missing period's key is seeded with the ledger's spend") {
  RedisServer redis;
  REQUIRE_MESSAGE(redis.ok(), redis.log());
  const std::string prefix = fresh_prefix();
  BudgetBook a({}, shared(redis, prefix));
  a.set_limit(limit("workload:w", 1 * kDollar));
  a.add_spent("workload:w", std::chrono::system_clock::now(), 700'000);  // what the ledger held at start-up
  CHECK_FALSE(a.reserve("workload:w", 400'000).ok());

  BudgetBook b({}, shared(redis, prefix));  // a replica whose ledger knows nothing
  b.set_limit(limit("workload:w", 1 * kDollar));
  CHECK(b.snapshot("workload:w").spent == 700'000);
  CHECK_FALSE(b.reserve("workload:w", 400'000).ok());
  CHECK(b.reserve("workload:w", 300'000).ok());
}

TEST_CASE("the scripts are loaded again after Redis forgets them") {
  RedisServer redis;
  REQUIRE_MESSAGE(redis.ok(), redis.log());
  BudgetBook a({}, shared(redis, fresh_prefix()));
  a.set_limit(limit("workload:w", 1 * kDollar));
  a.reserve("workload:w", 100'000).value().settle(100'000);
  detail::RedisClient admin(detail::parse_redis_url(redis.url()).value(), 1s);
  REQUIRE(admin.command({"SCRIPT", "FLUSH"}).ok());
  auto exists = admin.command({"SCRIPT", "EXISTS", detail::RedisScript("return 1").sha1});
  REQUIRE(exists.ok());
  auto again = a.reserve("workload:w", 100'000);
  REQUIRE(again.ok());
  again.value().settle(100'000);
  CHECK(a.snapshot("workload:w").spent == 200'000);
}

TEST_CASE("a reservation held by a process that died is given back after reservation_ttl") {
  RedisServer redis;
  REQUIRE_MESSAGE(redis.ok(), redis.log());
  StateSettings state = shared(redis, fresh_prefix());
  state.reservation_ttl = 1s;
  // A replica that reserves the whole cap and dies mid-call (no settle, no release, no destructor).
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    BudgetBook dying({}, state);
    dying.set_limit(limit("workload:w", 1 * kDollar));
    auto held = dying.reserve("workload:w", 1 * kDollar);
    _exit(held.ok() ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);

  BudgetBook alive({}, state);
  alive.set_limit(limit("workload:w", 1 * kDollar));
  CHECK(alive.snapshot("workload:w").reserved == 1 * kDollar);
  CHECK_FALSE(alive.reserve("workload:w", 1).ok());
  std::this_thread::sleep_for(1100ms);
  CHECK(alive.reserve("workload:w", 1 * kDollar).ok());
}

TEST_CASE("fail_closed: limited calls are refused as unavailable while Redis is down and admitted when it is back") {
  RedisServer redis;
  REQUIRE_MESSAGE(redis.ok(), redis.log());
  BudgetBook book({}, shared(redis, fresh_prefix()));
  book.set_limit(limit("workload:w", 1 * kDollar));
  book.reserve("workload:w", 300'000).value().settle(300'000);

  redis.stop();
  const auto started = std::chrono::steady_clock::now();
  auto refused = book.reserve("workload:w", 1000);
  CHECK(std::chrono::steady_clock::now() - started < 2s);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == Status::Code::kUnavailable);
  CHECK(refused.status().message().find("on_unavailable = \"fail_closed\"") != std::string::npos);
  CHECK(refused.status().reason() == Status::Reason::kBudgetStateUnreachable);  // the gateway's 503 keys on it
  CHECK(book.reserve("workload:unlimited", 1000).ok());  // nothing to enforce
  CHECK(book.state_counters().degraded);
  CHECK(book.state_counters().refused_unavailable == 1);

  // Back, empty (no persistence): the key is seeded again from what this book knows it spent.
  REQUIRE(redis.restart());
  REQUIRE(wait_until_shared(book, "workload:w", 10s));
  CHECK(book.snapshot("workload:w").spent == 300'000);
  CHECK_FALSE(book.reserve("workload:w", 800'000).ok());
  CHECK(book.reserve("workload:w", 700'000).ok());
}

TEST_CASE("local: while Redis is down each book admits up to cap / replicas and Redis learns the spend after") {
  RedisServer redis;
  REQUIRE_MESSAGE(redis.ok(), redis.log());
  StateSettings state = shared(redis, fresh_prefix());
  state.on_unavailable = StateSettings::OnUnavailable::kLocal;
  state.replicas = 2;
  BudgetBook book({}, state);
  book.set_limit(limit("workload:w", 1 * kDollar));
  redis.stop();

  auto first = book.reserve("workload:w", 400'000);
  REQUIRE(first.ok());
  auto over = book.reserve("workload:w", 200'000);  // 400k + 200k > 1M / 2
  REQUIRE_FALSE(over.ok());
  CHECK(over.status().code() == Status::Code::kOverBudget);
  CHECK(over.status().message().find("this replica's share") != std::string::npos);
  CHECK(book.state_counters().local_admissions == 2);
  CHECK(book.state_counters().degraded);
  first.value().settle(400'000);

  REQUIRE(redis.restart());
  REQUIRE(wait_until_shared(book, "workload:w", 10s));
  auto again = book.reserve("workload:w", 100'000);  // flushes the spend Redis missed first
  REQUIRE(again.ok());
  again.value().release();
  BudgetBook other({}, state);  // another replica: sees the spend through Redis
  other.set_limit(limit("workload:w", 1 * kDollar));
  CHECK(other.snapshot("workload:w").spent == 400'000);
}

TEST_CASE("a Redis that accepts but never answers costs a call its timeout and never hangs") {
  // The connect succeeds, the reply never comes.
  testing::SilentServer silent;
  StateSettings state;
  state.backend = StateSettings::Backend::kRedis;
  state.redis_url = "redis://127.0.0.1:" + std::to_string(silent.port());
  state.timeout = 200ms;
  BudgetBook book({}, state);
  book.set_limit(limit("workload:w", 1 * kDollar));
  const auto started = std::chrono::steady_clock::now();
  auto r = book.reserve("workload:w", 1000);
  const auto took = std::chrono::steady_clock::now() - started;
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kUnavailable);
  CHECK(took >= 150ms);
  CHECK(took < 1s);
  // Backing off: the next call fails at once, without waiting again.
  const auto again = std::chrono::steady_clock::now();
  CHECK_FALSE(book.reserve("workload:w", 1000).ok());
  CHECK(std::chrono::steady_clock::now() - again < 50ms);
}

}  // TEST_SUITE("shared_state")

TEST_SUITE("concurrency") {

TEST_CASE("two books sharing one Redis and hammered from threads never take spend past the cap") {
  RedisServer redis;
  REQUIRE_MESSAGE(redis.ok(), redis.log());
  const std::string prefix = fresh_prefix();
  constexpr MicroUsd kCap = 50'000;  // $0.05
  BudgetBook a({}, shared(redis, prefix));
  BudgetBook b({}, shared(redis, prefix));
  for (BudgetBook* book : {&a, &b}) {
    book->set_limit(limit("workload:w", kCap));
    book->set_limit(limit("key:k", kCap + 7'000));
  }
  constexpr int kThreads = 4;  // per book
  constexpr int kTries = 60;
  struct Seen {
    std::int64_t admitted = 0;
    MicroUsd settled = 0;
    int errors = 0;
  };
  std::vector<Seen> seen(2 * kThreads);
  std::latch go(2 * kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2 * kThreads; ++t) {
    threads.emplace_back([&, t] {
      BudgetBook& book = t % 2 == 0 ? a : b;
      Seen& mine = seen[static_cast<std::size_t>(t)];
      go.arrive_and_wait();
      for (int i = 0; i < kTries; ++i) {
        auto held = book.reserve_within({"workload:w", "key:k"}, 700, 1'500);
        if (!held.ok()) {
          if (held.status().code() != Status::Code::kOverBudget) ++mine.errors;
          continue;
        }
        ++mine.admitted;
        const MicroUsd actual = held.value().amount() - (i % 3) * 100;  // settles at or below the reservation
        held.value().settle(actual);
        mine.settled += actual;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  MicroUsd settled = 0;
  std::int64_t admitted = 0;
  for (const Seen& s : seen) {
    CHECK(s.errors == 0);
    settled += s.settled;
    admitted += s.admitted;
  }
  const BudgetBook::Snapshot w = a.snapshot("workload:w");
  CHECK(w.spent == settled);
  CHECK(w.spent <= kCap);
  CHECK(w.reserved == 0);
  CHECK(b.snapshot("key:k").spent == settled);
  CHECK(admitted > 0);
  CHECK(w.spent > kCap - 1'500);  // the cap was used up, not refused early: what is left is less than one call
}

}  // TEST_SUITE("concurrency")
