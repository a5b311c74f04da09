// BudgetBook: per-scope caps over UTC days and months, with reservations.
//
// One mutex per book guards everything: a reserve is a read of the period's
// totals and an insert, both short, and correctness (check and record as one
// step) matters more here than contention between scopes.
//
// Spend and reservations are kept per scope per UTC day (days since
// 1970-01-01). A day period reads one day; a month period sums the month's
// days. That makes the period a property of the limit, not of the stored
// numbers: a limit that changes from month to day, or a limit set after
// add_spent() loaded history, still sees the right figures.
#include "switchboard/budget.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <map>
#include <mutex>
#include <utility>

namespace switchboard {
namespace {

namespace chr = std::chrono;
using DayKey = std::int64_t;  // days since 1970-01-01, UTC

DayKey day_of(chr::system_clock::time_point t) {
  return chr::floor<chr::days>(t).time_since_epoch().count();
}

chr::year_month_day date_of(DayKey day) { return chr::year_month_day{chr::sys_days{chr::days{day}}}; }

DayKey key_of(chr::sys_days d) { return d.time_since_epoch().count(); }

// The days [first, end) of the period of kind `period` that contains `day`.
struct DayRange {
  DayKey first;
  DayKey end;
};

DayRange period_containing(BudgetPeriod period, DayKey day) {
  if (period == BudgetPeriod::kDay) return {day, day + 1};
  const chr::year_month_day date = date_of(day);
  const chr::year_month month = date.year() / date.month();
  const chr::year_month next = month + chr::months{1};
  return {key_of(chr::sys_days{month / 1}), key_of(chr::sys_days{next / 1})};
}

// "2024-05-31" for a day period, "2024-05" for a month, for messages.
std::string period_name(BudgetPeriod period, DayKey day) {
  const chr::year_month_day date = date_of(day);
  char buf[32];
  if (period == BudgetPeriod::kDay) {
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(date.year()),
                  static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()));
  } else {
    std::snprintf(buf, sizeof buf, "%04d-%02u", static_cast<int>(date.year()),
                  static_cast<unsigned>(date.month()));
  }
  return buf;
}

struct DayTotals {
  MicroUsd spent = 0;
  MicroUsd reserved = 0;
};

struct ScopeAccount {
  bool limited = false;
  MicroUsd cap = 0;
  BudgetPeriod period = BudgetPeriod::kMonth;  // the tracking period without a limit
  std::map<DayKey, DayTotals> days;
  // Days before this have been dropped (except those still holding reservations).
  DayKey kept_from = std::numeric_limits<DayKey>::min();

  DayTotals totals(DayRange range) const {
    DayTotals sum;
    for (auto it = days.lower_bound(range.first); it != days.end() && it->first < range.end; ++it) {
      sum.spent += it->second.spent;
      sum.reserved += it->second.reserved;
    }
    return sum;
  }

  // Drops days before the previous month, so a long-running book stays small.
  // The previous month stays so a clock stepped back a little still sees its spend.
  void prune(DayKey today) {
    const DayKey month_first = period_containing(BudgetPeriod::kMonth, today).first;
    const DayKey keep_from = period_containing(BudgetPeriod::kMonth, month_first - 1).first;
    if (keep_from <= kept_from) return;
    for (auto it = days.begin(); it != days.end() && it->first < keep_from;) {
      it = it->second.reserved == 0 ? days.erase(it) : std::next(it);
    }
    kept_from = keep_from;
  }
};

}  // namespace

std::string workload_budget_scope(std::string_view workload) { return "workload:" + std::string(workload); }
std::string key_budget_scope(std::string_view key) { return "key:" + std::string(key); }
std::string tag_budget_scope(std::string_view name, std::string_view value) {
  return "tag:" + std::string(name) + "=" + std::string(value);
}

struct BudgetBook::Impl {
  Clock now;
  mutable std::mutex mu;
  std::map<std::string, ScopeAccount, std::less<>> scopes;  // guarded by mu

