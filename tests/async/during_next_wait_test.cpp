// DuringNextWait: work run at the fiber's next wait (its I/O under way) or at
// finish(), once; at once off a fiber; and a work that waits itself never
// takes the wake its fiber's caller was waiting for.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "async/fiber.h"
#include "async/waits.h"
#include "switchboard/fiber_loop.h"

using namespace switchboard;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

// Runs `io` until every fiber of `loop` ended (at most `limit`); false when time ran out.
bool run_until_done(boost::asio::io_context& io, FiberLoop& loop, milliseconds limit = milliseconds(5'000)) {
  const Clock::time_point until = Clock::now() + limit;
  while (loop.fibers() > 0 && Clock::now() < until) io.run_one_for(milliseconds(20));
  return loop.fibers() == 0;
}

}  // namespace

TEST_CASE("off a fiber, the work runs at once, and finish() does not run it again") {
  int runs = 0;
  async::DuringNextWait work([&] { ++runs; });
  CHECK(runs == 1);
  work.finish();
  CHECK(runs == 1);
}

TEST_CASE("on a fiber, the work runs at its next wait, before the loop runs anything else, and once") {
  boost::asio::io_context io;
  FiberLoop loop(io);
  std::vector<std::string> order;
  loop.spawn([&] {
    // Posted first: a handler the loop would run as soon as the fiber waits.
    boost::asio::post(io, [&] { order.push_back("handler"); });
    async::DuringNextWait work([&] { order.push_back("work"); });
    order.push_back("before the wait");
    async::sleep_for(milliseconds(1), nullptr);
    order.push_back("after the wait");
    work.finish();  // ran already: nothing more
    async::sleep_for(milliseconds(1), nullptr);
  });
  REQUIRE(run_until_done(io, loop));
  CHECK(order == std::vector<std::string>{"before the wait", "work", "handler", "after the wait"});
}

TEST_CASE("finish() before any wait runs the work then, and the next wait does not") {
  boost::asio::io_context io;
  FiberLoop loop(io);
  int runs = 0;
  int at_finish = -1;
  loop.spawn([&] {
    async::DuringNextWait work([&] { ++runs; });
    CHECK(runs == 0);  // not yet: the fiber has not waited
    work.finish();
    at_finish = runs;
    async::sleep_for(milliseconds(1), nullptr);
  });
  REQUIRE(run_until_done(io, loop));
  CHECK(at_finish == 1);
  CHECK(runs == 1);
}

TEST_CASE("a work never run by a wait runs when it goes out of scope, and a second work runs the first one first") {
  boost::asio::io_context io;
  FiberLoop loop(io);
  std::vector<std::string> order;
  loop.spawn([&] {
    {
      async::DuringNextWait work([&] { order.push_back("scoped"); });
    }
    order.push_back("after the scope");
    async::DuringNextWait first([&] { order.push_back("first"); });
    async::DuringNextWait second([&] { order.push_back("second"); });
    order.push_back("both set");
    async::sleep_for(milliseconds(1), nullptr);
  });
  REQUIRE(run_until_done(io, loop));
  CHECK(order == std::vector<std::string>{"scoped", "after the scope", "first", "both set", "second"});
}

TEST_CASE("a sibling fiber's finish() runs the work on it and clears it from the waiting fiber") {
  boost::asio::io_context io;
  FiberLoop loop(io);
  int runs = 0;
  loop.spawn([&] {
    async::DuringNextWait work([&] { ++runs; });
    async::run_all(1, [&](std::size_t) { work.finish(); });  // the branch runs before the parent waits
    CHECK(runs == 1);
    async::sleep_for(milliseconds(1), nullptr);
  });
  REQUIRE(run_until_done(io, loop));
  CHECK(runs == 1);
}

TEST_CASE("a work that waits itself does not take the wake its fiber was waiting for") {
  // The fiber waits on a condition a handler sets (waking it once). Its work
  // sleeps meanwhile: the handler's wake ends the work's first wait early
  // (spurious for the sleep, which waits again). The fiber must see the
  // condition when the work is over rather than sleep for a wake that came.
  boost::asio::io_context io;
  FiberLoop loop(io);
  bool ready = false;
  bool saw_ready = false;
  loop.spawn([&] {
    const std::weak_ptr<async::Fiber> self = async::Fiber::current()->weak_from_this();
    boost::asio::post(io, [&, self] {
      ready = true;
      async::Fiber::resume(self);
    });
    async::DuringNextWait work([] { async::sleep_for(milliseconds(20), nullptr); });
    while (!ready) async::Fiber::current()->wait();
    saw_ready = true;
  });
  REQUIRE(run_until_done(io, loop, milliseconds(2'000)));
  CHECK(saw_ready);
}

TEST_CASE("a work not yet run is dropped when an exception leaves its scope") {
  boost::asio::io_context io;
  FiberLoop loop(io);
  int runs = 0;
  bool caught = false;
  loop.spawn([&] {
    try {
      async::DuringNextWait work([&] { ++runs; });
      throw std::runtime_error("the step failed");
    } catch (const std::runtime_error&) {
      caught = true;
    }
    async::sleep_for(milliseconds(1), nullptr);  // the fiber waits: nothing is left to run
  });
  REQUIRE(run_until_done(io, loop));
  CHECK(caught);
  CHECK(runs == 0);
}
