// Timed wakes of fibers (deadlines.h).
#include "async/deadlines.h"

#include <vector>

#include "async/fiber.h"

namespace switchboard::async {

Deadlines::Entry Deadlines::add(TimePoint due, WakeTimer* timer) {
  const Entry entry = due_.emplace(due, timer);
  if (!armed_ || due < *armed_) arm(due);
  return entry;
}

void Deadlines::arm(TimePoint due) {
  armed_ = due;
  ++times_armed_;
  timer_.expires_at(due);  // a wait still pending completes aborted, and does nothing
  timer_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
    if (ec || alive.expired()) return;
    armed_.reset();
    fire();
  });
}

void Deadlines::fire() {
  const TimePoint now = std::chrono::steady_clock::now();
  std::vector<std::weak_ptr<Fiber>> woken;
  while (!due_.empty() && due_.begin()->first <= now) {
    WakeTimer* const timer = due_.begin()->second;
    timer->entry_.reset();
    woken.push_back(timer->self_);
    due_.erase(due_.begin());
  }
  if (!due_.empty()) arm(due_.begin()->first);
  // Last: a fiber resumed here may add, move or remove deadlines.
  for (const std::weak_ptr<Fiber>& fiber : woken) Fiber::resume(fiber);
}

WakeTimer::WakeTimer(Fiber& fiber)
    : fiber_(fiber), self_(fiber.weak_from_this()), deadlines_(fiber.loop().deadlines()) {}

}  // namespace switchboard::async
