// Folder health/: the way the fleet exchange (engine.cpp, state/health_exchange.h)
// reads what a HealthBook saw and applies the fleet's merged view to it.
//
// The book keeps, per model, what it saw since the last take() (counts, the
// failures since its last success, whether it opened or closed the breaker,
// latencies), only once enable() was called, so a book that shares nothing
// pays nothing. apply() writes the fleet's figures: a breaker open in the
// fleet opens here until the fleet's open-until; a breaker the fleet closed
// (a probe's success elsewhere) closes here; the window's counts and the
// latency quantiles the rules see become the fleet's while they are fresh
// (an exchange succeeded in the last kFleetFresh), this process's own again
// when they go stale (Redis unreachable).
#pragma once

#include <chrono>
#include <vector>

#include "switchboard/health.h"
#include "util/health_figures.h"

namespace switchboard::detail {

/// Fleet figures older than this are not shown (this process's own are).
inline constexpr std::chrono::seconds kFleetFresh{2};

}  // namespace switchboard::detail

namespace switchboard {

// The fleet exchange's way into a HealthBook (its friend; health.h).
struct HealthBookAccess {
  /// From now on, `book` keeps what it sees for take(); sharing().enabled turns true.
  static void enable(HealthBook& book);
  /// What `book` saw since the last take (models with nothing new left out).
  static std::vector<detail::HealthOutcomes> take(HealthBook& book);
  /// Gives back what take() returned when the exchange failed, so the next one sends it.
  static void give_back(HealthBook& book, std::vector<detail::HealthOutcomes> outcomes);
  /// Applies the fleet's view and counts a successful exchange.
  static void apply(HealthBook& book, const std::vector<detail::FleetHealth>& fleet);
  /// Counts a failed exchange (sharing().degraded until the next apply()).
  static void failed(HealthBook& book);
  /// The book's settings (the exchange sends them: every process of a fleet has the same).
  static const HealthSettings& settings(const HealthBook& book);
};

}  // namespace switchboard
