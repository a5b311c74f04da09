// SpinGovernor: when an I/O thread may busy-poll (http/busy_poll.h).
#include "http/busy_poll.h"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <thread>

using switchboard::gateway::SpinGovernor;
using namespace std::chrono_literals;

namespace {

// A thread's wait for a core, moved by the test; counts its reads.
struct FakeWait {
  std::int64_t ns = 0;
  int reads = 0;
  SpinGovernor::WaitClock clock() {
    return [this] {
      ++reads;
      return ns;
    };
  }
};

constexpr std::int64_t ns_of(std::chrono::nanoseconds d) { return d.count(); }

}  // namespace

TEST_CASE("a spinning thread that waits little for its core keeps spinning, and reads its wait at most every 2 ms") {
  FakeWait wait;
  SpinGovernor governor(wait.clock());
  auto now = SpinGovernor::Clock::time_point{} + 1s;
  REQUIRE(governor.may_spin(now));
  CHECK(wait.reads == 1);  // the baseline
  for (int i = 0; i < 100; ++i) {
    now += 500us;
    wait.ns += ns_of(50us);  // 10% of the time
    governor.spun(now);
    CHECK(governor.may_spin(now));
  }
  CHECK(governor.pause() == 0ms);
  CHECK(wait.reads == 1 + 25);  // 50 ms of spins, one read per 2 ms
}

TEST_CASE("a thread kept off its core pauses its spinning, twice as long each time, until a check finds the core free") {
  FakeWait wait;
  SpinGovernor governor(wait.clock());
  auto now = SpinGovernor::Clock::time_point{} + 1s;
  REQUIRE(governor.may_spin(now));

  // Waited 30% of the 2 ms since the baseline: a 10 ms pause.
  now += 2ms;
  wait.ns += ns_of(600us);
  governor.spun(now);
  CHECK(governor.pause() == 10ms);
  CHECK_FALSE(governor.may_spin(now));
  CHECK_FALSE(governor.may_spin(now + 9ms));
  now += 10ms;
  wait.ns += ns_of(5ms);  // the wait during the pause is not held against the next check
  const int reads = wait.reads;
  REQUIRE(governor.may_spin(now));
  CHECK(wait.reads == reads + 1);  // a new baseline

  // Contended again, and again: 20, 40 ... up to 1 s.
  std::chrono::milliseconds expected = 10ms;
  for (int i = 0; i < 10; ++i) {
    now += 2ms;
    wait.ns += ns_of(1ms);
    governor.spun(now);
    expected = std::min<std::chrono::milliseconds>(expected * 2, 1000ms);
    CHECK(governor.pause() == expected);
    CHECK_FALSE(governor.may_spin(now));
    now += governor.pause();
    REQUIRE(governor.may_spin(now));
  }
  CHECK(governor.pause() == 1000ms);

  // A clean check ends the doubling: the next contention pauses 10 ms again.
  now += 2ms;
  wait.ns += ns_of(100us);
  governor.spun(now);
  CHECK(governor.pause() == 0ms);
  CHECK(governor.may_spin(now));
  now += 2ms;
  wait.ns += ns_of(1500us);
  governor.spun(now);
  CHECK(governor.pause() == 10ms);
}

TEST_CASE("a spin that ends before the next check reads nothing, and a wait that cannot be read never pauses") {
  FakeWait wait;
  SpinGovernor governor(wait.clock());
  auto now = SpinGovernor::Clock::time_point{} + 1s;
  REQUIRE(governor.may_spin(now));
  wait.ns += ns_of(1s);  // hugely contended, but the check is not due
  governor.spun(now + 1ms);
  CHECK(wait.reads == 1);
  CHECK(governor.may_spin(now + 1ms));

  SpinGovernor unreadable([] { return std::int64_t{-1}; });
  now += 1s;
  REQUIRE(unreadable.may_spin(now));
  for (int i = 0; i < 10; ++i) {
    now += 5ms;
    unreadable.spun(now);
    CHECK(unreadable.may_spin(now));
  }
  CHECK(unreadable.pause() == 0ms);
}

namespace {

// The second of /proc/thread-self/schedstat's numbers, read the plain way.
std::int64_t schedstat_wait() {
  std::ifstream in("/proc/thread-self/schedstat");
  std::int64_t running = -1;
  std::int64_t waiting = -1;
  in >> running >> waiting;
  return waiting;
}

}  // namespace

TEST_CASE("the default wait clock reads the constructing thread's run delay") {
  SpinGovernor governor;
  // Give the scheduler reasons to make this thread wait between the reads:
  // sleeps (a wake-up waits for a core) and a busy stretch.
  const auto disturb = [] {
    for (int i = 0; i < 10; ++i) std::this_thread::sleep_for(1ms);
    const auto until = std::chrono::steady_clock::now() + 10ms;
    while (std::chrono::steady_clock::now() < until) {
    }
  };
  const std::int64_t before = schedstat_wait();
  REQUIRE(before >= 0);
  disturb();
  const std::int64_t read = governor.run_delay();
  disturb();
  const std::int64_t after = schedstat_wait();
  CHECK(before <= read);
  CHECK(read <= after);
  SpinGovernor given([] { return std::int64_t{7}; });
  CHECK(given.run_delay() == -1);  // its clock is the one given
}
