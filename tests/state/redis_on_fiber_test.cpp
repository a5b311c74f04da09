// RedisClient on a fiber (state/redis_client.h): the round trip waits on the
// fiber's loop, so the loop's other fibers run meanwhile; replies of every
// size arrive whole; a server that never answers costs the timeout and the
// connection, never the thread.
#include <doctest/doctest.h>

#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>

#include "async/waits.h"
#include "state/redis_client.h"
#include "support/redis_server.h"
#include "support/silent_server.h"
#include "support/slow_lookup.h"
#include "support/ticker.h"
#include "switchboard/fiber_loop.h"

using namespace switchboard;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// Runs `io` until every fiber of `loop` ended (at most 15 s); false when time ran out.
bool run_until_done(boost::asio::io_context& io, FiberLoop& loop) {
  const Clock::time_point until = Clock::now() + 15s;
  while (loop.fibers() > 0 && Clock::now() < until) io.run_one_for(50ms);
  return loop.fibers() == 0;
}

// A PING on one fiber while another counts its 10 ms sleeps until the
// PING returns: a round trip that blocked the thread would leave it at 0.
struct Race {
  std::optional<Status> failure;
  int ticks = 0;
  Clock::duration took{};
};
Race ping_beside_a_ticker(detail::RedisClient& client) {
  Race race;
  race.ticks = testing::run_beside_a_ticker([&] {
    const Clock::time_point start = Clock::now();
    auto r = client.command({"PING"});
    race.took = Clock::now() - start;
    if (!r.ok()) race.failure = r.status();
  });
  return race;
}

}  // namespace

TEST_SUITE("shared_state") {

TEST_CASE("on a fiber a Redis round trip waits on the loop: a server that never answers blocks no other fiber") {
  testing::SilentServer silent;
  detail::RedisClient client(detail::RedisAddress{"127.0.0.1", silent.port(), 0}, 300ms);
  const Race race = ping_beside_a_ticker(client);
  REQUIRE(race.failure.has_value());
  CHECK(race.failure->code() == Status::Code::kUnavailable);
  CHECK(race.failure->message().find("timed out after 300 ms") != std::string::npos);
  CHECK(race.took >= 250ms);
  CHECK(race.took < 2s);
  CHECK(race.ticks >= 10);  // about 30
}

TEST_CASE("on a fiber connecting to a Redis that does not accept waits on the loop and times out") {
  testing::SilentServer full(/*accepting=*/false);
  detail::RedisClient client(detail::RedisAddress{"127.0.0.1", full.port(), 0}, 300ms);
  const Race race = ping_beside_a_ticker(client);
  REQUIRE(race.failure.has_value());
  CHECK(race.failure->code() == Status::Code::kUnavailable);
  CHECK(race.failure->message().find("cannot connect to redis 127.0.0.1:") != std::string::npos);
  CHECK(race.failure->message().find("connect timed out after 300 ms") != std::string::npos);
  CHECK(race.ticks >= 10);
}

TEST_CASE("on a fiber a Redis host name is looked up while the loop serves, within the timeout") {
  testing::RedisServer redis;
  REQUIRE_MESSAGE(redis.ok(), redis.log());
  SUBCASE("a slow lookup that ends in time: the PING is answered") {
    detail::RedisClient client(detail::RedisAddress{testing::slow_lookup_name(300), redis.port(), 0}, 2000ms);
    const Race race = ping_beside_a_ticker(client);
    CHECK_MESSAGE(!race.failure.has_value(), (race.failure ? race.failure->message() : ""));
    CHECK(race.took >= 250ms);
    CHECK(race.ticks >= 10);  // about 30
  }
  SUBCASE("a name with an address that refuses first: the next one is tried") {
    detail::RedisClient client(detail::RedisAddress{"two.slow-lookup.test", redis.port(), 0}, 2000ms);
    const Race race = ping_beside_a_ticker(client);
    CHECK_MESSAGE(!race.failure.has_value(), (race.failure ? race.failure->message() : ""));
  }
  SUBCASE("a lookup slower than the timeout: the call fails at the timeout") {
    detail::RedisClient client(detail::RedisAddress{testing::slow_lookup_name(1000), redis.port(), 0}, 300ms);
    const Race race = ping_beside_a_ticker(client);
    REQUIRE(race.failure.has_value());
    CHECK(race.failure->code() == Status::Code::kUnavailable);
    CHECK(race.failure->message() == "cannot connect to redis 1000.slow-lookup.test:" + std::to_string(redis.port()) +
                                         ": looking up '1000.slow-lookup.test' timed out");
    CHECK(race.took >= 250ms);
    CHECK(race.took < 900ms);
    CHECK(race.ticks >= 10);
  }
}

TEST_CASE("on a fiber Redis replies small and large arrive whole and a connection serves the next command") {
  testing::RedisServer redis;
  REQUIRE_MESSAGE(redis.ok(), redis.log());
  detail::RedisClient client(detail::RedisAddress{"127.0.0.1", redis.port(), 0}, 2000ms);
  // Larger than one 16 KiB read, with every byte value: the reply comes in pieces.
  std::string big;
  for (int i = 0; i < 200'000; ++i) big += static_cast<char>(i * 7 % 256);
  const std::string key = "fiber-test-" + std::to_string(getpid());
  boost::asio::io_context io;
  FiberLoop loop(io);
  std::string pong;
  std::string got;
  std::int64_t length = -1;
  std::string error;
  loop.spawn([&] {
    auto p = client.command({"PING"});
    if (!p.ok()) {
      error = p.status().message();
      return;
    }
    pong = p->string;
    auto set = client.command({"SET", key, big});
    if (!set.ok()) {
      error = set.status().message();
      return;
    }
    auto get = client.command({"GET", key});
    if (!get.ok()) {
      error = get.status().message();
      return;
    }
    got = get->string;
    auto strlen = client.command({"STRLEN", key});
    if (strlen.ok()) length = strlen->integer;
    // A script error is the script's, and the connection goes on serving.
    auto bad = client.command({"EVAL", "return redis.call('NOSUCHCOMMAND')", "0"});
    if (bad.ok()) error = "a failing script succeeded";
    auto again = client.command({"DEL", key});
    if (!again.ok()) error = again.status().message();
  });
  REQUIRE(run_until_done(io, loop));
  CHECK(error.empty());
  CHECK(pong == "PONG");
  CHECK(got.size() == big.size());
  CHECK(got == big);
  CHECK(length == static_cast<std::int64_t>(big.size()));
}

}  // TEST_SUITE("shared_state")
