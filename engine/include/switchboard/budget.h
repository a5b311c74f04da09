/// @file
/// Budgets that cannot be overrun: reserve the worst case before a call,
/// settle to the actual cost after, release on failure.
///
/// A cap applies per workload (and optionally per key or tag) to a calendar
/// period in UTC: a day or a month. reserve() is atomic with respect to every
/// other reserve/settle/release on the same budget: no reserve() takes the sum
/// of settled spend and outstanding reservations past the cap. Only a settle
/// above its own reservation (the provider billed more than the worst case)
/// can take spend past it; the cap then refuses until the period ends.
///
/// Spend is kept per scope per UTC day, so a scope's limit may change period
/// (day <-> month) without losing what was spent; a month's figures are the
/// sum of its days. Periods come from the injected clock only.
///
/// One reservation may span several scopes (a workload, a key, tags): it is
/// made in all of them or in none, under one lock, so a call is admitted only
/// when it fits what is left of every scope that applies (reserve_within).
///
/// Several processes (gateway replicas) can share their caps: a book made
/// with StateSettings{backend = kRedis} keeps spend and reservations in Redis
/// and makes each reserve, settle, release and reduce one atomic script there
/// (one round trip each). A reservation there expires after
/// `reservation_ttl` unless settled, so a replica that dies mid-call does not
/// hold budget for ever. What the book does while Redis cannot be reached is
/// `on_unavailable`'s choice.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "switchboard/money.h"
#include "switchboard/status.h"

namespace switchboard {

/// The calendar period (UTC) a cap applies to.
enum class BudgetPeriod { kDay, kMonth };

/// A cap on one scope's spend in each calendar period.
struct BudgetLimit {
  std::string scope;     ///< "workload:code_fix", "key:team-a", "tag:team=search" ...
  MicroUsd cap = 0;      ///< a real cap: 0 refuses every request above $0 (negative counts as 0)
  BudgetPeriod period = BudgetPeriod::kMonth;  ///< the period the cap applies to
};

class BudgetBook;

/// Where a book's figures live, and what it does when they cannot be reached
/// ([state] in the config).
struct StateSettings {
  /// kMemory: this process only. kRedis: shared by every process using the same Redis and key_prefix.
  enum class Backend { kMemory, kRedis };
  /// While Redis cannot be reached: kFailClosed refuses every call that has a
  /// limited scope (Status::unavailable, a 503 from the gateway; unlimited
  /// scopes still pass); kLocal admits against this process's own figures
  /// with each cap divided by `replicas`, and says so in the log and metrics.
  enum class OnUnavailable { kFailClosed, kLocal };
  Backend backend = Backend::kMemory;  ///< [state] backend = "memory" | "redis"
  /// "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]" (port 6379, db 0 by default); with a password,
  /// every connection signs in with AUTH.
  std::string redis_url;
  /// The environment variable holding the password, instead of one in redis_url ("": none).
  std::string redis_password_env;
  /// The longest one Redis round trip (a connect included) may take before it counts as unreachable.
  std::chrono::milliseconds timeout{250};
  OnUnavailable on_unavailable = OnUnavailable::kFailClosed;  ///< [state] on_unavailable
  int replicas = 1;  ///< how many processes share the caps; kLocal caps each at cap / replicas
  /// A reservation neither settled nor released by then is given back (its holder is presumed dead).
  /// Longer than any call may last.
  std::chrono::seconds reservation_ttl{900};
  std::string key_prefix = "switchboard:";  ///< prefixes every Redis key, so several fleets can share one Redis
};

/// The scope of a workload's budget: "workload:NAME".
std::string workload_budget_scope(std::string_view workload);
/// The scope of a gateway key's budget: "key:NAME".
std::string key_budget_scope(std::string_view key);
/// The scope of a tag's budget ([budgets.NAME.VALUE], header
/// x-switchboard-tag-NAME: VALUE): "tag:NAME=VALUE".
std::string tag_budget_scope(std::string_view name, std::string_view value);

/// A held reservation, in one or more scopes. Destroying it without settle() releases it. A
/// default-constructed or moved-from Reservation holds nothing and every call
/// on it does nothing.
///
/// REQUIRES: the BudgetBook outlives every Reservation it handed out. One
/// Reservation is used by one thread at a time (the book itself is thread-safe).
class Reservation {
 public:
  Reservation() = default;
  /// Takes over the other's reservation; the other then holds nothing.
  Reservation(Reservation&&) noexcept;
  /// Releases the reservation this one holds, then takes over the other's.
  Reservation& operator=(Reservation&&) noexcept;
  ~Reservation();
  /// Replaces the reserved amount with the actual cost (which may be higher
  /// than reserved: what was spent was spent; the cap then refuses sooner).
  /// The cost lands in the period the reservation was made in, even when the
  /// clock has since moved into a new one. A negative `actual` counts as 0.
  void settle(MicroUsd actual);
  /// Gives the reservation back (the call failed before costing anything).
  void release();
  /// Lowers the held amount to `amount` in every scope (the excess goes back
  /// at once); a larger `amount`, or a reservation not held, changes nothing.
  void reduce_to(MicroUsd amount);
  /// The amount reserved in each of its scopes (unchanged by settle() and release()).
  MicroUsd amount() const { return amount_; }
  /// The scopes it is held in, in the order they were asked for.
  const std::vector<std::string>& scopes() const { return scopes_; }
  /// Whether at least one of its scopes had a limit when it was made (so
  /// the amount was checked against a cap, and the caller's cost bound must
  /// hold upstream: an explicit output cap, say).
  bool limited() const { return limited_; }
  /// True while the reservation is held (not yet settled or released).
  explicit operator bool() const { return book_ != nullptr; }

