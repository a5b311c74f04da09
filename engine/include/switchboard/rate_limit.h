/// @file
/// Requests and tokens per minute per scope ("key:NAME", "workload:NAME",
/// "model:NAME"), counted over a sliding minute: at most the limit in any 60
/// seconds, not per calendar minute. Kept in this process, or shared by every
/// process using the same Redis ([state] backend = "redis", budget.h's
/// StateSettings), where one admission is one atomic script.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "switchboard/budget.h"
#include "switchboard/status.h"

namespace switchboard {

/// The scope of a model's rate limit ([models.NAME] requests_per_minute): "model:NAME".
/// (A key's and a workload's are their budget scopes: key_budget_scope, workload_budget_scope.)
std::string model_rate_scope(std::string_view model);

/// The limits of one scope; 0 leaves that dimension unlimited.
struct RateLimit {
  std::string scope;                     ///< "key:team-a", "workload:chat", "model:gpt-4.1" ...
  std::int64_t requests_per_minute = 0;  ///< requests in any 60 s
  std::int64_t tokens_per_minute = 0;    ///< tokens (as the caller counts them) in any 60 s
};

/// What RateLimiter::admit() decided.
struct RateDecision {
  bool allowed = false;                      ///< counted in every limited scope (false: counted in none)
  std::string limited_by;                    ///< refused: the first scope that had no room
  /// Refused: how long until the same request would fit (an HTTP Retry-After);
  /// none when it never can (more tokens than the limit per minute).
  std::optional<std::chrono::milliseconds> retry_after;
  /// Allowed: what is left in the tightest limited scope after this request,
  /// for the rules to see as headroom; none without such a limit.
  std::optional<std::int64_t> requests_left;
  std::optional<std::int64_t> tokens_left;  ///< as requests_left, for tokens
};

/// Sliding-minute limits per scope (see the file comment). Thread-safe.
class RateLimiter {
 public:
  /// Returns the current time (in-process counting only: shared counting uses Redis's clock).
  using Clock = std::function<std::chrono::system_clock::time_point()>;
  /// `state` says where the counts live; `now` defaults to the system clock.
  explicit RateLimiter(StateSettings state = {}, Clock now = {});
  ~RateLimiter();
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  /// Sets or replaces the limits of `limit.scope`.
  void set_limit(RateLimit limit);
  /// Counts one request of `tokens` in every limited scope of `scopes` at
  /// once, or in none when one has no room (then `allowed` is false). Scopes
  /// without a limit are ignored. While Redis cannot be reached: kFailClosed
  /// fails with kUnavailable when a scope is limited; kLocal counts in this
  /// process with each limit divided by `replicas`.
  Result<RateDecision> admit(const std::vector<std::string>& scopes, std::int64_t tokens);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace switchboard
