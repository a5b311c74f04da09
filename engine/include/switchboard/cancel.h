/// @file
/// Cancellation and deadlines for a step and every model call it makes.
///
/// A host that starts a step can stop it: a gateway whose client hung up
/// cancels (Cancellation::cancel), and a step with a deadline stops when the
/// deadline passes. Both travel in CallBounds, from StepCall to every
/// ModelRequest of the step. What stops where:
/// ```text
///   the transport   aborts the transfer at once (it waits on its sockets and
///                   the cancellation together, so the upstream connection is
///                   closed within milliseconds, not at its next timer);
///   the dispatcher  starts no further attempt, cuts a retry's backoff short,
///                   and records the attempt as `cancelled` with the usage
///                   known so far;
///   the step        ends with Status kCancelled (the host cancelled) or
///                   kDeadlineExceeded (the deadline passed).
/// ```
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "switchboard/status.h"

namespace switchboard {

/// A cancellation flag with wake-ups: one per step, shared by the host and
/// every call of the step. Thread-safe.
class Cancellation {
 public:
  class Subscription;

  Cancellation() = default;
  Cancellation(const Cancellation&) = delete;
  Cancellation& operator=(const Cancellation&) = delete;

  /// Cancels, saying why ("client disconnected"); later calls change nothing.
  /// Runs every subscribed wake-up on this thread before it returns.
  void cancel(std::string reason);
  /// Whether cancel() was called.
  bool cancelled() const noexcept;
  /// The reason given to the first cancel(); "" before it.
  std::string reason() const;
  /// Waits up to `d`; returns false at once when cancelled (before or during the wait).
  bool sleep_for(std::chrono::milliseconds d) const;

  /// Registers `wake`, called once from cancel() (at once, on this thread,
  /// when already cancelled). The wake-up runs under the cancellation's lock:
  /// it must be quick, must not throw and must not call this Cancellation (a
  /// transport's: wake its poll). It stays registered while the returned
  /// Subscription lives; once that is destroyed, `wake` is neither running
  /// nor ever called again. REQUIRES: the Subscription dies before this.
  [[nodiscard]] Subscription subscribe(std::function<void()> wake);

  /// Unregisters a wake-up when destroyed (see subscribe()). Movable.
  class Subscription {
   public:
    Subscription() = default;  ///< registers nothing
    /// Takes over `other`'s registration; `other` then holds none.
    Subscription(Subscription&& other) noexcept;
    /// Unregisters this one's wake-up, then takes over `other`'s registration.
    Subscription& operator=(Subscription&& other) noexcept;
    ~Subscription();  ///< unregisters (see subscribe())
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;

   private:
    friend class Cancellation;
    Subscription(const Cancellation* owner, std::uint64_t id) : owner_(owner), id_(id) {}
    void reset();
    const Cancellation* owner_ = nullptr;
    std::uint64_t id_ = 0;
  };

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool cancelled_ = false;  // guarded by mu_
  std::string reason_;      // guarded by mu_
  std::uint64_t next_id_ = 1;
  mutable std::map<std::uint64_t, std::function<void()>> wakes_;  // guarded by mu_
};

/// How far one step (and each of its model calls) may go: a deadline over all
/// of its attempts and fallbacks, and a cancellation. Both optional; copied
/// into every ModelRequest of the step.
struct CallBounds {
  using Clock = std::chrono::steady_clock;  ///< the deadline's clock

  /// Unset: no deadline beyond the [calls] timeouts of each attempt.
  std::optional<Clock::time_point> deadline;
  /// Null: nobody cancels.
  std::shared_ptr<Cancellation> cancellation;
  /// Names the deadline in messages ("request_timeout_ms", "x-switchboard-timeout-ms").
  std::string deadline_source = "deadline";

  /// Whether the step must stop now: Status kCancelled (with the
  /// cancellation's reason) or kDeadlineExceeded (naming deadline_source);
  /// ok otherwise. The cancellation wins when both hold.
  Status check() const;
  /// The time left before the deadline (0 when passed); nullopt without one.
  std::optional<std::chrono::milliseconds> remaining() const;
};

}  // namespace switchboard
