// async::resolve: a host name looked up from a fiber, while the loop's other
// fibers run; an IP literal at once; a lookup past its deadline given up on.
#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "async/fiber.h"
#include "async/resolve.h"
#include "support/slow_lookup.h"
#include "support/ticker.h"

using namespace switchboard;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using boost::asio::ip::tcp;

namespace {

// resolve(host) on one fiber while another counts its 10 ms sleeps until
// the lookup returns: a lookup that blocked the thread would leave it at 0.
struct Lookup {
  std::optional<Result<std::vector<tcp::endpoint>>> result;
  int ticks = 0;
  Clock::duration took{};
};
Lookup resolve_beside_a_ticker(const std::string& host, Clock::duration limit) {
  Lookup lookup;
  lookup.ticks = testing::run_beside_a_ticker([&] {
    const Clock::time_point start = Clock::now();
    lookup.result = async::resolve(*async::Fiber::current(), host, 6379, start + limit);
    lookup.took = Clock::now() - start;
  });
  return lookup;
}

}  // namespace

TEST_SUITE("fiber_loop") {

TEST_CASE("resolve answers an IP literal at once, without a lookup") {
  const int before = testing::slow_lookups.load();
  for (const std::string host : {"127.0.0.1", "::1"}) {
    const Lookup lookup = resolve_beside_a_ticker(host, 1s);
    REQUIRE(lookup.result.has_value());
    REQUIRE_MESSAGE(lookup.result->ok(), lookup.result->status().message());
    REQUIRE(lookup.result->value().size() == 1);
    CHECK(lookup.result->value()[0] == tcp::endpoint(boost::asio::ip::make_address(host), 6379));
  }
  CHECK(testing::slow_lookups.load() == before);
}

TEST_CASE("resolve looks a name up off the loop's thread: the loop's other fibers run during a slow lookup") {
  const int before = testing::slow_lookups.load();
  const Lookup lookup = resolve_beside_a_ticker(testing::slow_lookup_name(300), 5s);
  CHECK(testing::slow_lookups.load() == before + 1);
  REQUIRE(lookup.result.has_value());
  REQUIRE_MESSAGE(lookup.result->ok(), lookup.result->status().message());
  REQUIRE_FALSE(lookup.result->value().empty());
  CHECK(lookup.result->value()[0] == tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 6379));
  CHECK(lookup.took >= 250ms);
  CHECK(lookup.ticks >= 10);  // about 30
}

TEST_CASE("resolve gives a lookup up at its deadline, with the loop serving meanwhile") {
  const Lookup lookup = resolve_beside_a_ticker(testing::slow_lookup_name(1000), 200ms);
  REQUIRE(lookup.result.has_value());
  REQUIRE_FALSE(lookup.result->ok());
  CHECK(lookup.result->status().code() == Status::Code::kUnavailable);
  CHECK(lookup.result->status().message() == "looking up '1000.slow-lookup.test' timed out");
  CHECK(lookup.took >= 190ms);
  CHECK(lookup.took < 900ms);
  CHECK(lookup.ticks >= 5);  // about 20
}

TEST_CASE("resolve names the host a lookup did not find") {
  const Lookup lookup = resolve_beside_a_ticker("fail.slow-lookup.test", 5s);
  REQUIRE(lookup.result.has_value());
  REQUIRE_FALSE(lookup.result->ok());
  CHECK(lookup.result->status().code() == Status::Code::kUnavailable);
  CHECK(lookup.result->status().message().starts_with("cannot look up 'fail.slow-lookup.test': "));
}

}  // TEST_SUITE
