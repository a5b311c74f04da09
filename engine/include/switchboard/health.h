/// @file
/// Model health: a circuit breaker, latency and error figures, and the
/// provider's rate-limit headroom per model, fed by the dispatcher's calls and
/// read by the rules (`ctx.models[name]`) and the dispatcher's fallbacks.
///
/// The breaker of each model is closed (calls go out) until the model fails
/// `failure_threshold` calls in a row, or at least `error_rate` of the calls in
/// the last `window` once there were `min_calls` of them; then it is open (the
/// model is skipped: rules see `healthy = false`, fallbacks pass it by, and
/// the ledger says so) for `cooldown`. After the cool-down it is half-open:
/// one call (the probe) goes out, and its success closes the breaker while its
/// failure opens it for another cool-down. A failure is a call that failed as
/// unavailable (429, 5xx, a timeout, a broken connection or stream); a refusal
/// (the model cannot take the request), a provider's 400 or a cancelled call
/// says nothing about the model's health and counts as neither.
///
/// With [state] backend = "redis" the engine shares every book's figures with
/// the other processes on the same Redis (a background exchange every 200 ms;
/// see README "Shared model health"): a breaker one process opens is open in
/// all, and the window's counts and the latency figures are the fleet's.
/// Nothing on admit() or record_*() waits on Redis.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "switchboard/request.h"

namespace switchboard {

struct HealthBookAccess;  // the fleet exchange's way in (engine/src/health/health_share.h)

/// The breaker's settings ([health]).
struct HealthSettings {
  int failure_threshold = 5;       ///< failures in a row that open the breaker
  double error_rate = 0.5;         ///< the share of failures in `window` that opens it...
  int min_calls = 20;              ///< ... once the window holds at least this many calls
  std::chrono::seconds window{60};    ///< the error rate's window
  std::chrono::seconds cooldown{30};  ///< open this long, then half-open
};

/// One model's health as the rules and the dispatcher see it now.
struct ModelHealth {
  /// The breaker's state.
  enum class State { kClosed, kOpen, kHalfOpen };
  State state = State::kClosed;  ///< closed, open, or half-open (a probe may go)
  /// Whether a call may go out now: closed, or half-open with no probe out.
  bool healthy = true;
  int consecutive_failures = 0;  ///< failures since the last success
  std::int64_t calls = 0;        ///< calls in the window (successes and failures)
  double error_rate = 0;         ///< failures ÷ calls in the window; 0 with no calls
  /// Median latency of the recent successful calls (the last 64), in
  /// milliseconds; unset before the first.
  std::optional<double> p50_ms;
  std::optional<double> p95_ms;  ///< their 95th percentile, likewise
  RateLimits limits;  ///< the last rate-limit headers, resets counted down to now
};
/// "closed", "open", "half_open".
std::string_view to_string(ModelHealth::State s);

/// How sharing health with the fleet fares (HealthBook::sharing()).
struct HealthSharing {
  bool enabled = false;           ///< an exchange runs ([state] backend = "redis")
  bool degraded = false;          ///< the last exchange failed: each process is on its own figures
  std::uint64_t exchanges = 0;    ///< exchanges that succeeded
  std::uint64_t unavailable = 0;  ///< exchanges that failed (Redis unreachable or timed out)
};

/// Every model's health; thread-safe. One per engine (Engine::health()).
class HealthBook {
 public:
  /// `clock` gives the time (steady); tests pass a scripted one.
  explicit HealthBook(HealthSettings settings,
                      std::function<std::chrono::steady_clock::time_point()> clock = std::chrono::steady_clock::now);
  ~HealthBook();
  HealthBook(const HealthBook&) = delete;
  HealthBook& operator=(const HealthBook&) = delete;

  /// Whether a call to `model` may go out now. An open breaker past its
  /// cool-down turns half-open and admits this call as its probe (true);
  /// until the probe reports, further calls are refused. A model never seen
  /// is healthy. Every admitted call must be followed by one record_*.
  bool admit(std::string_view model);
  /// An admitted call answered, in `latency`, with these rate-limit headers.
  void record_success(std::string_view model, std::chrono::milliseconds latency, const RateLimits& limits);
  /// An admitted call failed as unavailable; `retry_after` (a 429's) empties
  /// the request headroom until then.
  void record_failure(std::string_view model, std::optional<std::chrono::milliseconds> retry_after = std::nullopt);
  /// An admitted call ended without saying anything of the model (refused,
  /// a 400, cancelled): a half-open probe slot is given back.
  void record_neutral(std::string_view model);

  /// `model`'s health now (a model never seen: closed and healthy, no figures).
  ModelHealth snapshot(std::string_view model) const;

  /// How the exchange with the fleet fares (all zero when nothing is shared).
  HealthSharing sharing() const;

 private:
  friend struct HealthBookAccess;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace switchboard