 private:
  friend class BudgetBook;
  BudgetBook* book_ = nullptr;
  std::vector<std::string> scopes_;
  bool limited_ = false;
  std::int64_t period_key_ = 0;  ///< the UTC day it was made in, in days since 1970-01-01
  MicroUsd amount_ = 0;
  /// Held in the shared store: its id there, and the keys (one per scope) that hold it. Empty: held in this process.
  std::string token_;
  std::vector<std::string> shared_keys_;
};

/// Caps, settled spend and outstanding reservations per scope (see the file comment). Thread-safe.
class BudgetBook {
 public:
  /// Returns the current time; the book takes every period from it.
  using Clock = std::function<std::chrono::system_clock::time_point()>;
  /// `now` defaults to the system clock; tests pass a fake.
  explicit BudgetBook(Clock now = {});
  /// A book whose figures live where `state` says (see StateSettings). With
  /// kRedis no connection is made here: the first reserve() connects.
  BudgetBook(Clock now, StateSettings state);
  ~BudgetBook();
  BudgetBook(const BudgetBook&) = delete;
  BudgetBook& operator=(const BudgetBook&) = delete;

  /// Sets or replaces the limit for `limit.scope`; spend already recorded stays.
  void set_limit(BudgetLimit limit);
  /// Adds already-settled spend (e.g. from the ledger at start-up) to the period containing `at`.
  void add_spent(std::string_view scope, std::chrono::system_clock::time_point at, MicroUsd amount);

  /// Reserves `worst_case` in `scope`'s current period, or fails with a
  /// message naming the scope, the cap, the spend and the request. A scope
  /// without a limit always succeeds (and is still tracked). Reaching the cap
  /// exactly is allowed. A scope without a limit is tracked by UTC month.
  /// Fails with kInvalidArgument, both when refused and for a negative request.
  Result<Reservation> reserve(std::string_view scope, MicroUsd worst_case);

  /// Reserves, in every one of `scopes` at once, the largest amount in
  /// [at_least, at_most] that each limited scope has left in its current
  /// period, or nothing: fails with over_budget naming the first scope that
  /// cannot hold `at_least` (its cap, spend and reservations). Scopes without
  /// a limit are tracked and never refuse. `replacing`, when it is a held
  /// reservation of this book, is given back in the same step before the
  /// check (so a caller moving its reservation to a dearer call never loses
  /// it to another thread in between); when refused, `replacing` is kept as
  /// it was. Duplicate scopes count once. Fails with kInvalidArgument for a
  /// negative `at_least` or `at_least` > `at_most`.
  Result<Reservation> reserve_within(const std::vector<std::string>& scopes, MicroUsd at_least, MicroUsd at_most,
                                     Reservation* replacing = nullptr);

  /// One scope's figures in its current period.
  struct Snapshot {
    bool limited = false;     ///< whether the scope has a limit (a cap of 0 is a limit)
    MicroUsd cap = 0;         ///< 0 when the scope has no limit
    MicroUsd spent = 0;       ///< settled in the current period
    MicroUsd reserved = 0;    ///< outstanding reservations made in the current period
    /// cap - spent - reserved (negative after a settle above its reservation),
    /// none without a limit.
    std::optional<MicroUsd> left() const;
  };
  /// One consistent view (taken under the book's lock) of `scope`'s current period.
  Snapshot snapshot(std::string_view scope) const;

  /// How the shared store has fared (all zero for a kMemory book).
  struct StateCounters {
    std::uint64_t unavailable = 0;      ///< round trips that failed or were skipped while Redis was down
    std::uint64_t local_admissions = 0; ///< reservations made in this process's own figures (kLocal)
    std::uint64_t refused_unavailable = 0;  ///< reservations refused because Redis was down (kFailClosed)
    bool degraded = false;              ///< the last round trip failed (or none was tried since it did)
  };
  /// A consistent copy of the counters.
  StateCounters state_counters() const;

 private:
  friend class Reservation;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace switchboard
