// BudgetBook: reservations against per-scope caps over UTC days and months,
// settle / release / destructor semantics, rollover with a fake clock, and in
// the "concurrency" suite many threads against a small cap.
//
// Threads in the concurrency cases record what they saw in their own structs;
// assertions run on the test's thread after the joins.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "switchboard/budget.h"

using namespace switchboard;
using namespace std::chrono_literals;
namespace chr = std::chrono;
using TimePoint = chr::system_clock::time_point;

namespace {

constexpr MicroUsd kDollar = kMicroPerUsd;

TimePoint utc(chr::year_month_day date, chr::seconds time_of_day = 0s) {
  return chr::sys_days{date} + time_of_day;
}

// A clock the test moves by hand. Read from many threads in the concurrency
// cases, hence atomic.
class FakeClock {
 public:
  explicit FakeClock(TimePoint t) : ticks_(t.time_since_epoch().count()) {}
  void set(TimePoint t) { ticks_.store(t.time_since_epoch().count()); }
  TimePoint now() const { return TimePoint(TimePoint::duration(ticks_.load())); }
  BudgetBook::Clock fn() const {
    return [this] { return now(); };
  }

 private:
  std::atomic<TimePoint::rep> ticks_;
};

Reservation reserve_ok(BudgetBook& book, std::string_view scope, MicroUsd amount) {
  auto r = book.reserve(scope, amount);
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  return std::move(*r);
}

void check_snapshot(const BudgetBook& book, std::string_view scope, MicroUsd spent, MicroUsd reserved) {
  const auto snap = book.snapshot(scope);
  CHECK(snap.spent == spent);
  CHECK(snap.reserved == reserved);
}

}  // namespace

TEST_CASE("a reservation within the cap holds its amount until settled") {
  FakeClock clock(utc(2024y / chr::May / 10, 12h));
  BudgetBook book(clock.fn());
  book.set_limit({"workload:w", 10 * kDollar, BudgetPeriod::kMonth});

  Reservation r = reserve_ok(book, "workload:w", 3 * kDollar);
  CHECK(static_cast<bool>(r));
  CHECK(r.amount() == 3 * kDollar);
  const auto snap = book.snapshot("workload:w");
  CHECK(snap.limited);
  CHECK(snap.cap == 10 * kDollar);
  CHECK(snap.spent == 0);
  CHECK(snap.reserved == 3 * kDollar);
  CHECK(snap.left() == 7 * kDollar);

  r.settle(3 * kDollar);
  CHECK_FALSE(static_cast<bool>(r));
  check_snapshot(book, "workload:w", 3 * kDollar, 0);
  CHECK(book.snapshot("workload:w").left() == 7 * kDollar);
}

TEST_CASE("reaching the cap exactly is allowed and one micro-dollar over is refused") {
  FakeClock clock(utc(2024y / chr::May / 10, 12h));
  BudgetBook book(clock.fn());
  book.set_limit({"workload:w", 10 * kDollar, BudgetPeriod::kMonth});
  reserve_ok(book, "workload:w", 6 * kDollar).settle(6 * kDollar);
  Reservation held = reserve_ok(book, "workload:w", 1 * kDollar);

  // spent 6 + reserved 1 + request 3 = 10 = cap: allowed. Released at once.
  CHECK(book.reserve("workload:w", 3 * kDollar).ok());

  auto over = book.reserve("workload:w", 3 * kDollar + 1);
  REQUIRE_FALSE(over.ok());
  CHECK(over.status().code() == Status::Code::kOverBudget);
  CHECK(over.status().message() ==
        "budget workload:w: request $3.000001 is over the cap $10.000000 for month 2024-05 "
        "($6.000000 spent, $1.000000 reserved, $3.000000 left)");
  // The refusal left nothing behind.
  check_snapshot(book, "workload:w", 6 * kDollar, 1 * kDollar);

  Reservation exact = reserve_ok(book, "workload:w", 3 * kDollar);
  CHECK(book.snapshot("workload:w").left() == 0);
  CHECK_FALSE(book.reserve("workload:w", 1).ok());
  CHECK(book.reserve("workload:w", 0).ok());  // a free call still fits
}

TEST_CASE("a day cap names the day in its refusal") {
  FakeClock clock(utc(2024y / chr::February / 29, 8h));
  BudgetBook book(clock.fn());
  book.set_limit({"key:team-a", 1 * kDollar, BudgetPeriod::kDay});
  auto r = book.reserve("key:team-a", 2 * kDollar);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() ==
        "budget key:team-a: request $2.000000 is over the cap $1.000000 for day 2024-02-29 "
        "($0.000000 spent, $0.000000 reserved, $1.000000 left)");
}

