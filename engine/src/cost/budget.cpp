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
//
// A shared book (StateSettings::kRedis) keeps the same figures in Redis
// (state/budget_scripts.h), per scope and per period of its limit, and each
// reserve/settle/release/reduce is one script there. It still keeps the
// local figures: the spend its ledger loaded plus what it settled, which
// seed a period's key in Redis when it is missing, and which it admits
// against (caps divided by `replicas`) while Redis is down with kLocal.
#include "switchboard/budget.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <utility>

#include "state/budget_scripts.h"
#include "state/redis_client.h"

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

// A settlement Redis did not take (it was down): retried before the next reserve.
struct PendingSettle {
  std::vector<std::string> scopes;
  std::vector<std::string> keys;  // one per scope
  DayKey day = 0;
  std::string token;              // "" for spend admitted locally while Redis was down
  MicroUsd actual = 0;
};
constexpr std::size_t kMaxPendingSettles = 100000;
constexpr long long kKeepSeconds = 40LL * 24 * 3600;  // a month's key outlives its month

std::string over_budget_message(const std::string& scope, MicroUsd at_least, MicroUsd cap, BudgetPeriod period,
                                DayKey today, MicroUsd spent, MicroUsd reserved) {
  return "budget " + scope + ": request " + format_usd(at_least) + " is over the cap " + format_usd(cap) + " for " +
         (period == BudgetPeriod::kDay ? "day " : "month ") + period_name(period, today) + " (" +
         format_usd(spent) + " spent, " + format_usd(reserved) + " reserved, " +
         format_usd(cap - spent - reserved) + " left)";
}

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

  // Shared state: null for a kMemory book.
  StateSettings state;
  std::unique_ptr<detail::RedisClient> redis;
  std::string token_prefix;                 // random per book: reservation ids never collide across replicas
  std::atomic<std::uint64_t> next_token{0};
  std::deque<PendingSettle> pending;        // guarded by mu
  std::atomic<std::uint64_t> unavailable{0};
  std::atomic<std::uint64_t> local_admissions{0};
  std::atomic<std::uint64_t> refused_unavailable{0};
  std::atomic<bool> degraded{false};

  // Records a failed round trip; warns once per outage.
  void went_down(const Status& why) {
    unavailable.fetch_add(1, std::memory_order_relaxed);
    if (!degraded.exchange(true)) {
      spdlog::warn("budgets: shared state unreachable ({}); {}", why.message(),
                   state.on_unavailable == StateSettings::OnUnavailable::kLocal
                       ? "admitting against this process's figures, each cap divided by " +
                             std::to_string(state.replicas) + " replicas"
                       : std::string("refusing calls with a budget until it is back"));
    }
  }
  void came_back() {
    if (degraded.exchange(false)) spdlog::warn("budgets: shared state reachable again");
  }

  // The Redis key of `scope`'s period of kind `period` containing `day`.
  std::string shared_key(std::string_view scope, BudgetPeriod period, DayKey day) const {
    return state.key_prefix + "budget:" + std::string(scope) + ":" + period_name(period, day);
  }

  // What seeds `scope`'s key for the period of `a` containing `day`: this
  // process's spend there (the ledger's at start-up, and what it settled
  // since), less what it has not yet told Redis (pending: it is added when sent).
  // REQUIRES: mu held.
  MicroUsd seed_locked(const std::string& scope, const ScopeAccount& a, DayKey day) const {
    const DayRange range = period_containing(a.period, day);
    MicroUsd seed = a.totals(range).spent;
    for (const PendingSettle& p : pending) {
      if (p.day < range.first || p.day >= range.end) continue;
      if (std::find(p.scopes.begin(), p.scopes.end(), scope) != p.scopes.end()) seed -= p.actual;
    }
    return seed;
  }

  // The finish script's ARGV for ending `token` with `actual` in `scopes`' keys of `day`.
  std::vector<std::string> finish_args(const std::vector<std::string>& scopes, DayKey day, const std::string& token,
                                       MicroUsd actual) {
    std::vector<std::string> args{token, std::to_string(actual), std::to_string(kKeepSeconds)};
    std::lock_guard lock(mu);
    for (const std::string& scope : scopes) args.push_back(std::to_string(seed_locked(scope, account(scope), day)));
    return args;
  }

  // The keys of `scopes` in the periods containing `day`. REQUIRES: mu held.
  std::vector<std::string> keys_locked(const std::vector<std::string>& scopes, DayKey day) {
    std::vector<std::string> keys;
    for (const std::string& scope : scopes) keys.push_back(shared_key(scope, account(scope).period, day));
    return keys;
  }

  // Keeps a settlement for Redis until it is back. REQUIRES: mu held.
  void queue_locked(PendingSettle p) {
    if (pending.size() >= kMaxPendingSettles) {
      spdlog::error("budgets: {} settlements waiting for the shared state; dropping the oldest", pending.size());
      pending.pop_front();
    }
    pending.push_back(std::move(p));
  }

  // Retries the settlements Redis missed. Stops at the first failure.
  void flush_pending() {
    for (;;) {
      PendingSettle p;
      {
        std::lock_guard lock(mu);
        if (pending.empty()) return;
        p = pending.front();
      }
      auto r = redis->eval(detail::finish_script(), p.keys, finish_args(p.scopes, p.day, p.token, p.actual));
      if (!r.ok()) {
        if (r.status().code() == Status::Code::kUnavailable) went_down(r.status());
        return;
      }
      std::lock_guard lock(mu);
      if (!pending.empty()) pending.pop_front();
    }
  }

  Result<Reservation> reserve_local(BudgetBook* book, Reservation reservation, MicroUsd at_least, MicroUsd at_most,
                                    Reservation* replacing, DayKey today, MicroUsd divisor);
  Result<Reservation> reserve_shared(BudgetBook* book, Reservation reservation, MicroUsd at_least,
                                     MicroUsd at_most, Reservation* replacing, DayKey today);
  void finish_shared(const Reservation& r, MicroUsd actual);

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

  // Ends `r` where it is held.
  void finish(const Reservation& r, MicroUsd actual) {
    if (r.token_.empty()) {
      std::lock_guard lock(mu);
      finish_locked(r.scopes_, r.period_key_, r.amount_, actual);
      if (redis != nullptr && actual != 0) {
        // Admitted here while Redis was down: Redis learns the spend when it is back.
        try {
          PendingSettle p;
          p.scopes = r.scopes_;
          p.keys = keys_locked(r.scopes_, r.period_key_);
          p.day = r.period_key_;
          p.actual = actual;
          queue_locked(std::move(p));
        } catch (const std::exception& e) {  // from a destructor: never throw (out of memory only)
          spdlog::error("budgets: keeping a settlement for the shared state failed: {}", e.what());
        }
      }
    } else {
      finish_shared(r, actual);
    }
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
      amount_(other.amount_),
      token_(std::move(other.token_)),
      shared_keys_(std::move(other.shared_keys_)) {}

Reservation& Reservation::operator=(Reservation&& other) noexcept {
  if (this != &other) {
    release();
    book_ = std::exchange(other.book_, nullptr);
    scopes_ = std::move(other.scopes_);
    limited_ = other.limited_;
    period_key_ = other.period_key_;
    amount_ = other.amount_;
    token_ = std::move(other.token_);
    shared_keys_ = std::move(other.shared_keys_);
  }
  return *this;
}

Reservation::~Reservation() { release(); }

void Reservation::settle(MicroUsd actual) {
  if (book_ == nullptr) return;
  std::exchange(book_, nullptr)->impl_->finish(*this, std::max<MicroUsd>(actual, 0));
}

void Reservation::release() {
  if (book_ == nullptr) return;
  std::exchange(book_, nullptr)->impl_->finish(*this, 0);
}

void Reservation::reduce_to(MicroUsd amount) {
  if (book_ == nullptr || amount >= amount_ || amount < 0) return;
  if (token_.empty()) {
    book_->impl_->reduce(scopes_, period_key_, amount_, amount);
  } else {
    // Not reduced when Redis is down: the larger amount stays held until settled or expired,
    // which errs on the side of the cap.
    auto r = book_->impl_->redis->eval(detail::reduce_script(), shared_keys_, {token_, std::to_string(amount)});
    if (!r.ok()) {
      if (r.status().code() == Status::Code::kUnavailable) book_->impl_->went_down(r.status());
      return;
    }
  }
  amount_ = amount;
}

// ---- BudgetBook::Impl, the two places a reservation is made ----

// The in-process book: `divisor` divides every cap (1, or the replicas while Redis is down).
Result<Reservation> BudgetBook::Impl::reserve_local(BudgetBook* book, Reservation reservation, MicroUsd at_least,
                                                    MicroUsd at_most, Reservation* replacing, DayKey today,
                                                    MicroUsd divisor) {
  const bool gives_back = replacing != nullptr && replacing->book_ == book && replacing->token_.empty();

  // Filled when refused; the message is built after the lock is dropped.
  std::string refused_scope;
  MicroUsd cap = 0;
  BudgetPeriod period = BudgetPeriod::kMonth;
  DayTotals totals;
  MicroUsd amount = at_most;
  {
    std::lock_guard lock(mu);
    // What `replacing` holds in a scope and period counts as left there.
    const auto given_back = [&](const std::string& scope, DayRange range) -> MicroUsd {
      if (!gives_back || replacing->period_key_ < range.first || replacing->period_key_ >= range.end) return 0;
      const auto& held = replacing->scopes_;
      return std::find(held.begin(), held.end(), scope) != held.end() ? replacing->amount_ : 0;
    };
    for (const std::string& scope : reservation.scopes_) {
      ScopeAccount& a = account(scope);
      a.prune(today);
      if (!a.limited) continue;
      reservation.limited_ = true;
      const DayRange range = period_containing(a.period, today);
      const DayTotals t = a.totals(range);
      const MicroUsd share = a.cap / divisor;
      // Written as subtractions so a huge request cannot overflow a sum.
      const MicroUsd left = share - t.spent - (t.reserved - given_back(scope, range));
      if (at_least > left) {
        refused_scope = scope;
        cap = share;
        period = a.period;
        totals = t;
        break;
      }
      amount = std::min(amount, left);
    }
    if (refused_scope.empty()) {
      if (gives_back) {
        finish_locked(replacing->scopes_, replacing->period_key_, replacing->amount_, 0);
        replacing->book_ = nullptr;
      }
      for (const std::string& scope : reservation.scopes_) account(scope).days[today].reserved += amount;
    }
  }
  if (!refused_scope.empty()) {
    std::string message =
        over_budget_message(refused_scope, at_least, cap, period, today, totals.spent, totals.reserved);
    if (divisor > 1) message += " (this replica's share: the shared budget state is unreachable)";
    return Status::over_budget(std::move(message));
  }
  // A shared reservation being replaced by a local one (Redis went down in between) is given back there.
  if (replacing != nullptr && replacing->book_ == book && !replacing->token_.empty()) replacing->release();
  reservation.book_ = book;
  reservation.period_key_ = today;
  reservation.amount_ = amount;
  return reservation;
}

Result<Reservation> BudgetBook::Impl::reserve_shared(BudgetBook* book, Reservation reservation, MicroUsd at_least,
                                                     MicroUsd at_most, Reservation* replacing, DayKey today) {
  flush_pending();
  const bool gives_back = replacing != nullptr && replacing->book_ == book && !replacing->token_.empty();
  std::vector<std::string> keys;
  std::vector<std::string> args;
  std::vector<BudgetPeriod> periods;
  const std::string token = token_prefix + std::to_string(next_token.fetch_add(1, std::memory_order_relaxed));
  args.push_back(std::to_string(at_least));
  args.push_back(std::to_string(at_most));
  args.push_back(std::to_string(chr::duration_cast<chr::milliseconds>(state.reservation_ttl).count()));
  args.push_back(token);
  args.push_back(gives_back ? replacing->token_ : std::string());
  args.push_back(std::to_string(reservation.scopes_.size()));
  args.push_back(std::to_string(kKeepSeconds));
  {
    std::lock_guard lock(mu);
    for (const std::string& scope : reservation.scopes_) {
      ScopeAccount& a = account(scope);
      a.prune(today);
      if (a.limited) reservation.limited_ = true;
      keys.push_back(shared_key(scope, a.period, today));
      periods.push_back(a.period);
      args.push_back(a.limited ? std::to_string(a.cap) : std::string());
      args.push_back(std::to_string(seed_locked(scope, a, today)));
    }
  }
  reservation.shared_keys_ = keys;
  if (gives_back) {
    for (const std::string& k : replacing->shared_keys_) {
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
    }
  }
  auto r = redis->eval(detail::reserve_script(), keys, args);
  if (!r.ok()) {
    if (r.status().code() != Status::Code::kUnavailable) return r.status();
    went_down(r.status());
    if (state.on_unavailable == StateSettings::OnUnavailable::kLocal) {
      local_admissions.fetch_add(1, std::memory_order_relaxed);
      reservation.shared_keys_.clear();
      return reserve_local(book, std::move(reservation), at_least, at_most, replacing, today,
                           std::max(state.replicas, 1));
    }
    if (!reservation.limited_) {  // nothing to enforce: tracked here only
      reservation.shared_keys_.clear();
      return reserve_local(book, std::move(reservation), at_least, at_most, replacing, today, 1);
    }
    refused_unavailable.fetch_add(1, std::memory_order_relaxed);
    return Status::unavailable("budget " + reservation.scopes_.front() +
                               ": the shared budget state is unreachable, and [state] on_unavailable = "
                               "\"fail_closed\" refuses calls with a budget: " +
                               r.status().message())
        .with_reason(Status::Reason::kBudgetStateUnreachable);
  }
  came_back();
  const detail::RedisReply& reply = r.value();
  if (reply.type != detail::RedisReply::Type::kArray || reply.elements.size() < 2) {
    return Status::internal("budget: unexpected reply from the reserve script");
  }
  if (reply.elements[0].integer == 0) {
    const std::size_t i = static_cast<std::size_t>(reply.elements[1].integer - 1);
    if (i >= reservation.scopes_.size() || reply.elements.size() < 4) {
      return Status::internal("budget: unexpected refusal from the reserve script");
    }
    MicroUsd cap = 0;
    {
      std::lock_guard lock(mu);
      cap = account(reservation.scopes_[i]).cap;
    }
    return Status::over_budget(over_budget_message(reservation.scopes_[i], at_least, cap, periods[i], today,
                                                   reply.elements[2].integer, reply.elements[3].integer));
  }
  // A local reservation being replaced by a shared one (Redis came back in between) is given back here.
  if (replacing != nullptr && replacing->book_ == book && replacing->token_.empty()) replacing->release();
  if (gives_back) {
    replacing->book_ = nullptr;  // the script gave it back
  }
  reservation.book_ = book;
  reservation.period_key_ = today;
  reservation.amount_ = reply.elements[1].integer;
  reservation.token_ = token;
  return reservation;
}

void BudgetBook::Impl::finish_shared(const Reservation& r, MicroUsd actual) {
  try {
    auto done = redis->eval(detail::finish_script(), r.shared_keys_,
                            finish_args(r.scopes_, r.period_key_, r.token_, actual));
    const bool told = done.ok() || done.status().code() != Status::Code::kUnavailable;
    if (!told) went_down(done.status());
    // A release needs nothing more (unsent, the reservation expires).
    if (actual == 0) return;
    std::lock_guard lock(mu);
    // The local figures learn what was spent too: they seed a period's key
    // if Redis loses it, and they are what kLocal admits against.
    for (const std::string& scope : r.scopes_) account(scope).days[r.period_key_].spent += actual;
    if (told) return;
    PendingSettle p;
    p.scopes = r.scopes_;
    p.keys = r.shared_keys_;
    p.day = r.period_key_;
    p.token = r.token_;
    p.actual = actual;
    queue_locked(std::move(p));
  } catch (const std::exception& e) {  // from a destructor: never throw (out of memory only)
    spdlog::error("budgets: settling a shared reservation failed: {}", e.what());
  }
}

// ---- BudgetBook ----

BudgetBook::BudgetBook(Clock now) : impl_(std::make_unique<Impl>()) {
  impl_->now = now ? std::move(now) : Clock([] { return chr::system_clock::now(); });
}

BudgetBook::BudgetBook(Clock now, StateSettings state) : BudgetBook(std::move(now)) {
  if (state.backend != StateSettings::Backend::kRedis) return;
  auto address = detail::redis_address_of(state);
  if (!address.ok()) {
    // The config checks the URL; an embedder passing a bad one gets every limited call refused, and a log line.
    spdlog::error("budgets: {}", address.status().message());
    address = detail::RedisAddress{"", 0, 0};
  }
  impl_->redis = std::make_unique<detail::RedisClient>(std::move(address).value(), state.timeout);
  std::random_device rd;
  std::mt19937_64 gen((static_cast<std::uint64_t>(rd()) << 32) ^ rd());
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx.", static_cast<unsigned long long>(gen()));
  impl_->token_prefix = buf;
  impl_->state = std::move(state);
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
  const std::string_view first = scopes.empty() ? std::string_view() : std::string_view(scopes.front());
  if (at_least < 0) {
    return Status::invalid_argument("budget " + std::string(first) + ": negative request " + format_usd(at_least));
  }
  if (at_least > at_most) {
    return Status::invalid_argument("budget " + std::string(first) + ": request range " + format_usd(at_least) +
                                    ".." + format_usd(at_most) + " is empty");
  }
  Reservation reservation;
  for (const std::string& scope : scopes) {
    if (std::find(reservation.scopes_.begin(), reservation.scopes_.end(), scope) == reservation.scopes_.end()) {
      reservation.scopes_.push_back(scope);
    }
  }
  const DayKey today = day_of(impl_->now());
  if (impl_->redis == nullptr || reservation.scopes_.empty()) {
    return impl_->reserve_local(this, std::move(reservation), at_least, at_most, replacing, today, 1);
  }
  return impl_->reserve_shared(this, std::move(reservation), at_least, at_most, replacing, today);
}

std::optional<MicroUsd> BudgetBook::Snapshot::left() const {
  if (!limited) return std::nullopt;
  return cap - spent - reserved;
}

BudgetBook::Snapshot BudgetBook::snapshot(std::string_view scope) const {
  const DayKey today = day_of(impl_->now());
  Snapshot snap;
  std::string key;
  MicroUsd seed = 0;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->scopes.find(scope);
    if (it == impl_->scopes.end()) return snap;
    const ScopeAccount& account = it->second;
    const DayTotals totals = account.totals(period_containing(account.period, today));
    snap.limited = account.limited;
    snap.cap = account.limited ? account.cap : 0;
    snap.spent = totals.spent;
    snap.reserved = totals.reserved;
    if (impl_->redis == nullptr) return snap;
    key = impl_->shared_key(scope, account.period, today);
    seed = impl_->seed_locked(std::string(scope), account, today);
  }
  // Shared: Redis's figures; this process's own (the cap its share) while Redis is down.
  auto r = impl_->redis->eval(detail::read_script(), {key}, {std::to_string(seed), std::to_string(kKeepSeconds)});
  if (r.ok() && r.value().elements.size() == 2) {
    impl_->came_back();
    snap.spent = r.value().elements[0].integer;
    snap.reserved = r.value().elements[1].integer;
  } else if (!r.ok()) {
    if (r.status().code() == Status::Code::kUnavailable) impl_->went_down(r.status());
    if (snap.limited) snap.cap /= std::max(impl_->state.replicas, 1);
  }
  return snap;
}

BudgetBook::StateCounters BudgetBook::state_counters() const {
  StateCounters c;
  c.unavailable = impl_->unavailable.load(std::memory_order_relaxed);
  c.local_admissions = impl_->local_admissions.load(std::memory_order_relaxed);
  c.refused_unavailable = impl_->refused_unavailable.load(std::memory_order_relaxed);
  c.degraded = impl_->degraded.load(std::memory_order_relaxed);
  return c;
}

}  // namespace switchboard
