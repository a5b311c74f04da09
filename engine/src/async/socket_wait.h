// A fiber's wait for a socket's readiness, bounded by the caller's limits:
// the one primitive under the plain-HTTP upstream calls
// (providers/http1_on_loop.cpp) and the Redis round trips
// (state/redis_client.cpp) that run on a loop.
//
//   async::WakeTimer timer(fiber);
//   bool ready = async::wait_ready(timer, socket, Socket::wait_read, [&]() -> std::optional<TimePoint> {
//     if (Clock::now() >= deadline) return std::nullopt;  // give up
//     return deadline;                                    // ask again then
//   });
#pragma once

#include <chrono>
#include <memory>
#include <optional>

#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include "async/fiber.h"

namespace switchboard::async {

// Wakes its fiber at the last time it was set to. One per wait site (a call,
// a command): moved only when the time changes, so a wait that loops on
// spurious wakes does not re-arm it.
class WakeTimer {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  explicit WakeTimer(Fiber& fiber) : fiber_(fiber), self_(fiber.weak_from_this()), timer_(fiber.loop().io()) {}
  WakeTimer(const WakeTimer&) = delete;
  WakeTimer& operator=(const WakeTimer&) = delete;

  Fiber& fiber() const noexcept { return fiber_; }
  const std::weak_ptr<Fiber>& self() const noexcept { return self_; }

  // The fiber is woken at `due` (TimePoint::max(): not at all).
  void wake_at(TimePoint due) {
    if (due == TimePoint::max() || (armed_ && *armed_ == due)) return;
    armed_ = due;
    timer_.expires_at(due);
    timer_.async_wait([self = self_](const boost::system::error_code& ec) {
      if (!ec) Fiber::resume(self);
    });
  }

 private:
  Fiber& fiber_;
  const std::weak_ptr<Fiber> self_;
  boost::asio::steady_timer timer_;
  std::optional<TimePoint> armed_;
};

// Waits on the timer's fiber until `socket` (an Asio socket or descriptor on
// the fiber's loop) is ready for `what`, or failed (the next operation on it
// says how): true. `next_check()` is asked before every sleep, spurious wakes
// included: it returns when to be asked again (TimePoint::max(): only on a
// wake), or nullopt to give up, and then the socket's wait is cancelled and
// the result is false.
template <class Socket, class NextCheck>
bool wait_ready(WakeTimer& timer, Socket& socket, typename Socket::wait_type what, NextCheck&& next_check) {
  auto ready = std::make_shared<bool>(false);  // outlives a cancelled wait's handler
  socket.async_wait(what, [ready, self = timer.self()](const boost::system::error_code&) {
    *ready = true;
    Fiber::resume(self);
  });
  for (;;) {
    if (*ready) return true;
    const std::optional<WakeTimer::TimePoint> next = next_check();
    if (!next) {
      boost::system::error_code ignored;
      socket.cancel(ignored);
      return false;
    }
    timer.wake_at(*next);
    timer.fiber().wait();
  }
}

}  // namespace switchboard::async
