// Folder state/: the Redis side of shared model health (README, "Shared model
// health"). One exchange is one atomic script: it adds what this process saw
// of each model since its last exchange to the fleet's figures, opens the
// fleet's breaker when they (or this process's own breaker) say so, closes it
// when a probe's success arrives after the cool-down, and returns the fleet's
// view of every model asked about.
//
// Keys, per model (PREFIX = [state] key_prefix):
//   PREFIX health:MODEL      hash {open_until (Redis ms; 0: closed), closings,
//                            consec, s:SECOND, f:SECOND (successes and failures
//                            in each second of the window, by Redis's clock)}
//   PREFIX health:MODEL:lat  list of the fleet's last 64 successful latencies (ms)
// Both expire `keep` after the last exchange that touched them. Times are
// Redis's (TIME), so the processes' clocks do not matter: the reply says how
// long the breaker stays open, not until when.
#pragma once

#include <string>
#include <vector>

#include "state/redis_client.h"
#include "switchboard/health.h"
#include "switchboard/status.h"
#include "util/health_figures.h"

namespace switchboard::detail {

/// Exchanges one process's health figures with the fleet's. Thread-compatible
/// (one exchanging thread); the RedisClient it uses is thread-safe.
class HealthExchange {
 public:
  /// REQUIRES: `redis` outlives this. Every process of a fleet passes the same `settings`.
  HealthExchange(RedisClient& redis, std::string key_prefix, HealthSettings settings);

  /// One round trip: adds `outcomes` (any order; models not in `models` are
  /// ignored) and returns the fleet's view of each of `models`, in order.
  /// Fails with kUnavailable when Redis cannot be reached (RedisClient::eval).
  Result<std::vector<FleetHealth>> exchange(const std::vector<std::string>& models,
                                            const std::vector<HealthOutcomes>& outcomes);

 private:
  RedisClient& redis_;
  std::string key_prefix_;
  HealthSettings settings_;
};

}  // namespace switchboard::detail