  // REQUIRES: mu held.
  ScopeAccount& account(std::string_view scope) {
    auto it = scopes.find(scope);
    if (it == scopes.end()) it = scopes.emplace(std::string(scope), ScopeAccount{}).first;
    return it->second;
  }

  // Ends a reservation of `reserved` made on `day` in each of `scopes`,
  // recording `actual` as spent. Allocates only when actual > 0 and a day's
  // entry is gone (a reservation of 0 whose day was pruned), so release()
  // from a destructor never throws for want of memory.
  // REQUIRES: mu held.
  void finish_locked(const std::vector<std::string>& scopes, DayKey day, MicroUsd reserved, MicroUsd actual) {
    for (const std::string& scope : scopes) {
      auto s = this->scopes.find(scope);
      if (s == this->scopes.end()) continue;  // not reachable: scopes are never removed
      auto& days = s->second.days;
      auto d = days.find(day);
      if (d == days.end()) {
        if (actual == 0) continue;
        d = days.emplace(day, DayTotals{}).first;
      }
      d->second.reserved -= reserved;
      d->second.spent += actual;
    }
  }

  void finish(const std::vector<std::string>& scopes, DayKey day, MicroUsd reserved, MicroUsd actual) {
    std::lock_guard lock(mu);
    finish_locked(scopes, day, reserved, actual);
  }

  // Lowers a held reservation from `from` to `to` in each scope.
  void reduce(const std::vector<std::string>& scopes, DayKey day, MicroUsd from, MicroUsd to) {
    std::lock_guard lock(mu);
    for (const std::string& scope : scopes) {
      auto s = this->scopes.find(scope);
      if (s == this->scopes.end()) continue;
      if (auto d = s->second.days.find(day); d != s->second.days.end()) d->second.reserved -= from - to;
    }
  }
};

// ---- Reservation ----

Reservation::Reservation(Reservation&& other) noexcept
    : book_(std::exchange(other.book_, nullptr)),
      scopes_(std::move(other.scopes_)),
      limited_(other.limited_),
      period_key_(other.period_key_),
      amount_(other.amount_) {}

Reservation& Reservation::operator=(Reservation&& other) noexcept {
  if (this != &other) {
    release();
    book_ = std::exchange(other.book_, nullptr);
    scopes_ = std::move(other.scopes_);
    limited_ = other.limited_;
    period_key_ = other.period_key_;
    amount_ = other.amount_;
  }
  return *this;
}

Reservation::~Reservation() { release(); }

void Reservation::settle(MicroUsd actual) {
  if (book_ == nullptr) return;
  std::exchange(book_, nullptr)->impl_->finish(scopes_, period_key_, amount_, std::max<MicroUsd>(actual, 0));
}

void Reservation::release() {
  if (book_ == nullptr) return;
  std::exchange(book_, nullptr)->impl_->finish(scopes_, period_key_, amount_, 0);
}

void Reservation::reduce_to(MicroUsd amount) {
  if (book_ == nullptr || amount >= amount_ || amount < 0) return;
  book_->impl_->reduce(scopes_, period_key_, amount_, amount);
  amount_ = amount;
}

// ---- BudgetBook ----

BudgetBook::BudgetBook(Clock now) : impl_(std::make_unique<Impl>()) {
  impl_->now = now ? std::move(now) : Clock([] { return chr::system_clock::now(); });
}

BudgetBook::~BudgetBook() = default;

void BudgetBook::set_limit(BudgetLimit limit) {
  std::lock_guard lock(impl_->mu);
  ScopeAccount& account = impl_->account(limit.scope);
  account.limited = true;
  account.cap = std::max<MicroUsd>(limit.cap, 0);
  account.period = limit.period;
}

void BudgetBook::add_spent(std::string_view scope, chr::system_clock::time_point at, MicroUsd amount) {
  if (amount == 0) return;
  std::lock_guard lock(impl_->mu);
  impl_->account(scope).days[day_of(at)].spent += amount;
}

Result<Reservation> BudgetBook::reserve(std::string_view scope, MicroUsd worst_case) {
  return reserve_within({std::string(scope)}, worst_case, worst_case);
}

