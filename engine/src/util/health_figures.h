// Folder util/: the figures of model health one process exchanges with the
// fleet through Redis: health/ (health_share.h) produces and applies them,
// state/ (health_exchange.h) carries them; plain data, so neither folder
// includes the other.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace switchboard::detail {

/// What one process saw of one model since the last exchange.
struct HealthOutcomes {
  std::string model;
  std::int64_t successes = 0;
  std::int64_t failures = 0;
  std::int64_t trailing_failures = 0;  ///< failures after the last of `successes`
  bool tripped = false;                ///< this process opened the model's breaker
  bool closed = false;                 ///< a success here closed the breaker (a probe's)
  std::vector<double> latencies_ms;    ///< successful calls' latencies, at most 64 (the newest)
};

/// The fleet's merged view of one model.
struct FleetHealth {
  std::string model;
  std::chrono::milliseconds open_left{0};  ///< the fleet's breaker is open this much longer (0: not open)
  std::int64_t closings = 0;               ///< how many times a probe's success closed it, ever
  std::int64_t calls = 0;                  ///< calls in the fleet's window
  std::int64_t failures = 0;               ///< of them, failed
  std::int64_t consecutive_failures = 0;   ///< the fleet's failures since its last success (approximate order)
  std::optional<double> p50_ms;            ///< over the fleet's last 64 successful calls
  std::optional<double> p95_ms;
};

}  // namespace switchboard::detail
