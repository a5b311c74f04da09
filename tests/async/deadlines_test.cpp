// Deadlines: a loop's timed wakes under one Asio timer (async/deadlines.h).
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "async/deadlines.h"
#include "async/fiber.h"

using namespace switchboard::async;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

// Runs `io` until `loop` has no fiber left (at most 10 s); false when time ran out.
bool run_until_done(boost::asio::io_context& io, Loop& loop) {
  const Clock::time_point until = Clock::now() + milliseconds(10'000);
  while (loop.fibers() > 0 && Clock::now() < until) io.run_one_for(milliseconds(50));
  return loop.fibers() == 0;
}

// On a fiber: waits until `due` with a WakeTimer, counting the wakes it took.
int sleep_until(Clock::time_point due) {
  WakeTimer timer(*Fiber::current());
  timer.wake_at(due);
  int wakes = 0;
  while (Clock::now() < due) {
    Fiber::current()->wait();
    ++wakes;
  }
  return wakes;
}

}  // namespace

TEST_SUITE("fiber_loop") {

TEST_CASE("deadlines wake their fibers in the order they fall due, each once and not before") {
  boost::asio::io_context io;
  Loop loop(io);
  const Clock::time_point start = Clock::now();
  std::vector<int> order;
  std::vector<int> wakes;
  for (const int ms : {60, 20, 40}) {
    loop.spawn([&, ms] {
      const Clock::time_point due = start + milliseconds(ms);
      wakes.push_back(sleep_until(due));  // returns at `due` or later
      order.push_back(ms);
    });
  }
  CHECK(loop.deadlines().size() == 3);
  REQUIRE(run_until_done(io, loop));
  CHECK(order == std::vector<int>{20, 40, 60});
  CHECK(wakes == std::vector<int>{1, 1, 1});
  CHECK(loop.deadlines().size() == 0);
}

TEST_CASE("calls that end before their deadlines leave the loop's timer set: it is set once, not once per call") {
  boost::asio::io_context io;
  Loop loop(io);
  for (int i = 0; i < 100; ++i) {
    loop.spawn([&] {
      // A call's limit, an hour off; the call ends first.
      WakeTimer timer(*Fiber::current());
      timer.wake_at(Clock::now() + std::chrono::hours(1));
    });
  }
  CHECK(loop.fibers() == 0);
  CHECK(loop.deadlines().size() == 0);
  CHECK(loop.deadlines().times_armed() == 1);  // the first call's; the later ones fall due after it
  REQUIRE(loop.deadlines().armed().has_value());

  // A deadline before the one the timer is set to sets it again, and wakes on time.
  int wakes = 0;
  loop.spawn([&] { wakes = sleep_until(Clock::now() + milliseconds(10)); });
  CHECK(loop.deadlines().times_armed() == 2);
  REQUIRE(run_until_done(io, loop));
  CHECK(wakes == 1);
  // The timer is set again for the earliest left (none) only when it fires.
  CHECK(loop.deadlines().size() == 0);
}

TEST_CASE("a deadline moved later, or removed, before it falls due wakes nobody") {
  boost::asio::io_context io;
  Loop loop(io);
  const Clock::time_point start = Clock::now();
  int wakes = -1;
  loop.spawn([&] {
    WakeTimer timer(*Fiber::current());
    timer.wake_at(start + milliseconds(10));
    timer.wake_at(start + milliseconds(10));  // the same time: nothing moves
    timer.wake_at(start + milliseconds(50));  // later: the 10 ms entry goes
    timer.wake_at(Clock::time_point::max());  // "not at all" keeps the time set
    wakes = 0;
    while (Clock::now() < start + milliseconds(50)) {
      Fiber::current()->wait();
      ++wakes;
    }
  });
  bool removed_woke = false;
  loop.spawn([&] {
    {
      WakeTimer gone(*Fiber::current());
      gone.wake_at(start + milliseconds(5));
    }
    WakeTimer late(*Fiber::current());
    late.wake_at(start + milliseconds(80));
    Fiber::current()->wait();
    removed_woke = Clock::now() < start + milliseconds(80);
  });
  CHECK(loop.deadlines().size() == 2);
  REQUIRE(run_until_done(io, loop));
  CHECK(wakes == 1);  // the timer fired at 10 ms for nothing, and was set for 50
  CHECK_FALSE(removed_woke);
}

}  // TEST_SUITE