Result<Reservation> BudgetBook::reserve_within(const std::vector<std::string>& scopes, MicroUsd at_least,
                                               MicroUsd at_most, Reservation* replacing) {
  const std::string first = scopes.empty() ? std::string() : scopes.front();
  if (at_least < 0) {
    return Status::invalid_argument("budget " + first + ": negative request " + format_usd(at_least));
  }
  if (at_least > at_most) {
    return Status::invalid_argument("budget " + first + ": request range " + format_usd(at_least) + ".." +
                                    format_usd(at_most) + " is empty");
  }
  Reservation reservation;
  for (const std::string& scope : scopes) {
    if (std::find(reservation.scopes_.begin(), reservation.scopes_.end(), scope) == reservation.scopes_.end()) {
      reservation.scopes_.push_back(scope);
    }
  }
  const DayKey today = day_of(impl_->now());
  const bool gives_back = replacing != nullptr && replacing->book_ == this;

  // Filled when refused; the message is built after the lock is dropped.
  std::string refused_scope;
  MicroUsd cap = 0;
  BudgetPeriod period = BudgetPeriod::kMonth;
  DayTotals totals;
  MicroUsd amount = at_most;
  {
    std::lock_guard lock(impl_->mu);
    // What `replacing` holds in a scope and period counts as left there.
    const auto given_back = [&](const std::string& scope, DayRange range) -> MicroUsd {
      if (!gives_back || replacing->period_key_ < range.first || replacing->period_key_ >= range.end) return 0;
      const auto& held = replacing->scopes_;
      return std::find(held.begin(), held.end(), scope) != held.end() ? replacing->amount_ : 0;
    };
    for (const std::string& scope : reservation.scopes_) {
      ScopeAccount& account = impl_->account(scope);
      account.prune(today);
      if (!account.limited) continue;
      reservation.limited_ = true;
      const DayRange range = period_containing(account.period, today);
      const DayTotals t = account.totals(range);
      // Written as subtractions so a huge request cannot overflow a sum.
      const MicroUsd left = account.cap - t.spent - (t.reserved - given_back(scope, range));
      if (at_least > left) {
        refused_scope = scope;
        cap = account.cap;
        period = account.period;
        totals = t;
        break;
      }
      amount = std::min(amount, left);
    }
    if (refused_scope.empty()) {
      if (gives_back) {
        impl_->finish_locked(replacing->scopes_, replacing->period_key_, replacing->amount_, 0);
        replacing->book_ = nullptr;
      }
      for (const std::string& scope : reservation.scopes_) impl_->account(scope).days[today].reserved += amount;
    }
  }
  if (!refused_scope.empty()) {
    return Status::over_budget(
        "budget " + refused_scope + ": request " + format_usd(at_least) + " is over the cap " + format_usd(cap) +
        " for " + (period == BudgetPeriod::kDay ? "day " : "month ") + period_name(period, today) + " (" +
        format_usd(totals.spent) + " spent, " + format_usd(totals.reserved) + " reserved, " +
        format_usd(cap - totals.spent - totals.reserved) + " left)");
  }
  reservation.book_ = this;
  reservation.period_key_ = today;
  reservation.amount_ = amount;
  return reservation;
}

std::optional<MicroUsd> BudgetBook::Snapshot::left() const {
  if (!limited) return std::nullopt;
  return cap - spent - reserved;
}

BudgetBook::Snapshot BudgetBook::snapshot(std::string_view scope) const {
  const DayKey today = day_of(impl_->now());
  std::lock_guard lock(impl_->mu);
  Snapshot snap;
  auto it = impl_->scopes.find(scope);
  if (it == impl_->scopes.end()) return snap;
  const ScopeAccount& account = it->second;
  const DayTotals totals = account.totals(period_containing(account.period, today));
  snap.limited = account.limited;
  snap.cap = account.limited ? account.cap : 0;
  snap.spent = totals.spent;
  snap.reserved = totals.reserved;
  return snap;
}

}  // namespace switchboard