TEST_CASE("settling below the reservation frees the difference") {
  FakeClock clock(utc(2024y / chr::May / 10));
  BudgetBook book(clock.fn());
  book.set_limit({"workload:w", 1 * kDollar, BudgetPeriod::kMonth});
  Reservation r = reserve_ok(book, "workload:w", 900'000);
  CHECK_FALSE(book.reserve("workload:w", 200'000).ok());
  r.settle(250'000);
  CHECK(r.amount() == 900'000);  // what was reserved, for the record
  check_snapshot(book, "workload:w", 250'000, 0);
  CHECK(book.reserve("workload:w", 750'000).ok());
  CHECK_FALSE(book.reserve("workload:w", 750'001).ok());
}

TEST_CASE("settling above the reservation counts the actual cost and refuses sooner") {
  FakeClock clock(utc(2024y / chr::May / 10));
  BudgetBook book(clock.fn());
  book.set_limit({"workload:w", 1 * kDollar, BudgetPeriod::kMonth});
  Reservation a = reserve_ok(book, "workload:w", 500'000);
  Reservation b = reserve_ok(book, "workload:w", 500'000);
  a.settle(700'000);  // the provider reported more than the estimate
  check_snapshot(book, "workload:w", 700'000, 500'000);
  CHECK(book.snapshot("workload:w").left() == -200'000);
  CHECK_FALSE(book.reserve("workload:w", 1).ok());
  b.release();
  check_snapshot(book, "workload:w", 700'000, 0);
  CHECK(book.reserve("workload:w", 300'000).ok());
  CHECK_FALSE(book.reserve("workload:w", 300'001).ok());
}

TEST_CASE("release gives the reservation back and later calls on it do nothing") {
  FakeClock clock(utc(2024y / chr::May / 10));
  BudgetBook book(clock.fn());
  book.set_limit({"workload:w", 1 * kDollar, BudgetPeriod::kMonth});
  Reservation r = reserve_ok(book, "workload:w", 400'000);
  r.release();
  CHECK_FALSE(static_cast<bool>(r));
  check_snapshot(book, "workload:w", 0, 0);
  r.settle(400'000);  // already released: no effect
  r.release();
  check_snapshot(book, "workload:w", 0, 0);

  Reservation s = reserve_ok(book, "workload:w", 400'000);
  s.settle(100'000);
  s.settle(300'000);  // the second settle does nothing
  s.release();
  check_snapshot(book, "workload:w", 100'000, 0);
}

TEST_CASE("destroying a reservation without settling releases it") {
  FakeClock clock(utc(2024y / chr::May / 10));
  BudgetBook book(clock.fn());
  book.set_limit({"workload:w", 1 * kDollar, BudgetPeriod::kMonth});
  {
    Reservation r = reserve_ok(book, "workload:w", 600'000);
    check_snapshot(book, "workload:w", 0, 600'000);
  }
  check_snapshot(book, "workload:w", 0, 0);
  {
    Reservation r = reserve_ok(book, "workload:w", 600'000);
    r.settle(200'000);
  }  // settled, so the destructor has nothing to give back
  check_snapshot(book, "workload:w", 200'000, 0);
  // A Result that is dropped unread releases too.
  CHECK(book.reserve("workload:w", 800'000).ok());
  check_snapshot(book, "workload:w", 200'000, 0);
}

TEST_CASE("moving a reservation moves the hold and the moved-from one does nothing") {
  FakeClock clock(utc(2024y / chr::May / 10));
  BudgetBook book(clock.fn());
  book.set_limit({"workload:w", 1 * kDollar, BudgetPeriod::kMonth});

  Reservation a = reserve_ok(book, "workload:w", 300'000);
  Reservation b(std::move(a));
  CHECK_FALSE(static_cast<bool>(a));  // NOLINT(bugprone-use-after-move): the contract under test
  CHECK(static_cast<bool>(b));
  CHECK(b.amount() == 300'000);
  a.settle(300'000);
  a.release();
  check_snapshot(book, "workload:w", 0, 300'000);

  // Assigning over a held reservation releases what it held.
  Reservation c = reserve_ok(book, "workload:w", 200'000);
  check_snapshot(book, "workload:w", 0, 500'000);
  c = std::move(b);
  check_snapshot(book, "workload:w", 0, 300'000);
  CHECK(c.amount() == 300'000);
  CHECK_FALSE(static_cast<bool>(b));  // NOLINT(bugprone-use-after-move)

  // Into an empty one, and a vector that reallocates keeps every hold.
  Reservation d;
  CHECK_FALSE(static_cast<bool>(d));
  d.settle(1);  // holds nothing: no effect
  d = std::move(c);
  std::vector<Reservation> held;
  for (int i = 0; i < 5; ++i) held.push_back(reserve_ok(book, "workload:w", 10'000));
  check_snapshot(book, "workload:w", 0, 350'000);
  d.settle(250'000);
  for (Reservation& r : held) r.settle(10'000);
  check_snapshot(book, "workload:w", 300'000, 0);
  held.clear();
  check_snapshot(book, "workload:w", 300'000, 0);
}

TEST_CASE("a reservation made before midnight UTC settles in the old day") {
  FakeClock clock(utc(2024y / chr::May / 10, 23h + 59min + 59s));
  BudgetBook book(clock.fn());
  book.set_limit({"workload:w", 1 * kDollar, BudgetPeriod::kDay});
  reserve_ok(book, "workload:w", 500'000).settle(500'000);
  Reservation late = reserve_ok(book, "workload:w", 400'000);

  clock.set(utc(2024y / chr::May / 11));  // midnight: a new day with a fresh cap
  check_snapshot(book, "workload:w", 0, 0);
  Reservation fresh = reserve_ok(book, "workload:w", 1 * kDollar);  // the whole new day's cap
  late.settle(450'000);  // lands in May 10, not in May 11
  check_snapshot(book, "workload:w", 0, 1 * kDollar);
  fresh.settle(1 * kDollar);
  CHECK_FALSE(book.reserve("workload:w", 1).ok());

  clock.set(utc(2024y / chr::May / 10, 12h));  // looking back at May 10
  check_snapshot(book, "workload:w", 950'000, 0);
}

TEST_CASE("a month cap covers every day of the UTC month and rolls over at its end") {
  FakeClock clock(utc(2024y / chr::January / 1));
  BudgetBook book(clock.fn());
  book.set_limit({"workload:w", 10 * kDollar, BudgetPeriod::kMonth});
  for (int day = 1; day <= 31; day += 5) {
    clock.set(utc(2024y / chr::January / day, 13h));
    reserve_ok(book, "workload:w", 1 * kDollar).settle(1 * kDollar);  // days 1, 6, ..., 31: seven dollars
  }
  check_snapshot(book, "workload:w", 7 * kDollar, 0);

  clock.set(utc(2024y / chr::January / 31, 23h + 59min));
  Reservation late = reserve_ok(book, "workload:w", 3 * kDollar);
  CHECK_FALSE(book.reserve("workload:w", 1).ok());

  clock.set(utc(2024y / chr::February / 1));
  check_snapshot(book, "workload:w", 0, 0);
  CHECK(book.snapshot("workload:w").left() == 10 * kDollar);
  late.settle(2 * kDollar);  // into January
  check_snapshot(book, "workload:w", 0, 0);
  reserve_ok(book, "workload:w", 10 * kDollar).settle(10 * kDollar);

  clock.set(utc(2024y / chr::January / 15));
  check_snapshot(book, "workload:w", 9 * kDollar, 0);
  clock.set(utc(2024y / chr::February / 29, 23h));  // 2024 is a leap year
  check_snapshot(book, "workload:w", 10 * kDollar, 0);
  clock.set(utc(2024y / chr::March / 1));
  check_snapshot(book, "workload:w", 0, 0);
}

TEST_CASE("the year rolls over with the month") {
  FakeClock clock(utc(2023y / chr::December / 31, 23h));
  BudgetBook book(clock.fn());
  book.set_limit({"workload:w", 1 * kDollar, BudgetPeriod::kMonth});
  reserve_ok(book, "workload:w", 1 * kDollar).settle(1 * kDollar);
  CHECK_FALSE(book.reserve("workload:w", 1).ok());
  clock.set(utc(2024y / chr::January / 1));
  CHECK(book.reserve("workload:w", 1 * kDollar).ok());
}

TEST_CASE("a scope without a limit always reserves and is still tracked") {
  FakeClock clock(utc(2024y / chr::May / 10));
  BudgetBook book(clock.fn());
  const auto empty = book.snapshot("tag:batch");  // never seen
  CHECK_FALSE(empty.limited);
  CHECK(empty.cap == 0);
  CHECK(empty.spent == 0);
  CHECK_FALSE(empty.left().has_value());

  Reservation big = reserve_ok(book, "tag:batch", 1'000'000 * kDollar);
  reserve_ok(book, "tag:batch", 2 * kDollar).settle(3 * kDollar);
  const auto snap = book.snapshot("tag:batch");
  CHECK_FALSE(snap.limited);
  CHECK(snap.cap == 0);
  CHECK(snap.spent == 3 * kDollar);
  CHECK(snap.reserved == 1'000'000 * kDollar);
  CHECK_FALSE(snap.left().has_value());

  // Tracked by month: the spend is still there later in the month.
  clock.set(utc(2024y / chr::May / 31));
  CHECK(book.snapshot("tag:batch").spent == 3 * kDollar);
  clock.set(utc(2024y / chr::June / 1));
  CHECK(book.snapshot("tag:batch").spent == 0);
}

TEST_CASE("a cap of zero is a limit that refuses every paid call") {
  FakeClock clock(utc(2024y / chr::May / 10));
  BudgetBook book(clock.fn());
  book.set_limit({"workload:paused", 0, BudgetPeriod::kDay});
  CHECK_FALSE(book.reserve("workload:paused", 1).ok());
  CHECK(book.reserve("workload:paused", 0).ok());
  const auto snap = book.snapshot("workload:paused");
  CHECK(snap.limited);
  CHECK(snap.left() == 0);
}

TEST_CASE("a negative request is refused as invalid") {
  BudgetBook book;  // the system clock
  auto r = book.reserve("workload:w", -1);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "budget workload:w: negative request -$0.000001");
  check_snapshot(book, "workload:w", 0, 0);
}

TEST_CASE("scopes are independent") {
  FakeClock clock(utc(2024y / chr::May / 10));
  BudgetBook book(clock.fn());
  book.set_limit({"workload:a", 1 * kDollar, BudgetPeriod::kMonth});
  book.set_limit({"workload:b", 2 * kDollar, BudgetPeriod::kDay});
  reserve_ok(book, "workload:a", 1 * kDollar).settle(1 * kDollar);
  CHECK_FALSE(book.reserve("workload:a", 1).ok());
  Reservation b = reserve_ok(book, "workload:b", 2 * kDollar);
  check_snapshot(book, "workload:a", 1 * kDollar, 0);
  check_snapshot(book, "workload:b", 0, 2 * kDollar);
  CHECK(book.snapshot("workload:b").cap == 2 * kDollar);
}

TEST_CASE("add_spent loads history into the period containing its time") {
  FakeClock clock(utc(2024y / chr::May / 20, 9h));
  BudgetBook book(clock.fn());
  book.set_limit({"workload:w", 10 * kDollar, BudgetPeriod::kMonth});
  book.add_spent("workload:w", utc(2024y / chr::May / 1, 0h), 4 * kDollar);
  book.add_spent("workload:w", utc(2024y / chr::May / 19, 18h), 3 * kDollar);
  book.add_spent("workload:w", utc(2024y / chr::April / 30, 23h + 59min), 50 * kDollar);  // last month
  check_snapshot(book, "workload:w", 7 * kDollar, 0);
  CHECK(book.reserve("workload:w", 3 * kDollar).ok());
  CHECK_FALSE(book.reserve("workload:w", 3 * kDollar + 1).ok());

  // History may arrive before the limit, and a limit may change period: spend is kept per day.
  BudgetBook later(clock.fn());
  later.add_spent("key:k", utc(2024y / chr::May / 20, 1h), 2 * kDollar);
  later.add_spent("key:k", utc(2024y / chr::May / 19, 1h), 5 * kDollar);
  check_snapshot(later, "key:k", 7 * kDollar, 0);  // untracked scopes count by month
  later.set_limit({"key:k", 3 * kDollar, BudgetPeriod::kDay});
  check_snapshot(later, "key:k", 2 * kDollar, 0);  // today only
  CHECK(later.reserve("key:k", 1 * kDollar).ok());
  CHECK_FALSE(later.reserve("key:k", 1 * kDollar + 1).ok());
  later.set_limit({"key:k", 8 * kDollar, BudgetPeriod::kMonth});
  CHECK(later.reserve("key:k", 1 * kDollar).ok());
  CHECK_FALSE(later.reserve("key:k", 1 * kDollar + 1).ok());
}

TEST_CASE("old days are dropped but a reservation outlives the drop") {
  FakeClock clock(utc(2024y / chr::January / 31, 23h));
  BudgetBook book(clock.fn());
  book.set_limit({"workload:w", 5 * kDollar, BudgetPeriod::kMonth});
  book.add_spent("workload:w", utc(2024y / chr::January / 2), 1 * kDollar);
  Reservation january = reserve_ok(book, "workload:w", 2 * kDollar);

  clock.set(utc(2024y / chr::April / 2));  // January is now older than the previous month
  reserve_ok(book, "workload:w", 1 * kDollar).settle(1 * kDollar);
  january.settle(2 * kDollar);
  check_snapshot(book, "workload:w", 1 * kDollar, 0);
  clock.set(utc(2024y / chr::January / 31));
  // January 2 was dropped; the January reservation's day was kept until it settled.
  check_snapshot(book, "workload:w", 2 * kDollar, 0);
}

TEST_SUITE("concurrency") {
  // Deterministic per-thread choices, so a failure reproduces the same mix.
  struct Lcg {
    std::uint64_t state;
    std::uint32_t next() {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      return static_cast<std::uint32_t>(state >> 33);
    }
  };

  // What one worker saw; checked on the test's thread after the joins.
  struct WorkerReport {
    int attempts = 0;
    int reserved = 0;
    int settled = 0;
    int released = 0;
    int refused = 0;
    MicroUsd settled_sum = 0;
    int over_cap = 0;    // snapshots where spent + reserved > cap
    int spent_over = 0;  // snapshots where spent > cap
  };

  // Runs `threads` workers: reserve(worst) -> simulated call -> settle(cost(rng)) or
  // release, `attempts` times each, then on until the cap is full (spent > cap - worst).
  // `cost` returns the actual cost of a call, or -1 for a failed call.
  template <typename Cost>
  std::vector<WorkerReport> run_workers(BudgetBook& book, const std::string& scope, MicroUsd cap,
                                        MicroUsd worst, int threads, int attempts, Cost cost) {
    std::vector<WorkerReport> reports(threads);
    std::latch start(threads);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        WorkerReport& rep = reports[t];
        Lcg rng{static_cast<std::uint64_t>(t) * 7919 + 17};
        const auto check = [&] {
          const auto snap = book.snapshot(scope);
          if (snap.spent + snap.reserved > cap) ++rep.over_cap;
          if (snap.spent > cap) ++rep.spent_over;
          return snap;
        };
        start.arrive_and_wait();
        // The hard bound only guards against a hang if the book were wrong.
        for (int i = 0; i < attempts * 50; ++i) {
          ++rep.attempts;
          auto r = book.reserve(scope, worst);
          if (!r.ok()) {
            ++rep.refused;
            const auto snap = check();
            if (snap.spent > cap - worst) {
              if (i >= attempts) break;  // full for good: spent never goes down
            }
            continue;
          }
          ++rep.reserved;
          check();
          std::this_thread::yield();  // the simulated provider call
          const MicroUsd actual = cost(rng);
          if (actual < 0) {
            r->release();
            ++rep.released;
          } else {
            r->settle(actual);
            ++rep.settled;
            rep.settled_sum += actual;
          }
          check();
        }
      });
    }
    for (auto& th : pool) th.join();
    return reports;
  }

  WorkerReport total_of(const std::vector<WorkerReport>& reports) {
    WorkerReport sum;
    for (const auto& r : reports) {
      sum.attempts += r.attempts;
      sum.reserved += r.reserved;
      sum.settled += r.settled;
      sum.released += r.released;
      sum.refused += r.refused;
      sum.settled_sum += r.settled_sum;
      sum.over_cap += r.over_cap;
      sum.spent_over += r.spent_over;
    }
    return sum;
  }

  TEST_CASE("many threads against a small cap never settle more than the cap") {
    constexpr MicroUsd kWorst = 1'000;
    constexpr int kAllowed = 300;  // the cap allows 300 calls at their worst case
    constexpr MicroUsd kCap = kAllowed * kWorst;
    constexpr int kThreads = 8;
    constexpr int kAttempts = 1'000;  // 8,000 attempts for 300 paid calls
    FakeClock clock(utc(2024y / chr::May / 10, 12h));
    BudgetBook book(clock.fn());
    book.set_limit({"workload:w", kCap, BudgetPeriod::kMonth});

    // A quarter of the calls fail and release; the rest cost their worst case.
    const auto reports = run_workers(book, "workload:w", kCap, kWorst, kThreads, kAttempts,
                                     [](Lcg& rng) { return rng.next() % 4 == 0 ? MicroUsd{-1} : kWorst; });
    const WorkerReport total = total_of(reports);

    CHECK(total.over_cap == 0);
    CHECK(total.spent_over == 0);
    CHECK(total.reserved == total.settled + total.released);
    CHECK(total.attempts == total.reserved + total.refused);
    CHECK(total.settled == kAllowed);  // exactly what the cap allows, no more, no fewer
    CHECK(total.released > 0);
    CHECK(total.refused > 0);
    const auto snap = book.snapshot("workload:w");
    CHECK(snap.spent == total.settled_sum);
    CHECK(snap.spent == kCap);
    CHECK(snap.reserved == 0);
    CHECK(snap.left() == 0);
  }

  TEST_CASE("many threads settling below their reservations still stay under the cap") {
    constexpr MicroUsd kWorst = 1'000;
    constexpr MicroUsd kCap = 250'000;
    constexpr int kThreads = 8;
    constexpr int kAttempts = 1'000;
    FakeClock clock(utc(2024y / chr::May / 10, 12h));
    BudgetBook book(clock.fn());
    book.set_limit({"workload:w", kCap, BudgetPeriod::kDay});

    // One in five calls fails; the rest cost between 1 and the worst case.
    const auto reports = run_workers(book, "workload:w", kCap, kWorst, kThreads, kAttempts, [](Lcg& rng) {
      const std::uint32_t x = rng.next();
      return x % 5 == 0 ? MicroUsd{-1} : MicroUsd{1 + static_cast<MicroUsd>(x % kWorst)};
    });
    const WorkerReport total = total_of(reports);

    CHECK(total.over_cap == 0);
    CHECK(total.spent_over == 0);
    CHECK(total.reserved == total.settled + total.released);
    const auto snap = book.snapshot("workload:w");
    CHECK(snap.spent == total.settled_sum);  // nothing lost or counted twice
    CHECK(snap.spent <= kCap);
    CHECK(snap.spent > kCap - kWorst);       // the workers ran until it was full
    CHECK(snap.reserved == 0);
  }

  TEST_CASE("threads crossing midnight settle each call in the day it was reserved") {
    constexpr MicroUsd kWorst = 1'000;
    constexpr MicroUsd kCap = 100'000;  // per day
    constexpr int kThreads = 4;
    FakeClock clock(utc(2024y / chr::May / 10, 23h + 59min));
    BudgetBook book(clock.fn());
    book.set_limit({"workload:w", kCap, BudgetPeriod::kDay});

    std::atomic<int> calls{0};
    std::vector<std::pair<MicroUsd, MicroUsd>> by_day(kThreads);  // {May 10, May 11} per thread
    std::latch start(kThreads + 1);
    std::vector<std::thread> pool;
    for (int t = 0; t < kThreads; ++t) {
      pool.emplace_back([&, t] {
        start.arrive_and_wait();
        for (int i = 0; i < 400; ++i) {
          const bool before = clock.now() < utc(2024y / chr::May / 11);
          auto r = book.reserve("workload:w", kWorst);
          // The clock may move between reading it and reserving; count only
          // calls whose day is certain.
          const bool after = clock.now() < utc(2024y / chr::May / 11);
          if (!r.ok()) continue;
          calls.fetch_add(1);
          std::this_thread::yield();
          r->settle(kWorst / 2);
          if (before == after) (before ? by_day[t].first : by_day[t].second) += kWorst / 2;
        }
      });
    }
    start.arrive_and_wait();
    while (calls.load() < 50) std::this_thread::yield();
    clock.set(utc(2024y / chr::May / 11));
    for (auto& th : pool) th.join();

    MicroUsd may10 = 0;
    MicroUsd may11 = 0;
    for (const auto& [a, b] : by_day) {
      may10 += a;
      may11 += b;
    }
    const auto snap11 = book.snapshot("workload:w");
    CHECK(snap11.reserved == 0);
    CHECK(snap11.spent <= kCap);
    CHECK(snap11.spent >= may11);
    clock.set(utc(2024y / chr::May / 10, 12h));
    const auto snap10 = book.snapshot("workload:w");
    CHECK(snap10.reserved == 0);
    CHECK(snap10.spent <= kCap);
    CHECK(snap10.spent >= may10);
    CHECK(snap10.spent + snap11.spent == static_cast<MicroUsd>(calls.load()) * (kWorst / 2));
  }
}
