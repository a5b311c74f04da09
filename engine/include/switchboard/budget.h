// Budgets that cannot be overrun: reserve the worst case before a call,
// settle to the actual cost after, release on failure.
//
// A cap applies per workload (and optionally per key or tag) to a calendar
// period in UTC: a day or a month. reserve() is atomic with respect to every
// other reserve/settle/release on the same budget: the sum of settled and
// outstanding reservations never exceeds the cap.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "switchboard/money.h"
#include "switchboard/status.h"

namespace switchboard {

enum class BudgetPeriod { kDay, kMonth };

struct BudgetLimit {
  std::string scope;     // "workload:code_fix", "key:team-a", "tag:batch" ...
  MicroUsd cap = 0;
  BudgetPeriod period = BudgetPeriod::kMonth;
};

class BudgetBook;

// A held reservation. Destroying it without settle() releases it.
class Reservation {
 public:
  Reservation() = default;
  Reservation(Reservation&&) noexcept;
  Reservation& operator=(Reservation&&) noexcept;
  ~Reservation();
  // Replaces the reserved amount with the actual cost (which may be higher
  // than reserved: what was spent was spent; the cap then refuses sooner).
  void settle(MicroUsd actual);
  // Gives the reservation back (the call failed before costing anything).
  void release();
  MicroUsd amount() const { return amount_; }
  explicit operator bool() const { return book_ != nullptr; }

 private:
  friend class BudgetBook;
  BudgetBook* book_ = nullptr;
  std::string scope_;
  std::int64_t period_key_ = 0;
  MicroUsd amount_ = 0;
};

class BudgetBook {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;
  // `now` defaults to the system clock; tests pass a fake.
  explicit BudgetBook(Clock now = {});
  ~BudgetBook();
  BudgetBook(const BudgetBook&) = delete;
  BudgetBook& operator=(const BudgetBook&) = delete;

  void set_limit(BudgetLimit limit);
  // Adds already-settled spend (e.g. from the ledger at start-up) to the period containing `at`.
  void add_spent(std::string_view scope, std::chrono::system_clock::time_point at, MicroUsd amount);

  // Reserves `worst_case` in `scope`'s current period, or fails with a
  // message naming the scope, the cap, the spend and the request. A scope
  // without a limit always succeeds (and is still tracked).
  Result<Reservation> reserve(std::string_view scope, MicroUsd worst_case);

  struct Snapshot {
    MicroUsd cap = 0;         // 0 when the scope has no limit
    MicroUsd spent = 0;       // settled in the current period
    MicroUsd reserved = 0;    // outstanding reservations
    std::optional<MicroUsd> left() const;  // cap - spent - reserved, none without a cap
  };
  Snapshot snapshot(std::string_view scope) const;

 private:
  friend class Reservation;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace switchboard
